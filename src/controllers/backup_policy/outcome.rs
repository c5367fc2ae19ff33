//! A snapshot's observed status judged into a backup outcome (ACCEPTANCE 12).
//!
//! A backup is good only when KubeVirt says the snapshot `Succeeded`, it is
//! `readyToUse`, and every volume expected has a non-zero restore size: a
//! snapshot that "succeeded" with a missing or empty volume would restore a
//! server without its data. A snapshot not good by its run deadline has
//! failed (`DeadlineExceeded`), so a stuck snapshot ends its run and stops
//! blocking the next one; a `Failed` snapshot fails with KubeVirt's error.
//!
//! [`ObservedSnapshot`] is the subset of `VirtualMachineSnapshot` (and its
//! content's per-volume restore sizes) these rules read; the driver maps the
//! KubeVirt types onto it.

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::backup_policy::{BackupPhase, Consistency};

/// KubeVirt's `VirtualMachineSnapshot` `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPhase {
    InProgress,
    Succeeded,
    Failed,
    /// `Unknown`, or no phase yet.
    Unknown,
}

/// Indication KubeVirt sets when the guest agent froze the file systems.
pub const GUEST_AGENT_INDICATION: &str = "GuestAgent";
/// Indication KubeVirt sets when freezing was attempted and failed.
pub const QUIESCE_FAILED_INDICATION: &str = "QuiesceFailed";

/// One volume of the snapshot and the size a restore of it will have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSize {
    pub name: String,
    /// Restore size in bytes; `None` until the volume snapshot reports one.
    pub restore_size_bytes: Option<u64>,
}

/// What the rules read from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSnapshot {
    /// `status.phase`.
    pub phase: SnapshotPhase,
    /// `status.readyToUse`; `false` when absent.
    pub ready_to_use: bool,
    /// `status.indications` (and `sourceIndications`), e.g. `Online`,
    /// `GuestAgent`, `NoGuestAgent`, `QuiesceFailed`.
    pub indications: Vec<String>,
    /// `status.error.message`, if any.
    pub error_message: Option<String>,
    /// The volumes the snapshot content reports, with restore sizes.
    pub volumes: Vec<VolumeSize>,
    /// How many volumes the server has, i.e. should be in the snapshot.
    pub expected_volumes: usize,
    /// `metadata.creationTimestamp`: the run deadline counts from here.
    pub created: DateTime<Utc>,
}

/// Why a backup failed; the stable names become per-server reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// KubeVirt reported the snapshot `Failed`.
    SnapshotFailed,
    /// The snapshot was not good within `runDeadlineSeconds`.
    DeadlineExceeded,
    /// A restore drill could not start a server from the backup.
    RestoreDrillFailed,
}

impl FailureReason {
    const ALL: [Self; 3] = [
        Self::SnapshotFailed,
        Self::DeadlineExceeded,
        Self::RestoreDrillFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SnapshotFailed => "SnapshotFailed",
            Self::DeadlineExceeded => "DeadlineExceeded",
            Self::RestoreDrillFailed => "RestoreDrillFailed",
        }
    }

    /// The reason a status record names (`BackupRecord.reason`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The judged state of one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished, and still within its deadline.
    InProgress,
    /// Complete and restorable.
    Good {
        consistency: Consistency,
        /// Sum of the volumes' restore sizes.
        size_bytes: u64,
    },
    /// Will never be good.
    Failed {
        reason: FailureReason,
        message: String,
    },
}

impl Outcome {
    /// The phase recorded in `status.backups[]`.
    pub fn phase(&self) -> BackupPhase {
        match self {
            Self::InProgress => BackupPhase::InProgress,
            Self::Good { .. } => BackupPhase::Succeeded,
            Self::Failed { .. } => BackupPhase::Failed,
        }
    }
}

/// Judges a snapshot at `now`. `requested` is `spec.consistency`;
/// `run_deadline` is `spec.runDeadlineSeconds`.
///
/// A snapshot that is good is good even if it became so after the deadline
/// (it is restorable; only the wait is bounded). A good backup needs at
/// least one volume, so an `expected_volumes` of 0 never passes.
pub fn judge(
    snapshot: &ObservedSnapshot,
    requested: Consistency,
    run_deadline: TimeDelta,
    now: DateTime<Utc>,
) -> Outcome {
    if snapshot.phase == SnapshotPhase::Failed {
        return Outcome::Failed {
            reason: FailureReason::SnapshotFailed,
            message: snapshot
                .error_message
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| "the snapshot failed without an error message".to_string()),
        };
    }
    let sized = sized_volumes(snapshot);
    let volumes_complete = sized.len() >= snapshot.expected_volumes.max(1);
    if snapshot.phase == SnapshotPhase::Succeeded && snapshot.ready_to_use && volumes_complete {
        return Outcome::Good {
            consistency: consistency(snapshot, requested),
            size_bytes: sized
                .iter()
                .fold(0u64, |sum, (_, size)| sum.saturating_add(*size)),
        };
    }
    if now - snapshot.created > run_deadline {
        return Outcome::Failed {
            reason: FailureReason::DeadlineExceeded,
            message: not_ready_message(snapshot, sized.len(), run_deadline),
        };
    }
    Outcome::InProgress
}

