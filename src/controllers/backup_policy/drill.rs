//! Restore drills in flight: each is a temporary VirtualServer restored
//! from a server's newest good backup. It has passed once the server is
//! `Ready` (its disks restored and the machine running); it has failed when
//! it is not Ready within `spec.verify.restoreDrill.timeoutSeconds`. Pure.

use chrono::{DateTime, TimeDelta, Utc};
use kube::ResourceExt;

use super::health::ServerFailure;
use super::judge::{DrillMark, DrillVerdict, Judged, drill_annotations, started_at};
use super::naming;
use super::outcome::FailureReason;
use super::plan::{Note, Writes, reason};
use crate::api::VirtualServer;
use crate::api::conditions::{self, READY};

/// Where a drill stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillState {
    /// Still restoring or starting, within its timeout.
    Running,
    /// The restored server is Ready.
    Passed,
    /// It was not Ready in time; why.
    Failed(String),
}

/// One drill server, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drill {
    /// The temporary VirtualServer.
    pub name: String,
    /// The server whose backup is restored.
    pub server: String,
    /// The snapshot restored.
    pub snapshot: String,
    /// The drill slot ([`naming::slot_label`]) it belongs to.
    pub drill: String,
    pub state: DrillState,
}

/// Reads a drill server at `now`. `None` for a server that is not a drill
/// or is already being deleted.
pub fn judge_drill(
    server: &VirtualServer,
    timeout: TimeDelta,
    now: DateTime<Utc>,
) -> Option<Drill> {
    if server.metadata.deletion_timestamp.is_some()
        || server.labels().get(naming::ROLE_LABEL).map(String::as_str) != Some(naming::DRILL_ROLE)
    {
        return None;
    }
    let annotations = server.annotations();
    let snapshot = annotations.get(naming::DRILL_SNAPSHOT_ANNOTATION)?.clone();
    let drill = annotations.get(naming::DRILL_ANNOTATION)?.clone();
    let of = server.labels().get(naming::DRILL_OF_LABEL)?.clone();
    let conditions = server
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let state = if conditions::is_true(conditions, READY) {
        DrillState::Passed
    } else if now - started_at(server).unwrap_or(now) > timeout {
        let why = conditions::find(conditions, READY)
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_else(|| "it was never reconciled".into());
        DrillState::Failed(format!(
            "the server restored from {snapshot} was not running within {}s ({why})",
            timeout.num_seconds()
        ))
    } else {
        DrillState::Running
    };
    Some(Drill {
        name: server.name_any(),
        server: of,
        snapshot,
        drill,
        state,
    })
}

/// Records the verdict of every finished drill on its snapshot and
/// removes its server. Returns the failures (one per failed server), which
/// count as one failed run.
pub fn finish(
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
        writes
            .mark_snapshots
            .push((backup.snapshot.clone(), drill_annotations(&mark, now)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn drill_server(ready: Option<(&str, &str, &str)>) -> VirtualServer {
        let conditions: Vec<serde_json::Value> = ready
            .map(|(status, reason, message)| {
                serde_json::json!({
                    "type": "Ready", "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": "2026-01-11T05:00:05Z",
                })
            })
            .into_iter()
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "VirtualServer",
            "metadata": {
                "name": "erp-drill-0a1b2c3d", "namespace": "client-a",
                "creationTimestamp": "2026-01-11T05:00:01Z",
                "labels": {
                    "partnercloud.io/backup-policy": "nightly",
                    "partnercloud.io/role": "restore-drill",
                    "partnercloud.io/drill-of": "erp",
                },
                "annotations": {
                    "partnercloud.io/drill-snapshot": "erp-nightly-202601100200-1a2b3c4d",
                    "partnercloud.io/drill": "20260111T050000Z",
                    "partnercloud.io/started-at": "2026-01-11T05:00:00.000Z",
                },
            },
            "spec": {"cores": 2, "memory": "4Gi", "disks": [{"name": "system", "size": "20Gi"}],
                     "source": {"backup": {"snapshot": "erp-nightly-202601100200-1a2b3c4d"}}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 11, 5, minute, 0).unwrap()
    }

    #[test]
    fn a_ready_drill_server_passes() {
        let d = judge_drill(
            &drill_server(Some(("True", "Running", "up"))),
            TimeDelta::minutes(30),
            at(3),
        )
        .unwrap();
        assert_eq!(d.state, DrillState::Passed);
        assert_eq!(d.server, "erp");
        assert_eq!(d.snapshot, "erp-nightly-202601100200-1a2b3c4d");
        assert_eq!(d.drill, "20260111T050000Z");
    }

    #[test]
    fn a_drill_server_not_ready_is_running_until_its_timeout_then_fails_with_why() {
        let starting = drill_server(Some(("False", "Starting", "starting (Scheduling)")));
        assert_eq!(
            judge_drill(&starting, TimeDelta::minutes(30), at(29))
                .unwrap()
                .state,
            DrillState::Running
        );
        let DrillState::Failed(why) = judge_drill(&starting, TimeDelta::minutes(30), at(31))
            .unwrap()
            .state
        else {
            panic!("should have failed");
        };
        assert!(why.contains("not running within 1800s"), "{why}");
        assert!(why.contains("Starting: starting (Scheduling)"), "{why}");
    }

    #[test]
    fn servers_that_are_not_drills_or_are_going_away_are_ignored() {
        let mut plain = drill_server(None);
        plain
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("partnercloud.io/role");
        assert!(judge_drill(&plain, TimeDelta::minutes(30), at(1)).is_none());
        let mut deleting = drill_server(None);
        deleting.metadata.deletion_timestamp =
            Some(crate::controllers::backup_policy::kube_time::to_time(at(1)));
        assert!(judge_drill(&deleting, TimeDelta::minutes(30), at(1)).is_none());
    }
}
