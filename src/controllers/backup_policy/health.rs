//! Consecutive failures and the `Healthy` condition (ACCEPTANCE 12).
//!
//! A run is judged once none of its backups is in progress any more. A run
//! in which every server that took a backup got a good one resets the
//! count; a run with any failure adds one. A failed or never-ready snapshot
//! is a failure (see [`super::outcome`]), so it never resets the count.
//! After `maxConsecutiveFailures` failed runs in a row (the CRD's "after
//! this many"), `Healthy` turns False with each failing server's reason.
//!
//! [`judge_runs`] applies this to a policy's backups: runs (the backups
//! sharing a slot) newer than the last one counted are judged oldest first
//! until one is unfinished, so each run counts exactly once however often
//! the policy is reconciled. A failed restore drill counts as one more
//! failed run.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::judge::Judged;
use super::kube_time;
use super::outcome::{FailureReason, Outcome};
use crate::api::backup_policy::BackupPolicyStatus;
use crate::api::conditions::Decided;

/// The condition type.
pub const HEALTHY: &str = "Healthy";
/// Reasons of the `Healthy` condition.
pub const NO_RUN_YET: &str = "NoRunYet";
pub const BACKUPS_SUCCEEDING: &str = "BackupsSucceeding";
pub const RECENT_FAILURES: &str = "RecentFailures";
pub const TOO_MANY_FAILURES: &str = "TooManyFailures";

/// How many failing servers a condition message names; the rest are
/// counted, so a policy over hundreds of servers keeps a readable message.
const SERVERS_NAMED: usize = 10;

/// What one selected server did in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRun {
    /// It took a backup for the run's slot, judged so far as this.
    Took(Outcome),
    /// It skipped the slot because its previous backup was still running
    /// (ACCEPTANCE 11). That backup is judged with its own run, so a skip
    /// is neither a success nor a failure here.
    SkippedBusy,
}

/// One server's failure in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFailure {
    pub server: String,
    pub reason: FailureReason,
    pub message: String,
}

/// A run, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunVerdict {
    /// Some backup is still in progress: judge it later.
    Unfinished,
    /// Every server that took a backup got a good one.
    Succeeded,
    /// These servers' backups failed (sorted by server).
    Failed(Vec<ServerFailure>),
    /// No server took a backup (none selected, or all skipped): the run
    /// says nothing about health and leaves the count as it is.
    NothingToJudge,
}

/// Judges one run from each selected server's part in it.
pub fn judge_run(servers: &[(String, ServerRun)]) -> RunVerdict {
    let took: Vec<(&String, &Outcome)> = servers
        .iter()
        .filter_map(|(server, run)| match run {
            ServerRun::Took(outcome) => Some((server, outcome)),
            ServerRun::SkippedBusy => None,
        })
        .collect();
    if took.is_empty() {
        return RunVerdict::NothingToJudge;
    }
    if took.iter().any(|(_, o)| matches!(o, Outcome::InProgress)) {
        return RunVerdict::Unfinished;
    }
    let mut failures: Vec<ServerFailure> = took
        .iter()
        .filter_map(|(server, outcome)| match outcome {
            Outcome::Failed { reason, message } => Some(ServerFailure {
                server: server.to_string(),
                reason: *reason,
                message: message.clone(),
            }),
            Outcome::Good { .. } | Outcome::InProgress => None,
        })
        .collect();
    if failures.is_empty() {
        return RunVerdict::Succeeded;
    }
    failures.sort_by(|a, b| a.server.cmp(&b.server));
    RunVerdict::Failed(failures)
}

/// `status.consecutiveFailures` after a run is judged.
pub fn consecutive_failures(previous: i32, verdict: &RunVerdict) -> i32 {
    match verdict {
        RunVerdict::Succeeded => 0,
        RunVerdict::Failed(_) => previous.max(0).saturating_add(1),
        RunVerdict::Unfinished | RunVerdict::NothingToJudge => previous.max(0),
    }
}

