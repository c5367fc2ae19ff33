//! The policy's status from what the pass decided, and whether it says
//! anything new. Pure: the caller supplies the time and writes the result
//! only when it changed.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::health::{HEALTHY, NO_RUN_YET};
use super::judge::Judged;
use super::kube_time;
use super::validate::Invalid;
use crate::api::BackupPolicy;
use crate::api::backup_policy::{BackupPolicyStatus, BackupRecord, ObservedSchedule};
use crate::api::conditions::{self, Decided, READY};

/// `status.backups` lists at most this many backups (the newest). A policy
/// keeping daily, weekly, monthly and yearly backups of a hundred servers
/// would otherwise outgrow what one object may hold; the snapshots
/// themselves (listed by label) are always the full record.
pub const MAX_RECORDS: usize = 500;

/// Reasons of the `Ready` condition.
pub mod reason {
    pub const SCHEDULED: &str = "Scheduled";
    pub const SUSPENDED: &str = "Suspended";
}

/// What the status is made of, as the pass decided it.
pub struct StatusParts<'a> {
    pub observed_schedule: ObservedSchedule,
    pub anchor: DateTime<Utc>,
    /// The backups that remain after retention.
    pub judged: &'a [Judged],
    pub last_schedule_time: Option<Time>,
    pub last_successful_time: Option<Time>,
    pub next_schedule_time: Option<String>,
    pub consecutive_failures: i32,
    pub missed_runs: i64,
    pub last_run_now_token: Option<String>,
    pub last_drill_time: Option<Time>,
    pub last_judged_run_time: Option<Time>,
    /// How many servers the selector selects.
    pub selected: usize,
    /// Selected servers skipped because their disks are not ready yet.
    pub unprovisioned: Vec<String>,
    pub healthy: Decided,
}

pub fn compute(
    policy: &BackupPolicy,
    parts: StatusParts<'_>,
    now: DateTime<Utc>,
) -> BackupPolicyStatus {
    let previous = policy.status.clone().unwrap_or_default();
    let mut records: Vec<BackupRecord> = parts.judged.iter().map(Judged::record).collect();
    records.sort_by(|a, b| {
        b.slot
            .0
            .cmp(&a.slot.0)
            .then_with(|| a.server.cmp(&b.server))
            .then_with(|| a.snapshot.cmp(&b.snapshot))
    });
    records.truncate(MAX_RECORDS);
    let ready = ready_condition(policy, &parts);
    BackupPolicyStatus {
        observed_generation: policy.metadata.generation,
        last_schedule_time: parts.last_schedule_time,
        last_successful_time: parts.last_successful_time,
        next_schedule_time: parts.next_schedule_time,
        consecutive_failures: parts.consecutive_failures,
        missed_runs: parts.missed_runs,
        last_run_now_token: parts.last_run_now_token,
        observed_schedule: Some(parts.observed_schedule),
        schedule_effective_since: Some(kube_time::to_time(parts.anchor)),
        last_drill_time: parts.last_drill_time,
        last_judged_run_time: parts.last_judged_run_time,
        backups: records,
        conditions: conditions::merge(
            &previous.conditions,
            &[ready, parts.healthy],
            policy.metadata.generation,
            &kube_time::to_time(now),
        ),
    }
}

fn ready_condition(policy: &BackupPolicy, parts: &StatusParts<'_>) -> Decided {
    let mut selection = format!("{} server(s) selected", parts.selected);
    if !parts.unprovisioned.is_empty() {
        selection.push_str(&format!(
            "; not backed up until their disks are ready: {}",
            parts.unprovisioned.join(", ")
        ));
    }
    if policy.spec.suspend {
        return Decided::yes(
            READY,
            reason::SUSPENDED,
            format!("the schedule is suspended (run-now still works); {selection}"),
        );
    }
    let next = parts
        .next_schedule_time
        .as_deref()
        .unwrap_or("none within croner's horizon");
    Decided::yes(
        READY,
        reason::SCHEDULED,
        format!("next run {next}; {selection}"),
    )
}