/// The distinct volumes with a non-zero restore size, and their sizes.
fn sized_volumes(snapshot: &ObservedSnapshot) -> Vec<(&str, u64)> {
    let mut sized: Vec<(&str, u64)> = vec![];
    for volume in &snapshot.volumes {
        match volume.restore_size_bytes {
            Some(size) if size > 0 && !sized.iter().any(|(name, _)| *name == volume.name) => {
                sized.push((&volume.name, size));
            }
            _ => {}
        }
    }
    sized
}

/// `Filesystem` only when it was asked for and the guest agent froze the
/// file systems; anything else is what a power cut would have left.
fn consistency(snapshot: &ObservedSnapshot, requested: Consistency) -> Consistency {
    let has = |indication: &str| snapshot.indications.iter().any(|i| i == indication);
    if requested == Consistency::Filesystem
        && has(GUEST_AGENT_INDICATION)
        && !has(QUIESCE_FAILED_INDICATION)
    {
        Consistency::Filesystem
    } else {
        Consistency::Crash
    }
}

/// Says what was still missing when the deadline passed.
fn not_ready_message(snapshot: &ObservedSnapshot, sized: usize, run_deadline: TimeDelta) -> String {
    let mut message = format!(
        "the snapshot was not ready within {}s: phase {:?}, readyToUse {}, {} of {} volumes have a restore size",
        run_deadline.num_seconds(),
        snapshot.phase,
        snapshot.ready_to_use,
        sized,
        snapshot.expected_volumes
    );
    if let Some(error) = snapshot
        .error_message
        .as_deref()
        .filter(|m| !m.trim().is_empty())
    {
        message.push_str("; last error: ");
        message.push_str(error);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn created() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 6, 2, 0, 0).unwrap()
    }

    fn minutes_later(m: i64) -> DateTime<Utc> {
        created() + TimeDelta::minutes(m)
    }

    const HOUR: TimeDelta = TimeDelta::hours(1);

    fn volume(name: &str, size: Option<u64>) -> VolumeSize {
        VolumeSize {
            name: name.into(),
            restore_size_bytes: size,
        }
    }

    /// A snapshot KubeVirt finished with the guest frozen, two volumes.
    fn finished() -> ObservedSnapshot {
        ObservedSnapshot {
            phase: SnapshotPhase::Succeeded,
            ready_to_use: true,
            indications: vec!["Online".into(), "GuestAgent".into()],
            error_message: None,
            volumes: vec![
                volume("system", Some(40 << 30)),
                volume("data", Some(10 << 30)),
            ],
            expected_volumes: 2,
            created: created(),
        }
    }

    fn judged(s: &ObservedSnapshot) -> Outcome {
        judge(s, Consistency::Filesystem, HOUR, minutes_later(10))
    }

    #[test]
    fn a_finished_ready_snapshot_with_every_volume_is_good() {
        assert_eq!(
            judged(&finished()),
            Outcome::Good {
                consistency: Consistency::Filesystem,
                size_bytes: 50 << 30
            }
        );
        assert_eq!(judged(&finished()).phase(), BackupPhase::Succeeded);
    }

    #[test]
    fn succeeded_but_not_ready_is_not_good_yet() {
        let s = ObservedSnapshot {
            ready_to_use: false,
            ..finished()
        };
        assert_eq!(judged(&s), Outcome::InProgress);
    }

    #[test]
    fn a_missing_or_empty_volume_is_not_good() {
        for volumes in [
            vec![volume("system", Some(40 << 30))],
            vec![volume("system", Some(40 << 30)), volume("data", Some(0))],
            vec![volume("system", Some(40 << 30)), volume("data", None)],
            // The same volume twice does not stand in for the other one.
            vec![
                volume("system", Some(40 << 30)),
                volume("system", Some(40 << 30)),
            ],
        ] {
            let s = ObservedSnapshot {
                volumes: volumes.clone(),
                ..finished()
            };
            assert_eq!(judged(&s), Outcome::InProgress, "{volumes:?}");
        }
    }

    #[test]
    fn a_snapshot_of_no_volumes_is_never_good() {
        let s = ObservedSnapshot {
            volumes: vec![],
            expected_volumes: 0,
            ..finished()
        };
        assert_eq!(judged(&s), Outcome::InProgress);
        assert!(matches!(
            judge(&s, Consistency::Filesystem, HOUR, minutes_later(61)),
            Outcome::Failed {
                reason: FailureReason::DeadlineExceeded,
                ..
            }
        ));
    }

    #[test]
    fn in_progress_within_the_deadline_is_in_progress() {
        for phase in [SnapshotPhase::InProgress, SnapshotPhase::Unknown] {
            let s = ObservedSnapshot {
                phase,
                ready_to_use: false,
                volumes: vec![],
                ..finished()
            };
            assert_eq!(
                judge(&s, Consistency::Crash, HOUR, minutes_later(60)),
                Outcome::InProgress
            );
            assert_eq!(
                judge(&s, Consistency::Crash, HOUR, minutes_later(60)).phase(),
                BackupPhase::InProgress
            );
        }
    }

    #[test]
    fn a_snapshot_not_good_by_its_deadline_fails_and_says_what_was_missing() {
        let s = ObservedSnapshot {
            phase: SnapshotPhase::InProgress,
            ready_to_use: false,
            volumes: vec![volume("system", Some(1))],
            error_message: Some("failed to freeze guest filesystem".into()),
            ..finished()
        };
        let outcome = judge(
            &s,
            Consistency::Filesystem,
            HOUR,
            minutes_later(60) + TimeDelta::seconds(1),
        );
        assert_eq!(
            outcome,
            Outcome::Failed {
                reason: FailureReason::DeadlineExceeded,
                message: "the snapshot was not ready within 3600s: phase InProgress, readyToUse false, 1 of 2 volumes have a restore size; last error: failed to freeze guest filesystem".into()
            }
        );
        assert_eq!(outcome.phase(), BackupPhase::Failed);
    }

    #[test]
    fn succeeded_but_never_ready_fails_at_the_deadline() {
        let s = ObservedSnapshot {
            ready_to_use: false,
            ..finished()
        };
        assert!(matches!(
            judge(&s, Consistency::Filesystem, HOUR, minutes_later(90)),
            Outcome::Failed {
                reason: FailureReason::DeadlineExceeded,
                ..
            }
        ));
    }

    #[test]
    fn a_good_snapshot_observed_after_the_deadline_is_still_good() {
        assert!(matches!(
            judge(
                &finished(),
                Consistency::Filesystem,
                HOUR,
                minutes_later(600)
            ),
            Outcome::Good { .. }
        ));
    }

    #[test]
    fn a_failed_snapshot_fails_with_kubevirts_message() {
        let s = ObservedSnapshot {
            phase: SnapshotPhase::Failed,
            ready_to_use: false,
            error_message: Some("VolumeSnapshot data failed: quota exceeded".into()),
            ..finished()
        };
        assert_eq!(
            judged(&s),
            Outcome::Failed {
                reason: FailureReason::SnapshotFailed,
                message: "VolumeSnapshot data failed: quota exceeded".into()
            }
        );
    }

    #[test]
    fn a_failed_snapshot_without_a_message_still_explains_itself() {
        for message in [None, Some("  ".to_string())] {
            let s = ObservedSnapshot {
                phase: SnapshotPhase::Failed,
                error_message: message,
                ..finished()
            };
            let Outcome::Failed { message, .. } = judged(&s) else {
                panic!("not failed");
            };
            assert_eq!(message, "the snapshot failed without an error message");
        }
    }

    #[test]
    fn a_failed_phase_wins_over_everything_else() {
        // Even with ready and sized volumes (KubeVirt never does this, but a
        // Failed phase must never count as a success).
        let s = ObservedSnapshot {
            phase: SnapshotPhase::Failed,
            ..finished()
        };
        assert!(matches!(
            judged(&s),
            Outcome::Failed {
                reason: FailureReason::SnapshotFailed,
                ..
            }
        ));
    }

    #[test]
    fn filesystem_consistency_needs_the_guest_agent() {
        let with = |indications: &[&str], requested| {
            let s = ObservedSnapshot {
                indications: indications.iter().map(|i| i.to_string()).collect(),
                ..finished()
            };
            match judge(&s, requested, HOUR, minutes_later(1)) {
                Outcome::Good { consistency, .. } => consistency,
                other => panic!("{other:?}"),
            }
        };
        use Consistency::{Crash, Filesystem};
        assert_eq!(with(&["Online", "GuestAgent"], Filesystem), Filesystem);
        assert_eq!(with(&["Online", "NoGuestAgent"], Filesystem), Crash);
        assert_eq!(with(&[], Filesystem), Crash);
        assert_eq!(
            with(&["Online", "GuestAgent", "QuiesceFailed"], Filesystem),
            Crash
        );
        assert_eq!(
            with(&["Online", "GuestAgent"], Crash),
            Crash,
            "not asked for"
        );
    }

    #[test]
    fn failure_reasons_have_stable_names() {
        assert_eq!(FailureReason::SnapshotFailed.as_str(), "SnapshotFailed");
        assert_eq!(FailureReason::DeadlineExceeded.as_str(), "DeadlineExceeded");
        assert_eq!(
            FailureReason::RestoreDrillFailed.as_str(),
            "RestoreDrillFailed"
        );
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(FailureReason::parse("Whatever"), None);
    }

    #[test]
    fn sizes_add_up_without_overflowing() {
        let s = ObservedSnapshot {
            volumes: vec![volume("system", Some(u64::MAX)), volume("data", Some(5))],
            ..finished()
        };
        assert!(matches!(
            judged(&s),
            Outcome::Good {
                size_bytes: u64::MAX,
                ..
            }
        ));
    }
}