/// The `Healthy` condition.
///
/// - no run judged yet: `Unknown`, `NoRunYet`;
/// - no failure since the last good run: `True`, `BackupsSucceeding`;
/// - failures below the limit: `True`, `RecentFailures`, naming them;
/// - `max_consecutive_failures` or more: `False`, `TooManyFailures`.
///
/// `latest_failures` are the per-server failures of the latest failed run.
pub fn healthy_condition(
    consecutive_failures: i32,
    max_consecutive_failures: i32,
    latest_failures: &[ServerFailure],
    any_run_judged: bool,
) -> Decided {
    if consecutive_failures <= 0 {
        return if any_run_judged {
            Decided::yes(
                HEALTHY,
                BACKUPS_SUCCEEDING,
                "the latest run backed up every server",
            )
        } else {
            Decided::unknown(HEALTHY, NO_RUN_YET, "no backup run has finished yet")
        };
    }
    let runs = if consecutive_failures == 1 {
        "run"
    } else {
        "runs"
    };
    let message = format!(
        "{consecutive_failures} {runs} in a row failed (limit {max_consecutive_failures}); latest: {}",
        describe(latest_failures)
    );
    if consecutive_failures >= max_consecutive_failures {
        Decided::no(HEALTHY, TOO_MANY_FAILURES, message)
    } else {
        Decided::yes(HEALTHY, RECENT_FAILURES, message)
    }
}

/// `erp: DeadlineExceeded: ...; crm: SnapshotFailed: ...`, the first few.
fn describe(failures: &[ServerFailure]) -> String {
    if failures.is_empty() {
        return "no details recorded".to_string();
    }
    let mut parts: Vec<String> = failures
        .iter()
        .take(SERVERS_NAMED)
        .map(|f| format!("{}: {}: {}", f.server, f.reason.as_str(), f.message))
        .collect();
    if failures.len() > SERVERS_NAMED {
        parts.push(format!(
            "and {} more servers",
            failures.len() - SERVERS_NAMED
        ));
    }
    parts.join("; ")
}

/// Where the run-level counters stand after a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHealth {
    /// `status.consecutiveFailures`.
    pub consecutive_failures: i32,
    /// The slot of the latest run judged (`status.lastJudgedRunTime`).
    pub last_judged: Option<DateTime<Utc>>,
    /// `status.lastSuccessfulTime`.
    pub last_successful_time: Option<Time>,
    /// Failures judged in this pass, if any.
    pub fresh_failures: Vec<ServerFailure>,
    /// Whether this pass judged a failure (a run or a drill).
    pub failed_now: bool,
}

impl RunHealth {
    /// Whether any run (or drill) has been judged yet.
    pub fn any_judged(&self) -> bool {
        self.last_judged.is_some() || self.consecutive_failures > 0
    }

    /// The failures the `Healthy` message names: this pass's, or else
    /// those of the newest failed backups still recorded.
    pub fn latest_failures(&self, judged: &[Judged]) -> Vec<ServerFailure> {
        if !self.fresh_failures.is_empty() {
            return self.fresh_failures.clone();
        }
        let failed: Vec<(&Judged, FailureReason, String)> = judged
            .iter()
            .filter_map(|j| match j.effective() {
                Outcome::Failed { reason, message } => Some((j, reason, message)),
                _ => None,
            })
            .collect();
        let Some(newest) = failed.iter().map(|(j, ..)| j.slot).max() else {
            return Vec::new();
        };
        let mut out: Vec<ServerFailure> = failed
            .into_iter()
            .filter(|(j, ..)| j.slot == newest)
            .map(|(j, reason, message)| ServerFailure {
                server: j.server.clone(),
                reason,
                message,
            })
            .collect();
        out.sort_by(|a, b| a.server.cmp(&b.server));
        out
    }
}

