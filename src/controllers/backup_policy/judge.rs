//! Each snapshot a policy made, judged into a backup: which server and
//! slot it belongs to, what started it, its outcome (by
//! [`super::outcome::judge`]) and the verdict a restore drill recorded on
//! it. Everything comes from the snapshot itself (labels, annotations,
//! status) and its content, so the backups can be rebuilt from the cluster
//! at any time; `status.backups` is only their summary.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use kube::ResourceExt;

use super::backup::Backup;
use super::kube_time;
use super::naming;
use super::outcome::{self, FailureReason, ObservedSnapshot, Outcome, SnapshotPhase, VolumeSize};
use crate::api::backup_policy::{BackupRecord, Consistency};
use crate::api::quantity::parse_bytes;
use crate::kubevirt::{VirtualMachineSnapshot, VirtualMachineSnapshotContent};

/// What started a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A schedule slot.
    Schedule,
    /// The run-now annotation, with its token.
    RunNow(String),
}

impl Trigger {
    /// The value of [`naming::TRIGGER_LABEL`].
    pub fn label(&self) -> &'static str {
        match self {
            Self::Schedule => naming::TRIGGER_SCHEDULE,
            Self::RunNow(_) => naming::TRIGGER_RUN_NOW,
        }
    }
}

/// What a restore drill found out about a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillVerdict {
    /// A server restored from it started, at this time.
    Verified(DateTime<Utc>),
    /// It could not be restored into a running server; why.
    Failed(String),
}

/// A drill's verdict and the drill slot it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillMark {
    /// The drill's slot, as [`naming::slot_label`].
    pub drill: String,
    pub verdict: DrillVerdict,
}

/// One backup, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub server: String,
    /// The UID of the server the snapshot was taken of, when labelled.
    pub server_uid: Option<String>,
    pub snapshot: String,
    pub slot: DateTime<Utc>,
    pub trigger: Trigger,
    /// The snapshot's own outcome: what its run is judged by.
    pub outcome: Outcome,
    /// The latest restore drill's verdict, if one ran.
    pub drill: Option<DrillMark>,
    /// When KubeVirt says the snapshot was taken, if it says.
    pub taken: Option<DateTime<Utc>>,
}

impl Judged {
    /// The outcome once the drill is taken into account: a backup a drill
    /// could not restore is a failed backup (not good, whatever its
    /// snapshot says).
    pub fn effective(&self) -> Outcome {
        match (&self.outcome, &self.drill) {
            (
                Outcome::Good { .. },
                Some(DrillMark {
                    verdict: DrillVerdict::Failed(message),
                    ..
                }),
            ) => Outcome::Failed {
                reason: FailureReason::RestoreDrillFailed,
                message: format!("restore drill failed: {message}"),
            },
            (outcome, _) => outcome.clone(),
        }
    }

    /// Good: complete, ready, and not refuted by a drill.
    pub fn is_good(&self) -> bool {
        matches!(self.effective(), Outcome::Good { .. })
    }

    /// When the backup was verified by a drill.
    pub fn verified(&self) -> Option<DateTime<Utc>> {
        match &self.drill {
            Some(DrillMark {
                verdict: DrillVerdict::Verified(at),
                ..
            }) => Some(*at),
            _ => None,
        }
    }

    /// The line in `status.backups`.
    pub fn record(&self) -> BackupRecord {
        let effective = self.effective();
        let (consistency, size_bytes, reason, message) = match &effective {
            Outcome::InProgress => (None, None, None, None),
            Outcome::Good {
                consistency,
                size_bytes,
            } => (
                Some(*consistency),
                Some(i64::try_from(*size_bytes).unwrap_or(i64::MAX)),
                None,
                None,
            ),
            Outcome::Failed { reason, message } => (
                None,
                None,
                Some(reason.as_str().to_string()),
                Some(message.clone()),
            ),
        };
        BackupRecord {
            server: self.server.clone(),
            snapshot: self.snapshot.clone(),
            slot: kube_time::to_time(self.slot),
            phase: effective.phase(),
            consistency,
            verified: self.verified().map(kube_time::to_time),
            size_bytes,
            reason,
            message,
        }
    }

    /// The backup as overlap and retention see it, its server known as
    /// `server_key` (see `plan::server_key`).
    pub fn backup(&self, server_key: String, restore_reading: bool) -> Backup {
        Backup {
            server: server_key,
            snapshot: self.snapshot.clone(),
            slot: self.slot,
            phase: self.effective().phase(),
            restore_reading,
        }
    }
}