/// The status of a policy that cannot be scheduled: `Ready=False` with
/// why; nothing runs, so nothing else moves. The schedule settings are
/// recorded as seen, so fixing them anchors the schedule afresh.
pub fn invalid(
    policy: &BackupPolicy,
    invalid: &Invalid,
    seen: ObservedSchedule,
    now: DateTime<Utc>,
) -> BackupPolicyStatus {
    let previous = policy.status.clone().unwrap_or_default();
    let healthy = conditions::find(&previous.conditions, HEALTHY)
        .map(|c| Decided {
            type_: HEALTHY,
            status: match c.status.as_str() {
                conditions::TRUE => conditions::TRUE,
                conditions::FALSE => conditions::FALSE,
                _ => conditions::UNKNOWN,
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .unwrap_or_else(|| Decided::unknown(HEALTHY, NO_RUN_YET, "no backup run has finished yet"));
    let anchor = if previous.observed_schedule.as_ref() == Some(&seen) {
        previous.schedule_effective_since.clone()
    } else {
        Some(kube_time::to_time(now))
    };
    BackupPolicyStatus {
        observed_generation: policy.metadata.generation,
        next_schedule_time: None,
        observed_schedule: Some(seen),
        schedule_effective_since: anchor,
        conditions: conditions::merge(
            &previous.conditions,
            &[
                Decided::no(READY, invalid.reason, invalid.message.clone()),
                healthy,
            ],
            policy.metadata.generation,
            &kube_time::to_time(now),
        ),
        ..previous
    }
}

/// Whether a new status says anything the old one did not (condition
/// timestamps aside).
pub fn changed(old: Option<&BackupPolicyStatus>, new: &BackupPolicyStatus) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &BackupPolicyStatus| BackupPolicyStatus {
        conditions: Vec::new(),
        ..s.clone()
    };
    strip(old) != strip(new) || !conditions::same(&old.conditions, &new.conditions)
}

/// The merge patch that turns `old` into `new`: every field `new` no
/// longer has (a next slot once suspended, the last backup pruned) is sent
/// as `null`.
pub fn patch(old: Option<&BackupPolicyStatus>, new: &BackupPolicyStatus) -> serde_json::Value {
    crate::controllers::status_patch::merge_patch(old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::backup_policy::plan::observed_schedule;
    use crate::controllers::backup_policy::tests_support::policy;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap()
    }

    fn parts(p: &BackupPolicy) -> StatusParts<'static> {
        StatusParts {
            observed_schedule: observed_schedule(p),
            anchor: now(),
            judged: &[],
            last_schedule_time: None,
            last_successful_time: None,
            next_schedule_time: Some("2026-01-06T02:00:00+00:00".into()),
            consecutive_failures: 0,
            missed_runs: 0,
            last_run_now_token: None,
            last_drill_time: None,
            last_judged_run_time: None,
            selected: 2,
            unprovisioned: vec![],
            healthy: Decided::unknown(HEALTHY, NO_RUN_YET, "no backup run has finished yet"),
        }
    }

    #[test]
    fn a_valid_policy_is_ready_with_its_next_run_and_healthy_unknown_before_any_run() {
        let p = policy();
        let status = compute(&p, parts(&p), now());
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason, "Scheduled");
        assert!(
            ready.message.contains("next run 2026-01-06T02:00:00+00:00"),
            "{}",
            ready.message
        );
        assert!(
            ready.message.contains("2 server(s) selected"),
            "{}",
            ready.message
        );
        let healthy = conditions::find(&status.conditions, HEALTHY).unwrap();
        assert_eq!(healthy.status, "Unknown");
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(
            status.schedule_effective_since,
            Some(kube_time::to_time(now()))
        );
        assert_eq!(status.observed_schedule.unwrap().schedule, "0 2 * * *");
    }

    #[test]
    fn a_suspended_policy_is_ready_and_says_so() {
        let mut p = policy();
        p.spec.suspend = true;
        let mut parts = parts(&p);
        parts.next_schedule_time = None;
        parts.unprovisioned = vec!["new-server".into()];
        let status = compute(&p, parts, now());
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason, "Suspended");
        assert!(ready.message.contains("new-server"), "{}", ready.message);
        assert_eq!(status.next_schedule_time, None);
    }

    #[test]
    fn the_same_status_later_is_not_a_change() {
        let p = policy();
        let first = compute(&p, parts(&p), now());
        let mut again_policy = p.clone();
        again_policy.status = Some(first.clone());
        let later = now() + chrono::TimeDelta::hours(1);
        let mut again = parts(&again_policy);
        again.anchor = now();
        let second = compute(&again_policy, again, later);
        assert!(!changed(Some(&first), &second));
        assert_eq!(first.conditions, second.conditions, "transition times kept");
        let mut third = second.clone();
        third.missed_runs = 1;
        assert!(changed(Some(&second), &third));
        assert!(changed(None, &second));
    }

    #[test]
    fn the_status_patch_removes_what_is_gone_and_keeps_the_rest() {
        let p = policy();
        let mut old = compute(&p, parts(&p), now());
        old.observed_schedule.as_mut().unwrap().drill_schedule = Some("0 5 * * 0".into());
        let mut new = old.clone();
        new.next_schedule_time = None;
        new.observed_schedule.as_mut().unwrap().drill_schedule = None;
        new.missed_runs = 2;
        let patch = patch(Some(&old), &new);
        assert_eq!(patch["status"]["nextScheduleTime"], serde_json::Value::Null);
        assert!(
            patch["status"]
                .as_object()
                .unwrap()
                .contains_key("nextScheduleTime")
        );
        assert_eq!(
            patch["status"]["observedSchedule"]["drillSchedule"],
            serde_json::Value::Null
        );
        assert_eq!(patch["status"]["observedSchedule"]["schedule"], "0 2 * * *");
        assert_eq!(patch["status"]["missedRuns"], 2);
        // Applying the patch to the old status gives the new one.
        let mut applied = serde_json::to_value(&old).unwrap();
        merge(&mut applied, &patch["status"]);
        assert_eq!(
            serde_json::from_value::<BackupPolicyStatus>(applied).unwrap(),
            new
        );
    }

    /// RFC 7386, as the API server applies a merge patch.
    fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        match (target.as_object_mut(), patch.as_object()) {
            (Some(t), Some(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
            _ => *target = patch.clone(),
        }
    }

    #[test]
    fn an_invalid_policy_is_not_ready_and_keeps_its_history() {
        let mut p = policy();
        let mut previous = compute(&p, parts(&p), now());
        previous.missed_runs = 3;
        previous.consecutive_failures = 1;
        p.status = Some(previous);
        p.spec.schedule = "0 0 * * * *".into();
        let status = invalid(
            &p,
            &Invalid {
                reason: "InvalidSchedule",
                message: "spec.schedule ...".into(),
            },
            observed_schedule(&p),
            now() + chrono::TimeDelta::minutes(5),
        );
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, "InvalidSchedule");
        assert_eq!(status.next_schedule_time, None);
        assert_eq!(status.missed_runs, 3);
        assert_eq!(status.consecutive_failures, 1);
        assert_eq!(
            status.schedule_effective_since,
            Some(kube_time::to_time(now() + chrono::TimeDelta::minutes(5))),
            "the edit is seen"
        );
        assert!(conditions::find(&status.conditions, HEALTHY).is_some());
    }
}