/// Judges, oldest first, every run newer than the last one judged, until
/// one is still unfinished; then counts the drills that failed.
pub fn judge_runs(
    previous: &BackupPolicyStatus,
    judged: &[Judged],
    drill_failures: Vec<ServerFailure>,
    now: DateTime<Utc>,
) -> RunHealth {
    let mut health = RunHealth {
        consecutive_failures: previous.consecutive_failures.max(0),
        last_judged: previous
            .last_judged_run_time
            .as_ref()
            .map(kube_time::to_utc),
        last_successful_time: previous.last_successful_time.clone(),
        fresh_failures: Vec::new(),
        failed_now: false,
    };
    let slots: BTreeSet<DateTime<Utc>> = judged
        .iter()
        .map(|j| j.slot)
        .filter(|slot| health.last_judged.is_none_or(|last| *slot > last))
        .collect();
    for slot in slots {
        let servers: Vec<(String, ServerRun)> = judged
            .iter()
            .filter(|j| j.slot == slot)
            .map(|j| (j.server.clone(), ServerRun::Took(j.outcome.clone())))
            .collect();
        let verdict = judge_run(&servers);
        if verdict == RunVerdict::Unfinished {
            break;
        }
        health.consecutive_failures = consecutive_failures(health.consecutive_failures, &verdict);
        match verdict {
            RunVerdict::Succeeded => {
                health.last_successful_time = Some(kube_time::to_time(now));
                health.fresh_failures.clear();
            }
            RunVerdict::Failed(failures) => {
                health.fresh_failures = failures;
                health.failed_now = true;
            }
            RunVerdict::Unfinished | RunVerdict::NothingToJudge => {}
        }
        health.last_judged = Some(slot);
    }
    if !drill_failures.is_empty() {
        health.consecutive_failures = health.consecutive_failures.saturating_add(1);
        health.fresh_failures.extend(drill_failures);
        health.failed_now = true;
    }
    health
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backup_policy::Consistency;
    use crate::api::conditions::{FALSE, TRUE, UNKNOWN};

    fn good() -> ServerRun {
        ServerRun::Took(Outcome::Good {
            consistency: Consistency::Filesystem,
            size_bytes: 1,
        })
    }

    fn failed(reason: FailureReason, message: &str) -> ServerRun {
        ServerRun::Took(Outcome::Failed {
            reason,
            message: message.into(),
        })
    }

    fn run(servers: Vec<(&str, ServerRun)>) -> RunVerdict {
        let servers: Vec<(String, ServerRun)> = servers
            .into_iter()
            .map(|(s, r)| (s.to_string(), r))
            .collect();
        judge_run(&servers)
    }

    fn failure(server: &str, reason: FailureReason, message: &str) -> ServerFailure {
        ServerFailure {
            server: server.into(),
            reason,
            message: message.into(),
        }
    }

    #[test]
    fn a_run_where_every_server_got_a_good_backup_succeeds_and_resets_the_count() {
        let verdict = run(vec![("erp", good()), ("crm", good())]);
        assert_eq!(verdict, RunVerdict::Succeeded);
        assert_eq!(consecutive_failures(5, &verdict), 0);
    }

    #[test]
    fn one_failed_server_fails_the_run_and_adds_to_the_count() {
        let verdict = run(vec![
            ("erp", good()),
            (
                "crm",
                failed(FailureReason::SnapshotFailed, "quota exceeded"),
            ),
        ]);
        assert_eq!(
            verdict,
            RunVerdict::Failed(vec![failure(
                "crm",
                FailureReason::SnapshotFailed,
                "quota exceeded"
            )])
        );
        assert_eq!(consecutive_failures(2, &verdict), 3);
    }

    #[test]
    fn a_never_ready_snapshot_counts_as_a_failure_not_a_success() {
        let verdict = run(vec![(
            "erp",
            failed(FailureReason::DeadlineExceeded, "not ready within 3600s"),
        )]);
        assert!(matches!(verdict, RunVerdict::Failed(_)));
        assert_eq!(
            consecutive_failures(1, &verdict),
            2,
            "never reset by a failure"
        );
    }

    #[test]
    fn a_run_with_a_backup_in_progress_is_not_judged_yet() {
        let verdict = run(vec![
            ("erp", good()),
            ("crm", ServerRun::Took(Outcome::InProgress)),
            ("files", failed(FailureReason::SnapshotFailed, "x")),
        ]);
        assert_eq!(verdict, RunVerdict::Unfinished);
        assert_eq!(consecutive_failures(2, &verdict), 2);
    }

    #[test]
    fn a_server_skipping_a_busy_slot_neither_fails_nor_blocks_the_run() {
        let verdict = run(vec![("erp", good()), ("crm", ServerRun::SkippedBusy)]);
        assert_eq!(verdict, RunVerdict::Succeeded);
        let only_skipped = run(vec![("crm", ServerRun::SkippedBusy)]);
        assert_eq!(only_skipped, RunVerdict::NothingToJudge);
        assert_eq!(consecutive_failures(2, &only_skipped), 2);
    }

    #[test]
    fn a_run_of_no_servers_leaves_the_count_alone() {
        assert_eq!(run(vec![]), RunVerdict::NothingToJudge);
        assert_eq!(consecutive_failures(1, &RunVerdict::NothingToJudge), 1);
    }

    #[test]
    fn failures_are_listed_by_server() {
        let verdict = run(vec![
            ("zeta", failed(FailureReason::SnapshotFailed, "z")),
            ("alpha", failed(FailureReason::DeadlineExceeded, "a")),
        ]);
        let RunVerdict::Failed(failures) = verdict else {
            panic!("not failed");
        };
        assert_eq!(failures[0].server, "alpha");
        assert_eq!(failures[1].server, "zeta");
    }

    #[test]
    fn the_count_never_goes_negative_or_overflows() {
        assert_eq!(consecutive_failures(-3, &RunVerdict::Unfinished), 0);
        assert_eq!(consecutive_failures(-3, &RunVerdict::Failed(vec![])), 1);
        assert_eq!(
            consecutive_failures(i32::MAX, &RunVerdict::Failed(vec![])),
            i32::MAX
        );
    }

    #[test]
    fn healthy_is_unknown_before_any_run() {
        let c = healthy_condition(0, 3, &[], false);
        assert_eq!(
            (c.type_, c.status, c.reason.as_str()),
            (HEALTHY, UNKNOWN, NO_RUN_YET)
        );
    }

    #[test]
    fn healthy_is_true_when_the_latest_run_succeeded() {
        let c = healthy_condition(0, 3, &[], true);
        assert_eq!((c.status, c.reason.as_str()), (TRUE, BACKUPS_SUCCEEDING));
    }

    #[test]
    fn failures_below_the_limit_stay_healthy_but_say_so() {
        let c = healthy_condition(
            2,
            3,
            &[failure(
                "erp",
                FailureReason::DeadlineExceeded,
                "not ready within 3600s",
            )],
            true,
        );
        assert_eq!((c.status, c.reason.as_str()), (TRUE, RECENT_FAILURES));
        assert_eq!(
            c.message,
            "2 runs in a row failed (limit 3); latest: erp: DeadlineExceeded: not ready within 3600s"
        );
    }

    #[test]
    fn reaching_the_limit_turns_unhealthy_with_every_servers_reason() {
        let c = healthy_condition(
            3,
            3,
            &[
                failure("crm", FailureReason::SnapshotFailed, "quota exceeded"),
                failure(
                    "erp",
                    FailureReason::DeadlineExceeded,
                    "not ready within 3600s",
                ),
            ],
            true,
        );
        assert_eq!((c.status, c.reason.as_str()), (FALSE, TOO_MANY_FAILURES));
        assert_eq!(
            c.message,
            "3 runs in a row failed (limit 3); latest: crm: SnapshotFailed: quota exceeded; erp: DeadlineExceeded: not ready within 3600s"
        );
        let beyond = healthy_condition(7, 3, &[], true);
        assert_eq!(beyond.status, FALSE);
        assert!(
            beyond.message.ends_with("latest: no details recorded"),
            "{}",
            beyond.message
        );
    }

    #[test]
    fn a_single_failure_reads_in_the_singular() {
        let c = healthy_condition(
            1,
            1,
            &[failure("erp", FailureReason::SnapshotFailed, "x")],
            true,
        );
        assert_eq!(c.status, FALSE);
        assert!(
            c.message.starts_with("1 run in a row failed (limit 1)"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_long_list_of_failing_servers_is_shortened() {
        let failures: Vec<ServerFailure> = (0..25)
            .map(|i| failure(&format!("s{i:02}"), FailureReason::SnapshotFailed, "x"))
            .collect();
        let c = healthy_condition(3, 3, &failures, true);
        assert!(c.message.contains("s09: SnapshotFailed"), "{}", c.message);
        assert!(!c.message.contains("s10:"), "{}", c.message);
        assert!(
            c.message.ends_with("; and 15 more servers"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_failing_history_ends_healthy_again_after_one_good_run() {
        let mut count = 0;
        let bad = run(vec![("erp", failed(FailureReason::SnapshotFailed, "x"))]);
        for _ in 0..3 {
            count = consecutive_failures(count, &bad);
        }
        assert_eq!(healthy_condition(count, 3, &[], true).status, FALSE);
        count = consecutive_failures(count, &run(vec![("erp", good())]));
        assert_eq!(healthy_condition(count, 3, &[], true).status, TRUE);
    }
}
