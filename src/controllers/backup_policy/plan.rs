//! One pass of the policy, decided: from the policy, what the driver
//! fetched and the time, everything to write — snapshots to create and
//! delete, drill servers to start and remove, verdicts to mark on
//! snapshots, `lastBackup` to publish on servers — and the new status.
//! Pure; the driver only carries it out.
//!
//! In order:
//! 1. the anchor: when the current schedule took effect ([`anchor`]);
//! 2. every backup judged ([`super::judge`]), and every drill in flight
//!    ([`super::drill`]), whose verdicts are marked on their snapshots;
//! 3. finished runs judged into `consecutiveFailures` ([`super::health`]);
//! 4. the slot due (if any) and a run-now request started for the selected
//!    servers, skipping busy ones ([`super::decision`], [`super::overlap`]);
//! 5. a drill due (if any) started on each server's newest good backup;
//! 6. retention ([`super::retention`]) and the servers' `lastBackup`;
//! 7. the status.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kube::ResourceExt;
use kube::core::SelectorExt;

use super::backup::Backup;
use super::build;
use super::decision::ScheduleState;
use super::drill::{Drill, DrillState, judge_drill};
use super::fetch::Observed;
use super::health::{self, RunVerdict, ServerFailure, ServerRun};
use super::judge::{DrillMark, DrillVerdict, Judged, Judging, Trigger, judge_snapshot};
use super::kube_time;
use super::naming;
use super::outcome::{FailureReason, Outcome};
use super::overlap;
use super::retention;
use super::run_now::{RUN_NOW_ANNOTATION, run_now};
use super::status::{self, StatusParts};
use super::validate::Valid;
use crate::api::backup_policy::{BackupPolicyStatus, ObservedSchedule};
use crate::api::conditions;
use crate::api::virtual_server::LastBackup;
use crate::api::{BackupPolicy, VirtualServer};
use crate::controllers::ownership::OwnershipError;
use crate::controllers::virtual_server::status::DISKS_READY;
use crate::kubevirt::VirtualMachineSnapshot;

/// Everything one pass writes. The driver destructures it without `..`,
/// so a write that is planned but never carried out does not compile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Writes {
    /// New backups; an existing name means the backup exists already.
    pub create_snapshots: Vec<VirtualMachineSnapshot>,
    /// Backups retention lets go.
    pub delete_snapshots: Vec<String>,
    /// Annotations to merge into snapshots (drill verdicts), by name.
    pub mark_snapshots: Vec<(String, BTreeMap<String, String>)>,
    /// Restore drills to start.
    pub create_drills: Vec<VirtualServer>,
    /// Finished restore drills' servers.
    pub delete_drills: Vec<String>,
    /// `status.lastBackup` to publish, by server name.
    pub last_backups: Vec<(String, LastBackup)>,
}

/// An event to post about what the pass decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// When to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wake {
    /// Until the next slot (backup or drill) is due.
    pub next_slot: Option<Duration>,
    /// Something is in flight (a backup in progress, a drill running):
    /// look again soon rather than at the next slot.
    pub waiting: bool,
}

/// A pass, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub writes: Writes,
    pub status: BackupPolicyStatus,
    pub notes: Vec<Note>,
    pub wake: Wake,
}

/// Event reasons.
pub mod reason {
    pub const BACKUPS_STARTED: &str = "BackupsStarted";
    pub const SKIPPED_BUSY: &str = "SkippedBusy";
    pub const BACKUPS_PRUNED: &str = "BackupsPruned";
    pub const DRILL_STARTED: &str = "RestoreDrillStarted";
    pub const DRILL_PASSED: &str = "RestoreDrillPassed";
    pub const DRILL_FAILED: &str = "RestoreDrillFailed";
    pub const TOO_MANY_FAILURES: &str = super::health::TOO_MANY_FAILURES;
}