/// How snapshots are judged: the policy's settings and the time.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    pub consistency: Consistency,
    pub run_deadline: TimeDelta,
    pub now: DateTime<Utc>,
}

/// Judges one snapshot. `None` for a snapshot that does not say which
/// server and slot it belongs to (not made by a policy).
pub fn judge_snapshot(
    snapshot: &VirtualMachineSnapshot,
    content: Option<&VirtualMachineSnapshotContent>,
    judging: &Judging,
) -> Option<Judged> {
    let labels = snapshot.labels();
    let annotations = snapshot.annotations();
    let server = labels.get(naming::SERVER_LABEL)?.clone();
    let slot = naming::parse_slot_label(labels.get(naming::SLOT_LABEL)?)?;
    let trigger = match labels.get(naming::TRIGGER_LABEL).map(String::as_str) {
        Some(naming::TRIGGER_RUN_NOW) => Trigger::RunNow(
            annotations
                .get(naming::RUN_NOW_TOKEN_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
        ),
        _ => Trigger::Schedule,
    };
    let status = snapshot.status.clone().unwrap_or_default();
    let observed = ObservedSnapshot {
        phase: match status.phase.as_deref() {
            Some("InProgress") => SnapshotPhase::InProgress,
            Some("Succeeded") => SnapshotPhase::Succeeded,
            Some("Failed") => SnapshotPhase::Failed,
            _ => SnapshotPhase::Unknown,
        },
        ready_to_use: status.ready_to_use.unwrap_or(false),
        indications: status.indications.clone(),
        error_message: status.error.as_ref().and_then(|e| e.message.clone()),
        volumes: content
            .map(|c| {
                c.spec
                    .volume_backups
                    .iter()
                    .map(|b| VolumeSize {
                        name: b.volume_name.clone(),
                        restore_size_bytes: b.restore_size().and_then(|s| parse_bytes(&s).ok()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        expected_volumes: annotations
            .get(naming::EXPECTED_VOLUMES_ANNOTATION)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| {
                status
                    .snapshot_volumes
                    .as_ref()
                    .map_or(0, |v| v.included_volumes.len())
            }),
        created: started_at(snapshot).unwrap_or(judging.now),
    };
    Some(Judged {
        server,
        server_uid: labels.get(naming::SERVER_UID_LABEL).cloned(),
        snapshot: snapshot.name_any(),
        slot,
        trigger,
        outcome: outcome::judge(
            &observed,
            judging.consistency,
            judging.run_deadline,
            judging.now,
        ),
        drill: drill_mark(snapshot),
        taken: status.creation_time.as_deref().and_then(parse_time),
    })
}

/// When the policy started this object, by its own clock; else when the
/// API server created it.
pub fn started_at<K: ResourceExt>(object: &K) -> Option<DateTime<Utc>> {
    object
        .annotations()
        .get(naming::STARTED_AT_ANNOTATION)
        .and_then(|t| parse_time(t))
        .or_else(|| {
            object
                .meta()
                .creation_timestamp
                .as_ref()
                .map(kube_time::to_utc)
        })
}

/// A time as the annotations hold it.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn drill_mark(snapshot: &VirtualMachineSnapshot) -> Option<DrillMark> {
    let annotations = snapshot.annotations();
    let drill = annotations.get(naming::DRILL_ANNOTATION)?.clone();
    let verdict = match annotations
        .get(naming::DRILL_RESULT_ANNOTATION)
        .map(String::as_str)
    {
        Some(VERIFIED) => DrillVerdict::Verified(
            annotations
                .get(naming::DRILL_TIME_ANNOTATION)
                .and_then(|t| parse_time(t))?,
        ),
        Some(FAILED) => DrillVerdict::Failed(
            annotations
                .get(naming::DRILL_MESSAGE_ANNOTATION)
                .cloned()
                .unwrap_or_else(|| "no reason recorded".into()),
        ),
        _ => return None,
    };
    Some(DrillMark { drill, verdict })
}

/// Values of [`naming::DRILL_RESULT_ANNOTATION`].
pub const VERIFIED: &str = "Verified";
pub const FAILED: &str = "Failed";

/// The annotations that record a drill's verdict on a snapshot.
pub fn drill_annotations(
    mark: &DrillMark,
    at: DateTime<Utc>,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::from([
        (naming::DRILL_ANNOTATION.to_string(), mark.drill.clone()),
        (naming::DRILL_TIME_ANNOTATION.to_string(), format_time(at)),
    ]);
    match &mark.verdict {
        DrillVerdict::Verified(_) => {
            out.insert(
                naming::DRILL_RESULT_ANNOTATION.to_string(),
                VERIFIED.to_string(),
            );
        }
        DrillVerdict::Failed(message) => {
            out.insert(
                naming::DRILL_RESULT_ANNOTATION.to_string(),
                FAILED.to_string(),
            );
            out.insert(
                naming::DRILL_MESSAGE_ANNOTATION.to_string(),
                message.clone(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backup_policy::BackupPhase;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 2, 10, 0).unwrap()
    }

    fn judging() -> Judging {
        Judging {
            consistency: Consistency::Filesystem,
            run_deadline: TimeDelta::hours(1),
            now: now(),
        }
    }

    fn snapshot(
        status: serde_json::Value,
        annotations: serde_json::Value,
    ) -> VirtualMachineSnapshot {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshot",
            "metadata": {
                "name": "erp-nightly-202601050200-1a2b3c4d", "namespace": "client-a",
                "creationTimestamp": "2026-01-05T02:00:01Z",
                "labels": {
                    "partnercloud.io/backup-policy": "nightly",
                    "partnercloud.io/server": "erp",
                    "partnercloud.io/slot": "20260105T020000Z",
                    "partnercloud.io/trigger": "schedule",
                },
                "annotations": annotations,
            },
            "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "erp"}},
            "status": status,
        }))
        .unwrap()
    }

    fn content(sizes: &[(&str, &str)]) -> VirtualMachineSnapshotContent {
        let backups: Vec<serde_json::Value> = sizes
            .iter()
            .map(|(name, size)| serde_json::json!({
                "volumeName": name,
                "volumeSnapshotName": format!("vs-{name}"),
                "persistentVolumeClaim": {"spec": {"resources": {"requests": {"storage": size}}}},
            }))
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshotContent",
            "metadata": {"name": "c", "namespace": "client-a"},
            "spec": {"virtualMachineSnapshotName": "erp-nightly-202601050200-1a2b3c4d", "volumeBackups": backups},
        }))
        .unwrap()
    }

    fn succeeded(indications: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "phase": "Succeeded", "readyToUse": true, "indications": indications,
            "creationTime": "2026-01-05T02:00:09Z",
            "snapshotVolumes": {"includedVolumes": ["system", "data"]},
        })
    }

    #[test]
    fn a_good_snapshot_becomes_a_succeeded_record_with_size_and_consistency() {
        let judged = judge_snapshot(
            &snapshot(
                succeeded(&["Online", "GuestAgent"]),
                serde_json::json!({"partnercloud.io/expected-volumes": "2"}),
            ),
            Some(&content(&[("system", "20Gi"), ("data", "10Gi")])),
            &judging(),
        )
        .unwrap();
        assert_eq!(judged.server, "erp");
        assert_eq!(
            judged.slot,
            Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap()
        );
        assert_eq!(judged.trigger, Trigger::Schedule);
        assert!(judged.is_good());
        let record = judged.record();
        assert_eq!(record.phase, BackupPhase::Succeeded);
        assert_eq!(record.consistency, Some(Consistency::Filesystem));
        assert_eq!(record.size_bytes, Some(30 << 30));
        assert_eq!(record.reason, None);
        assert_eq!(
            judged.taken,
            Some(Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 9).unwrap())
        );
    }

    #[test]
    fn without_the_guest_agent_the_backup_is_crash_consistent() {
        let judged = judge_snapshot(
            &snapshot(
                succeeded(&["Online", "NoGuestAgent"]),
                serde_json::json!({}),
            ),
            Some(&content(&[("system", "20Gi"), ("data", "10Gi")])),
            &judging(),
        )
        .unwrap();
        assert_eq!(judged.record().consistency, Some(Consistency::Crash));
    }

    #[test]
    fn a_volume_missing_from_the_content_is_not_good() {
        // The server had two disks; the content holds one.
        let judged = judge_snapshot(
            &snapshot(
                succeeded(&["GuestAgent"]),
                serde_json::json!({"partnercloud.io/expected-volumes": "2"}),
            ),
            Some(&content(&[("system", "20Gi")])),
            &judging(),
        )
        .unwrap();
        assert_eq!(judged.outcome, Outcome::InProgress);
    }

    #[test]
    fn the_deadline_counts_from_the_policys_own_start_time() {
        // Created (by the API server's clock) ten minutes ago, but started
        // by the policy's clock two hours ago: past the one-hour deadline.
        let stuck = snapshot(
            serde_json::json!({"phase": "InProgress"}),
            serde_json::json!({"partnercloud.io/started-at": "2026-01-05T00:10:00.000Z"}),
        );
        let judged = judge_snapshot(&stuck, None, &judging()).unwrap();
        let record = judged.record();
        assert_eq!(record.phase, BackupPhase::Failed);
        assert_eq!(record.reason.as_deref(), Some("DeadlineExceeded"));
        assert!(record.message.unwrap().contains("within 3600s"));
        // Without the annotation the creation time counts.
        let fresh = snapshot(
            serde_json::json!({"phase": "InProgress"}),
            serde_json::json!({}),
        );
        assert_eq!(
            judge_snapshot(&fresh, None, &judging()).unwrap().outcome,
            Outcome::InProgress
        );
    }

    #[test]
    fn a_failed_snapshot_records_kubevirts_reason() {
        let failed = snapshot(
            serde_json::json!({"phase": "Failed", "error": {"message": "volume snapshot could not be created"}}),
            serde_json::json!({}),
        );
        let record = judge_snapshot(&failed, None, &judging()).unwrap().record();
        assert_eq!(record.phase, BackupPhase::Failed);
        assert_eq!(record.reason.as_deref(), Some("SnapshotFailed"));
        assert_eq!(
            record.message.as_deref(),
            Some("volume snapshot could not be created")
        );
    }

    #[test]
    fn run_now_backups_carry_their_token() {
        let mut s = snapshot(
            serde_json::json!({}),
            serde_json::json!({"partnercloud.io/run-now-token": "t-1"}),
        );
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("partnercloud.io/trigger".into(), "run-now".into());
        let judged = judge_snapshot(&s, None, &judging()).unwrap();
        assert_eq!(judged.trigger, Trigger::RunNow("t-1".into()));
    }

    #[test]
    fn a_snapshot_without_server_or_slot_is_not_a_backup() {
        let mut s = snapshot(serde_json::json!({}), serde_json::json!({}));
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("partnercloud.io/slot");
        assert!(judge_snapshot(&s, None, &judging()).is_none());
    }

    #[test]
    fn drill_verdicts_read_back_from_the_annotations_they_are_written_as() {
        let at = Utc.with_ymd_and_hms(2026, 1, 11, 5, 3, 0).unwrap();
        for verdict in [
            DrillVerdict::Verified(at),
            DrillVerdict::Failed("did not start within 1800s".into()),
        ] {
            let mark = DrillMark {
                drill: "20260111T050000Z".into(),
                verdict: verdict.clone(),
            };
            let annotations = serde_json::to_value(drill_annotations(&mark, at)).unwrap();
            let judged = judge_snapshot(
                &snapshot(succeeded(&["GuestAgent"]), annotations),
                Some(&content(&[("system", "20Gi"), ("data", "10Gi")])),
                &judging(),
            )
            .unwrap();
            assert_eq!(judged.drill, Some(mark));
        }
    }

    #[test]
    fn a_failed_drill_makes_a_good_snapshot_a_failed_backup() {
        let mark = DrillMark {
            drill: "20260111T050000Z".into(),
            verdict: DrillVerdict::Failed("the restored server did not start".into()),
        };
        let annotations = serde_json::to_value(drill_annotations(&mark, now())).unwrap();
        let judged = judge_snapshot(
            &snapshot(succeeded(&["GuestAgent"]), annotations),
            Some(&content(&[("system", "20Gi"), ("data", "10Gi")])),
            &judging(),
        )
        .unwrap();
        assert!(
            matches!(judged.outcome, Outcome::Good { .. }),
            "the run stays good"
        );
        assert!(!judged.is_good());
        let record = judged.record();
        assert_eq!(record.phase, BackupPhase::Failed);
        assert_eq!(record.reason.as_deref(), Some("RestoreDrillFailed"));
        assert!(record.message.unwrap().contains("did not start"));
        assert_eq!(
            judged.backup(judged.server.clone(), false).phase,
            BackupPhase::Failed
        );
    }

    #[test]
    fn a_verified_backup_records_when() {
        let at = Utc.with_ymd_and_hms(2026, 1, 11, 5, 3, 0).unwrap();
        let mark = DrillMark {
            drill: "20260111T050000Z".into(),
            verdict: DrillVerdict::Verified(at),
        };
        let annotations = serde_json::to_value(drill_annotations(&mark, at)).unwrap();
        let judged = judge_snapshot(
            &snapshot(succeeded(&["GuestAgent"]), annotations),
            Some(&content(&[("system", "20Gi"), ("data", "10Gi")])),
            &judging(),
        )
        .unwrap();
        assert_eq!(judged.record().verified, Some(kube_time::to_time(at)));
        assert!(judged.is_good());
    }
}
