//! One backup, as the overlap and retention decisions see it.

use chrono::{DateTime, Utc};

use super::kube_time;
use crate::api::backup_policy::{BackupPhase, BackupRecord};

/// One backup of one server: its snapshot, the slot it belongs to and its
/// phase as already judged by [`super::outcome`] — so a stuck snapshot is
/// `Failed` once its run deadline has passed and stops blocking anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The VirtualServer backed up.
    pub server: String,
    /// The VirtualMachineSnapshot's name.
    pub snapshot: String,
    /// The schedule slot (or "run now" time) the backup belongs to.
    pub slot: DateTime<Utc>,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub phase: BackupPhase,
    /// Whether a restore (a server created from it, or a restore drill) is
    /// reading from this snapshot right now.
    pub restore_reading: bool,
}

impl Backup {
    /// The backup a status record describes. Whether a restore reads from
    /// it is not in the record; the driver knows it from the restores it
    /// listed.
    pub fn from_record(record: &BackupRecord, restore_reading: bool) -> Self {
        Self {
            server: record.server.clone(),
            snapshot: record.snapshot.clone(),
            slot: kube_time::to_utc(&record.slot),
            phase: record.phase,
            restore_reading,
        }
    }

    /// Whether this is a good backup: complete and ready to restore.
    pub fn is_good(&self) -> bool {
        self.phase == BackupPhase::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn a_status_record_becomes_a_backup_with_its_slot_in_utc() {
        let record = BackupRecord {
            server: "erp".into(),
            snapshot: "erp-nightly-202601050200-1a2b3c4d".into(),
            slot: Time("2026-01-05T02:00:00Z".parse().unwrap()),
            phase: BackupPhase::Succeeded,
            consistency: None,
            verified: None,
            size_bytes: Some(1),
            reason: None,
            message: None,
        };
        let backup = Backup::from_record(&record, true);
        assert_eq!(backup.server, "erp");
        assert_eq!(backup.snapshot, record.snapshot);
        assert_eq!(
            backup.slot,
            Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap()
        );
        assert!(backup.restore_reading);
        assert!(backup.is_good());
    }

    #[test]
    fn only_succeeded_backups_are_good() {
        let mut backup = Backup {
            server: "erp".into(),
            snapshot: "s".into(),
            slot: Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap(),
            phase: BackupPhase::InProgress,
            restore_reading: false,
        };
        assert!(!backup.is_good());
        backup.phase = BackupPhase::Failed;
        assert!(!backup.is_good());
        backup.phase = BackupPhase::Succeeded;
        assert!(backup.is_good());
    }
}