/// The schedule settings as the spec has them now.
pub fn observed_schedule(policy: &BackupPolicy) -> ObservedSchedule {
    let spec = &policy.spec;
    ObservedSchedule {
        schedule: spec.schedule.clone(),
        time_zone: spec.time_zone.clone(),
        suspend: spec.suspend,
        drill_schedule: spec
            .verify
            .as_ref()
            .and_then(|v| v.restore_drill.as_ref())
            .map(|d| d.schedule.clone()),
    }
}

/// When the current schedule took effect. Unchanged while the schedule
/// settings are the ones last seen; otherwise (first visit, an edit, a
/// suspend or resume) the moment the change is seen — never before the
/// policy's creation, should the API server's clock be ahead of ours. A
/// policy created while the operator was down therefore runs from the next
/// slot after the operator saw it, not a slot it never saw.
pub fn anchor(
    previous: &BackupPolicyStatus,
    seen: &ObservedSchedule,
    created: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match (
        &previous.observed_schedule,
        &previous.schedule_effective_since,
    ) {
        (Some(last_seen), Some(since)) if last_seen == seen => kube_time::to_utc(since),
        _ => created.map_or(now, |c| c.max(now)),
    }
}

/// Decides the pass.
pub fn plan(
    policy: &BackupPolicy,
    valid: &Valid,
    observed: &Observed,
    now: DateTime<Utc>,
) -> Result<Pass, OwnershipError> {
    let previous = policy.status.clone().unwrap_or_default();
    let spec = &policy.spec;
    let policy_name = policy.name_any();
    let seen = observed_schedule(policy);
    let anchor = anchor(
        &previous,
        &seen,
        policy
            .metadata
            .creation_timestamp
            .as_ref()
            .map(kube_time::to_utc),
        now,
    );
    let mut writes = Writes::default();
    let mut notes = Vec::new();

    // 2. Backups and drills as they are.
    let judging = Judging {
        consistency: spec.consistency,
        run_deadline: TimeDelta::seconds(spec.run_deadline_seconds),
        now,
    };
    let mut judged: Vec<Judged> = observed
        .snapshots
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .filter_map(|s| judge_snapshot(s, content_of(observed, s), &judging))
        .collect();
    let drill_timeout = valid
        .drill
        .as_ref()
        .map_or(TimeDelta::zero(), |d| d.timeout);
    let drills: Vec<Drill> = observed
        .servers
        .iter()
        .filter(|s| {
            s.labels().get(naming::POLICY_LABEL) == Some(&naming::label_value(&policy_name))
        })
        .filter_map(|s| judge_drill(s, drill_timeout, now))
        .collect();
    let drill_failures = finish_drills(&drills, &mut judged, now, &mut writes, &mut notes);

    // 3. Finished runs.
    let health = judge_runs(&previous, &judged, drill_failures, now);

    // 4. Runs to start.
    let reading = restores_reading(&observed.servers);
    let mut planned: Vec<Backup> = judged
        .iter()
        .map(|j| j.backup(reading.contains(&j.snapshot)))
        .collect();
    let selected: Vec<&VirtualServer> = observed
        .servers
        .iter()
        .filter(|s| selectable(s) && valid.selector.matches(s.labels()))
        .collect();
    let (provisioned, unprovisioned): (Vec<&VirtualServer>, Vec<&VirtualServer>) =
        selected.iter().partition(|s| disks_ready(s));
    let ready_names: Vec<String> = provisioned.iter().map(|s| s.name_any()).collect();
    let schedule_state = |last_started: Option<DateTime<Utc>>| ScheduleState {
        anchor,
        last_started,
        now,
        starting_deadline: TimeDelta::seconds(spec.starting_deadline_seconds),
        suspended: spec.suspend,
    };
    let last_started = judged
        .iter()
        .filter(|j| j.trigger == Trigger::Schedule)
        .map(|j| j.slot)
        .chain(previous.last_schedule_time.as_ref().map(kube_time::to_utc))
        .max();
    let decision = valid.schedule.decide(&schedule_state(last_started));
    let mut missed_runs = previous.missed_runs;
    let mut last_schedule_time = last_started.map(kube_time::to_time);
    let mut started: Vec<Judged> = Vec::new();
    let mut start = |slot: DateTime<Utc>, trigger: Trigger, planned: &mut Vec<Backup>| {
        let run = overlap::plan_run(slot, &ready_names, planned);
        for server in &run.start {
            let Some(vs) = provisioned.iter().find(|s| &s.name_any() == server) else {
                continue;
            };
            let snapshot = build::snapshot::build(policy, vs, slot, &trigger, now);
            // Recorded in progress right away, so the status shows the run.
            started.extend(judge_snapshot(&snapshot, None, &judging));
            planned.push(Backup {
                server: server.clone(),
                snapshot: snapshot.name_any(),
                slot,
                phase: crate::api::backup_policy::BackupPhase::InProgress,
                restore_reading: false,
            });
            writes.create_snapshots.push(snapshot);
        }
        run_notes(slot, &trigger, &run, &mut notes);
        run
    };
    if let Some(slot) = decision.run {
        let run = start(slot, Trigger::Schedule, &mut planned);
        let missed = decision.missed.saturating_add(run.missed());
        missed_runs = missed_runs.saturating_add(i64::try_from(missed).unwrap_or(i64::MAX));
        last_schedule_time = Some(kube_time::to_time(slot));
    }
    let mut last_run_now_token = previous.last_run_now_token.clone();
    let asked = run_now(
        policy
            .annotations()
            .get(RUN_NOW_ANNOTATION)
            .map(String::as_str),
        previous.last_run_now_token.as_deref(),
    );
    if let Some(token) = asked {
        // A retry (the status write of an earlier pass failed) finds the
        // backups this token already started and reuses their slot, so
        // their names, and nothing else, are created again.
        let trigger = Trigger::RunNow(token.clone());
        let slot = judged
            .iter()
            .find(|j| j.trigger == trigger)
            .map(|j| j.slot)
            .unwrap_or_else(|| now.trunc_subsecs(0));
        start(slot, trigger, &mut planned);
        last_run_now_token = Some(token);
    }

    judged.extend(started);

    // 5. A drill due.
    let mut last_drill_time = previous.last_drill_time.clone();
    let mut drill_wake = None;
    if let Some(drill) = &valid.drill {
        let last = previous.last_drill_time.as_ref().map(kube_time::to_utc);
        let due = drill.schedule.decide(&schedule_state(last));
        drill_wake = due.requeue_after;
        if let Some(drill_slot) = due.run {
            for server in &selected {
                let name = server.name_any();
                let busy = drills
                    .iter()
                    .any(|d| d.server == name && d.state == DrillState::Running);
                let newest_good = judged
                    .iter()
                    .filter(|j| j.server == name && j.is_good())
                    .max_by_key(|j| j.slot);
                if let (false, Some(backup)) = (busy, newest_good) {
                    writes.create_drills.push(build::drill_server::build(
                        policy,
                        server,
                        &backup.snapshot,
                        drill_slot,
                        now,
                    )?);
                    notes.push(Note {
                        warning: false,
                        reason: reason::DRILL_STARTED,
                        message: format!(
                            "restoring {} of {name} to prove it starts",
                            backup.snapshot
                        ),
                    });
                }
            }
            last_drill_time = Some(kube_time::to_time(drill_slot));
        }
    }

    // 6. Retention and lastBackup.
    let backups: Vec<Backup> = judged
        .iter()
        .map(|j| j.backup(reading.contains(&j.snapshot)))
        .collect();
    let pruning = retention::plan(&backups, &spec.retention, valid.schedule.zone());
    writes.delete_snapshots = pruning.delete.iter().map(|d| d.snapshot.clone()).collect();
    if !pruning.delete.is_empty() {
        notes.push(Note {
            warning: false,
            reason: reason::BACKUPS_PRUNED,
            message: pruning
                .delete
                .iter()
                .map(|d| format!("{} ({})", d.snapshot, d.reason))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    judged.retain(|j| !writes.delete_snapshots.contains(&j.snapshot));
    writes.last_backups = last_backups(&policy_name, &judged, &observed.servers);

    // 7. Status.
    let healthy = health::healthy_condition(
        health.consecutive_failures,
        spec.max_consecutive_failures,
        &health.latest_failures(&judged),
        health.any_judged(),
    );
    if health.failed_now && !healthy.is_true() {
        notes.push(Note {
            warning: true,
            reason: reason::TOO_MANY_FAILURES,
            message: healthy.message.clone(),
        });
    }
    let in_flight = judged.iter().any(|j| j.outcome == Outcome::InProgress)
        || drills.iter().any(|d| d.state == DrillState::Running)
        || !writes.create_snapshots.is_empty()
        || !writes.create_drills.is_empty();
    let status = status::compute(
        policy,
        StatusParts {
            observed_schedule: seen,
            anchor,
            judged: &judged,
            last_schedule_time,
            last_successful_time: health.last_successful_time.clone(),
            next_schedule_time: decision.next.map(|t| valid.schedule.local_rfc3339(t)),
            consecutive_failures: health.consecutive_failures,
            missed_runs,
            last_run_now_token,
            last_drill_time,
            last_judged_run_time: health.last_judged.map(kube_time::to_time),
            selected: selected.len(),
            unprovisioned: unprovisioned.iter().map(|s| s.name_any()).collect(),
            healthy,
        },
        now,
    );
    Ok(Pass {
        writes,
        status,
        notes,
        wake: Wake {
            next_slot: [decision.requeue_after, drill_wake]
                .into_iter()
                .flatten()
                .min(),
            waiting: in_flight,
        },
    })
}

fn content_of<'a>(
    observed: &'a Observed,
    snapshot: &VirtualMachineSnapshot,
) -> Option<&'a crate::kubevirt::VirtualMachineSnapshotContent> {
    let name = snapshot
        .status
        .as_ref()?
        .virtual_machine_snapshot_content_name
        .as_ref()?;
    observed.contents.get(name)
}

/// A server the policy may select: not being deleted, and not a restore
/// drill's temporary copy.
fn selectable(server: &VirtualServer) -> bool {
    server.metadata.deletion_timestamp.is_none()
        && server.labels().get(naming::ROLE_LABEL).map(String::as_str) != Some(naming::DRILL_ROLE)
}

/// Whether a server's disks exist and are ready, so its VM can be
/// snapshotted. A server still provisioning is skipped (and named in
/// `Ready`'s message) rather than given a snapshot that cannot succeed.
fn disks_ready(server: &VirtualServer) -> bool {
    server
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, DISKS_READY))
}

