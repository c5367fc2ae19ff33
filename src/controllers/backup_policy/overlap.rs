//! Which servers start a backup for a slot (ACCEPTANCE 11).
//!
//! At most one backup per server per policy is in progress at a time. When
//! a slot comes while a server's previous backup is still `InProgress`,
//! that server skips the slot: it is counted as missed and never queued, so
//! a slow server cannot build a pile-up of snapshots. A stuck snapshot does
//! not block forever: its phase comes from [`super::outcome`], which turns
//! it `Failed` once `runDeadlineSeconds` has passed.
//!
//! A server that already has a backup for this very slot (a retry of the
//! same reconcile, or a second replica) is left alone: the backup exists.

use chrono::{DateTime, Utc};

use super::backup::Backup;
use crate::api::backup_policy::BackupPhase;

/// What each selected server does for one slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunPlan {
    /// Servers that start a backup for the slot now.
    pub start: Vec<String>,
    /// Servers that already have a backup for the slot (any phase).
    pub already_taken: Vec<String>,
    /// Servers skipping the slot because an earlier backup is still running.
    pub busy: Vec<Busy>,
}

/// A server skipping a slot, and the backup it is still waiting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub server: String,
    /// The snapshot still in progress.
    pub snapshot: String,
    /// The slot that snapshot belongs to.
    pub slot: DateTime<Utc>,
}

impl RunPlan {
    /// Missed slots to add to `status.missedRuns` for this plan: one when
    /// any server skipped the slot, else none. `missedRuns` counts slots in
    /// which some selected server got no backup, whether because of
    /// downtime or overlap, so the two are the same unit.
    pub fn missed(&self) -> u64 {
        u64::from(!self.busy.is_empty())
    }
}

/// Plans one slot for the selected servers, given the policy's backups
/// (of any server; the others are ignored). Servers are taken in the order
/// given; a server listed twice is planned once.
pub fn plan_run(slot: DateTime<Utc>, servers: &[String], backups: &[Backup]) -> RunPlan {
    let mut plan = RunPlan::default();
    let mut seen: Vec<&str> = vec![];
    for server in servers {
        if seen.contains(&server.as_str()) {
            continue;
        }
        seen.push(server);
        let of_server = || backups.iter().filter(|b| &b.server == server);
        if of_server().any(|b| b.slot == slot) {
            plan.already_taken.push(server.clone());
        } else if let Some(running) = of_server()
            .filter(|b| b.phase == BackupPhase::InProgress)
            .max_by_key(|b| b.slot)
        {
            plan.busy.push(Busy {
                server: server.clone(),
                snapshot: running.snapshot.clone(),
                slot: running.slot,
            });
        } else {
            plan.start.push(server.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 6, h, 0, 0).unwrap()
    }

    fn backup(server: &str, h: u32, phase: BackupPhase) -> Backup {
        Backup {
            server: server.into(),
            snapshot: format!("{server}-nightly-{h:02}"),
            slot: at(h),
            phase,
            restore_reading: false,
        }
    }

    fn servers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn servers_with_nothing_running_start() {
        let plan = plan_run(
            at(3),
            &servers(&["a", "b"]),
            &[
                backup("a", 2, BackupPhase::Succeeded),
                backup("b", 2, BackupPhase::Failed),
            ],
        );
        assert_eq!(plan.start, servers(&["a", "b"]));
        assert!(plan.busy.is_empty() && plan.already_taken.is_empty());
        assert_eq!(plan.missed(), 0);
    }

    #[test]
    fn a_server_still_backing_up_skips_the_slot_and_it_is_counted() {
        let plan = plan_run(
            at(3),
            &servers(&["a", "b"]),
            &[
                backup("a", 2, BackupPhase::InProgress),
                backup("b", 2, BackupPhase::Succeeded),
            ],
        );
        assert_eq!(plan.start, servers(&["b"]));
        assert_eq!(
            plan.busy,
            vec![Busy {
                server: "a".into(),
                snapshot: "a-nightly-02".into(),
                slot: at(2)
            }]
        );
        assert_eq!(plan.missed(), 1);
    }

    #[test]
    fn several_busy_servers_still_count_one_missed_slot() {
        let plan = plan_run(
            at(3),
            &servers(&["a", "b"]),
            &[
                backup("a", 2, BackupPhase::InProgress),
                backup("b", 1, BackupPhase::InProgress),
            ],
        );
        assert!(plan.start.is_empty());
        assert_eq!(plan.busy.len(), 2);
        assert_eq!(plan.missed(), 1);
    }

    #[test]
    fn a_server_that_already_has_this_slot_is_not_started_again() {
        for phase in [
            BackupPhase::InProgress,
            BackupPhase::Succeeded,
            BackupPhase::Failed,
        ] {
            let plan = plan_run(at(3), &servers(&["a"]), &[backup("a", 3, phase)]);
            assert_eq!(plan.already_taken, servers(&["a"]), "{phase:?}");
            assert!(plan.start.is_empty());
            assert_eq!(plan.missed(), 0, "a retry is not a missed slot");
        }
    }

    #[test]
    fn other_servers_backups_do_not_block() {
        let plan = plan_run(
            at(3),
            &servers(&["a"]),
            &[backup("b", 2, BackupPhase::InProgress)],
        );
        assert_eq!(plan.start, servers(&["a"]));
    }

    #[test]
    fn the_newest_running_backup_is_named_when_several_run() {
        let plan = plan_run(
            at(4),
            &servers(&["a"]),
            &[
                backup("a", 2, BackupPhase::InProgress),
                backup("a", 3, BackupPhase::InProgress),
            ],
        );
        assert_eq!(plan.busy[0].slot, at(3));
    }

    #[test]
    fn a_server_listed_twice_is_planned_once() {
        let plan = plan_run(at(3), &servers(&["a", "a"]), &[]);
        assert_eq!(plan.start, servers(&["a"]));
    }

    #[test]
    fn no_servers_selected_plans_nothing() {
        assert_eq!(plan_run(at(3), &[], &[]), RunPlan::default());
    }
}
