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

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kube::ResourceExt;
use kube::core::SelectorExt;

use super::backup::Backup;
use super::build;
use super::decision::ScheduleState;
use super::drill::{self, Drill, DrillState, judge_drill};
use super::fetch::Observed;
use super::health;
use super::judge::{Judged, Judging, Trigger, judge_snapshot};
use super::kube_time;
use super::naming;
use super::outcome::Outcome;
use super::overlap;
use super::retention;
use super::run_now::{RUN_NOW_ANNOTATION, run_now};
use super::servers;
use super::status::{self, StatusParts};
use super::validate::Valid;
use crate::api::backup_policy::{BackupPolicyStatus, ObservedSchedule};
use crate::api::virtual_server::LastBackup;
use crate::api::{BackupPolicy, VirtualServer};
use crate::controllers::ownership::OwnershipError;
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
    let drill_failures = drill::finish(&drills, &mut judged, now, &mut writes, &mut notes);

    // 3. Finished runs.
    let health = health::judge_runs(&previous, &judged, drill_failures, now);

    // 4. Runs to start.
    let reading = servers::restores_reading(&observed.servers);
    let current = servers::uids(&observed.servers);
    let mut planned: Vec<Backup> = judged
        .iter()
        .map(|j| j.backup(server_key(j, &current), reading.contains(&j.snapshot)))
        .collect();
    let selected: Vec<&VirtualServer> = observed
        .servers
        .iter()
        .filter(|s| servers::selectable(s) && valid.selector.matches(s.labels()))
        .collect();
    let (provisioned, unprovisioned): (Vec<&VirtualServer>, Vec<&VirtualServer>) =
        selected.iter().partition(|s| servers::disks_ready(s));
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
        .map(|j| j.backup(server_key(j, &current), reading.contains(&j.snapshot)))
        .collect();
    let mut pruning = retention::plan(&backups, &spec.retention, valid.schedule.zone());
    // A failed backup whose run health has not counted yet (an older run is
    // still unfinished) stays until it is counted: pruning it first would
    // hide the failure from consecutiveFailures.
    let uncounted = |snapshot: &str| {
        judged.iter().any(|j| {
            j.snapshot == snapshot
                && j.effective().phase() == crate::api::backup_policy::BackupPhase::Failed
                && health.last_judged.is_none_or(|last| j.slot > last)
        })
    };
    pruning.delete.retain(|d| !uncounted(&d.snapshot));
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
    writes.last_backups = servers::last_backups(&policy_name, &judged, &observed.servers);

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

/// Whose backup this is, as overlap and retention count: the server's name,
/// unless the snapshot was taken of another server of that name — one
/// deleted (and perhaps created again since), told apart by its UID. Each
/// such earlier server keeps its own newest good backup: a new server of
/// the same name never makes an earlier one's only backup prunable.
pub fn server_key(judged: &Judged, current: &BTreeMap<String, String>) -> String {
    match (&judged.server_uid, current.get(&judged.server)) {
        (Some(taken_of), Some(now)) if taken_of == now => judged.server.clone(),
        (None, _) => judged.server.clone(),
        (Some(taken_of), _) => format!(
            "{} (earlier server {})",
            judged.server,
            taken_of.chars().take(8).collect::<String>()
        ),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