/// Snapshots a restore is reading from: those named in `source.backup` by
/// a server (a restore, or a drill) whose disks are not all restored yet.
pub fn restores_reading(servers: &[VirtualServer]) -> BTreeSet<String> {
    servers
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .filter_map(|s| {
            let snapshot = &s.spec.source.backup.as_ref()?.snapshot;
            let restored = s.status.as_ref().is_some_and(|st| {
                st.disks.len() >= s.spec.disks.len()
                    && st
                        .disks
                        .iter()
                        .all(|d| d.phase.as_deref() == Some("Succeeded"))
            });
            (!restored).then(|| snapshot.clone())
        })
        .collect()
}

fn run_notes(
    slot: DateTime<Utc>,
    trigger: &Trigger,
    run: &overlap::RunPlan,
    notes: &mut Vec<Note>,
) {
    let what = match trigger {
        Trigger::Schedule => format!("slot {}", slot.to_rfc3339()),
        Trigger::RunNow(token) => format!("run-now {token:?}"),
    };
    if !run.start.is_empty() {
        notes.push(Note {
            warning: false,
            reason: reason::BACKUPS_STARTED,
            message: format!("{what}: backing up {}", run.start.join(", ")),
        });
    }
    if !run.busy.is_empty() {
        notes.push(Note {
            warning: false,
            reason: reason::SKIPPED_BUSY,
            message: format!(
                "{what}: skipped {} (previous backup still in progress)",
                run.busy
                    .iter()
                    .map(|b| format!("{} ({})", b.server, b.snapshot))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
}

/// Records the verdict of every finished drill on its snapshot and
/// removes its server. Returns the failures (one per failed server), which
/// count as one failed run.
fn finish_drills(
    drills: &[Drill],
    judged: &mut [Judged],
    now: DateTime<Utc>,
    writes: &mut Writes,
    notes: &mut Vec<Note>,
) -> Vec<ServerFailure> {
    let mut failures = Vec::new();
    for drill in drills {
        let verdict = match &drill.state {
            DrillState::Running => continue,
            DrillState::Passed => DrillVerdict::Verified(now),
            DrillState::Failed(why) => DrillVerdict::Failed(why.clone()),
        };
        writes.delete_drills.push(drill.name.clone());
        let Some(backup) = judged.iter_mut().find(|j| j.snapshot == drill.snapshot) else {
            continue; // the backup is gone; nothing to mark
        };
        let mark = DrillMark {
            drill: drill.drill.clone(),
            verdict,
        };
        // Seen before (the server's deletion did not go through yet):
        // already marked and counted.
        if backup.drill.as_ref().is_some_and(|m| m.drill == mark.drill) {
            continue;
        }
        writes.mark_snapshots.push((
            backup.snapshot.clone(),
            super::judge::drill_annotations(&mark, now),
        ));
        match &mark.verdict {
            DrillVerdict::Verified(_) => notes.push(Note {
                warning: false,
                reason: reason::DRILL_PASSED,
                message: format!(
                    "{} of {} restored and started",
                    backup.snapshot, backup.server
                ),
            }),
            DrillVerdict::Failed(why) => {
                notes.push(Note {
                    warning: true,
                    reason: reason::DRILL_FAILED,
                    message: format!("{} of {}: {why}", backup.snapshot, backup.server),
                });
                failures.push(ServerFailure {
                    server: backup.server.clone(),
                    reason: FailureReason::RestoreDrillFailed,
                    message: why.clone(),
                });
            }
        }
        backup.drill = Some(mark);
    }
    failures
}

/// The health counters after this pass.
#[derive(Debug, Clone, PartialEq)]
struct Health {
    consecutive_failures: i32,
    last_judged: Option<DateTime<Utc>>,
    last_successful_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Failures judged in this pass, if any.
    fresh_failures: Vec<ServerFailure>,
    failed_now: bool,
}

impl Health {
    fn any_judged(&self) -> bool {
        self.last_judged.is_some() || self.consecutive_failures > 0
    }

    /// The failures the `Healthy` message names: this pass's, or else
    /// those of the newest failed backups still recorded.
    fn latest_failures(&self, judged: &[Judged]) -> Vec<ServerFailure> {
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
fn judge_runs(
    previous: &BackupPolicyStatus,
    judged: &[Judged],
    drill_failures: Vec<ServerFailure>,
    now: DateTime<Utc>,
) -> Health {
    let mut health = Health {
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
        let verdict = health::judge_run(&servers);
        if verdict == RunVerdict::Unfinished {
            break;
        }
        health.consecutive_failures =
            health::consecutive_failures(health.consecutive_failures, &verdict);
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

/// `status.lastBackup` for each existing server this policy has a good
/// backup of, where it differs from what the server shows. A newer backup
/// published there by another policy is left alone.
fn last_backups(
    policy: &str,
    judged: &[Judged],
    servers: &[VirtualServer],
) -> Vec<(String, LastBackup)> {
    let mut out = Vec::new();
    for server in servers.iter().filter(|s| selectable(s)) {
        let name = server.name_any();
        let Some(newest) = judged
            .iter()
            .filter(|j| j.server == name && j.is_good())
            .max_by_key(|j| j.slot)
        else {
            continue;
        };
        let ours = LastBackup {
            policy: policy.to_string(),
            snapshot: newest.snapshot.clone(),
            time: kube_time::to_time(newest.taken.unwrap_or(newest.slot)),
        };
        let shown = server.status.as_ref().and_then(|s| s.last_backup.as_ref());
        let publish = match shown {
            None => true,
            Some(shown) if *shown == ours => false,
            Some(shown) => shown.policy == policy || shown.time.0 <= ours.time.0,
        };
        if publish {
            out.push((name, ours));
        }
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
