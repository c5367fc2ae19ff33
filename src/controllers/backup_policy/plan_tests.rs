//! Passes of the policy over a small world that carries out their writes,
//! the way the driver and the cluster would: created snapshots appear (in
//! progress), deletions go, verdicts are marked, status is stored.

use super::*;
use crate::api::backup_policy::{BackupPhase, BackupRecord, RestoreDrill, Verify};
use crate::api::conditions::{FALSE, READY, TRUE, UNKNOWN, find};
use crate::controllers::backup_policy::tests_support::{policy, server};
use crate::controllers::backup_policy::validate::validate;
use crate::kubevirt::VirtualMachineSnapshotContent;
use chrono::TimeZone;

/// 2026-01-`d` `h`:`m` UTC.
fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, h, m, 0).unwrap()
}

/// How a snapshot ends.
#[derive(Clone, Copy)]
enum Ends {
    Good,
    NoAgent,
    Fails,
}

struct World {
    policy: BackupPolicy,
    servers: Vec<VirtualServer>,
    snapshots: Vec<VirtualMachineSnapshot>,
    contents: BTreeMap<String, VirtualMachineSnapshotContent>,
}

impl World {
    /// The fixture policy (daily 02:00 UTC, keepLast 2, max 2 failures),
    /// first seen at `seen`, over `erp` and `crm` (selected) and `mail`
    /// (not selected).
    fn new() -> Self {
        let mut mail = server("mail");
        mail.metadata.labels = None;
        Self {
            policy: policy(),
            servers: vec![server("erp"), server("crm"), mail],
            snapshots: vec![],
            contents: BTreeMap::new(),
        }
    }

    fn observed(&self) -> Observed {
        Observed {
            servers: self.servers.clone(),
            snapshots: self.snapshots.clone(),
            contents: self.contents.clone(),
        }
    }

    /// Decides a pass at `now` without carrying it out.
    fn decide(&self, now: DateTime<Utc>) -> Pass {
        let valid = validate(&self.policy).unwrap();
        plan(&self.policy, &valid, &self.observed(), now).unwrap()
    }

    /// A pass at `now`, carried out. Created objects get `now` as their
    /// creation time.
    fn pass(&mut self, now: DateTime<Utc>) -> Pass {
        let pass = self.decide(now);
        let w = pass.writes.clone();
        for mut s in w.create_snapshots {
            if !self.snapshots.iter().any(|x| x.name_any() == s.name_any()) {
                s.metadata.creation_timestamp = Some(kube_time::to_time(now));
                self.snapshots.push(s);
            }
        }
        for (name, annotations) in w.mark_snapshots {
            let s = self.snapshot_mut(&name);
            s.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(annotations);
        }
        self.servers
            .retain(|s| !w.delete_drills.contains(&s.name_any()));
        for mut drill in w.create_drills {
            drill.metadata.creation_timestamp = Some(kube_time::to_time(now));
            self.servers.push(drill);
        }
        self.snapshots
            .retain(|s| !w.delete_snapshots.contains(&s.name_any()));
        for (name, last) in w.last_backups {
            let s = self
                .servers
                .iter_mut()
                .find(|s| s.name_any() == name)
                .unwrap();
            s.status.get_or_insert_with(Default::default).last_backup = Some(last);
        }
        self.policy.status = Some(pass.status.clone());
        pass
    }

    fn snapshot_mut(&mut self, name: &str) -> &mut VirtualMachineSnapshot {
        self.snapshots
            .iter_mut()
            .find(|s| s.name_any() == name)
            .unwrap()
    }

    /// Every snapshot without a phase ends as `ends`.
    fn finish(&mut self, ends: Ends) {
        let names: Vec<String> = self
            .snapshots
            .iter()
            .filter(|s| s.status.is_none())
            .map(|s| s.name_any())
            .collect();
        for name in names {
            self.finish_one(&name, ends);
        }
    }

    fn finish_one(&mut self, name: &str, ends: Ends) {
        let content = format!("content-{name}");
        let status = match ends {
            Ends::Good | Ends::NoAgent => serde_json::json!({
                "phase": "Succeeded", "readyToUse": true,
                "indications": ["Online", if matches!(ends, Ends::Good) { "GuestAgent" } else { "NoGuestAgent" }],
                "virtualMachineSnapshotContentName": content,
                "creationTime": "2026-01-01T00:00:00Z",
            }),
            Ends::Fails => serde_json::json!({
                "phase": "Failed", "readyToUse": false,
                "error": {"message": "volume snapshot could not be created"},
            }),
        };
        self.snapshot_mut(name).status = Some(serde_json::from_value(status).unwrap());
        self.contents.insert(
            content.clone(),
            serde_json::from_value(serde_json::json!({
                "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshotContent",
                "metadata": {"name": content, "namespace": "client-a"},
                "spec": {"volumeBackups": [
                    {"volumeName": "system", "persistentVolumeClaim": {"spec": {"resources": {"requests": {"storage": "60Gi"}}}}},
                    {"volumeName": "data", "persistentVolumeClaim": {"spec": {"resources": {"requests": {"storage": "100Gi"}}}}},
                ]},
            }))
            .unwrap(),
        );
    }

    /// A server's drill is Ready.
    fn drill_ready(&mut self, name: &str) {
        let s = self
            .servers
            .iter_mut()
            .find(|s| s.name_any() == name)
            .unwrap();
        s.status = server("x").status;
    }

    fn status(&self) -> BackupPolicyStatus {
        self.policy.status.clone().unwrap()
    }

    fn record(&self, snapshot: &str) -> BackupRecord {
        self.status()
            .backups
            .into_iter()
            .find(|r| r.snapshot == snapshot)
            .unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.snapshots.iter().map(|s| s.name_any()).collect();
        names.sort();
        names
    }

    fn condition(&self, type_: &str) -> (String, String, String) {
        let status = self.status();
        let c = find(&status.conditions, type_).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }
}

fn created(pass: &Pass) -> Vec<String> {
    let mut names: Vec<String> = pass
        .writes
        .create_snapshots
        .iter()
        .map(|s| s.name_any())
        .collect();
    names.sort();
    names
}

fn snapshot_names(servers: &[&str], slot: DateTime<Utc>) -> Vec<String> {
    let mut names: Vec<String> = servers
        .iter()
        .map(|s| naming::snapshot_name(s, "nightly", slot))
        .collect();
    names.sort();
    names
}

// --- The schedule (ACCEPTANCE 10) ---

#[test]
fn first_sight_of_a_policy_runs_nothing_even_right_after_a_slot() {
    let mut w = World::new();
    let pass = w.pass(at(5, 2, 0) + TimeDelta::seconds(30));
    assert!(pass.writes.create_snapshots.is_empty());
    let status = w.status();
    assert_eq!(
        status.schedule_effective_since,
        Some(kube_time::to_time(at(5, 2, 0) + TimeDelta::seconds(30)))
    );
    assert_eq!(
        status.next_schedule_time.as_deref(),
        Some("2026-01-06T02:00:00+00:00")
    );
    assert_eq!(status.last_schedule_time, None);
    assert_eq!(w.condition(READY).0, TRUE);
    assert_eq!(w.condition(health::HEALTHY).0, UNKNOWN);
    assert_eq!(
        pass.wake.next_slot,
        Some(Duration::from_secs(23 * 3600 + 59 * 60 + 30))
    );
    assert!(!pass.wake.waiting);
}

#[test]
fn the_next_slot_backs_up_each_selected_server_once() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    let pass = w.pass(at(6, 2, 0) + TimeDelta::seconds(2));
    assert_eq!(created(&pass), snapshot_names(&["crm", "erp"], at(6, 2, 0)));
    assert_eq!(
        w.status().last_schedule_time,
        Some(kube_time::to_time(at(6, 2, 0)))
    );
    assert!(pass.wake.waiting);
    assert!(
        pass.notes
            .iter()
            .any(|n| n.reason == reason::BACKUPS_STARTED && n.message.contains("erp, crm"))
    );
    // Reconciling again creates nothing more.
    let again = w.pass(at(6, 2, 0) + TimeDelta::seconds(3));
    assert!(again.writes.create_snapshots.is_empty());
    assert_eq!(w.snapshots.len(), 2);
}

#[test]
fn a_retry_after_a_lost_status_write_creates_the_same_names_only() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    let before = w.policy.clone();
    w.pass(at(6, 2, 0));
    // The status write was lost: the policy still has the old status, but
    // the snapshots exist.
    w.policy = before;
    let retry = w.decide(at(6, 2, 1));
    assert!(
        retry.writes.create_snapshots.is_empty(),
        "both servers already have their backup of the slot"
    );
    assert_eq!(
        retry.status.last_schedule_time,
        Some(kube_time::to_time(at(6, 2, 0)))
    );
}

#[test]
fn unselected_unprovisioned_and_drill_servers_are_not_backed_up() {
    let mut w = World::new();
    let mut fresh = server("fresh");
    fresh.status = None;
    w.servers.push(fresh);
    let mut drill = server("erp-drill-00000000");
    drill.metadata.labels = Some(BTreeMap::from([
        ("backup".to_string(), "nightly".to_string()),
        (
            naming::ROLE_LABEL.to_string(),
            naming::DRILL_ROLE.to_string(),
        ),
    ]));
    w.servers.push(drill);
    w.pass(at(5, 12, 0));
    let pass = w.pass(at(6, 2, 0));
    assert_eq!(created(&pass), snapshot_names(&["crm", "erp"], at(6, 2, 0)));
    let (_, _, message) = w.condition(READY);
    assert!(message.contains("3 server(s) selected"), "{message}");
    assert!(
        message.contains("until their disks are ready: fresh"),
        "{message}"
    );
}

#[test]
fn editing_the_schedule_does_not_fire_a_slot_that_just_passed() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    // At 14:10 the schedule becomes "0 14 * * *": 14:00 passed ten minutes
    // ago, well within the starting deadline, but before the edit.
    w.policy.spec.schedule = "0 14 * * *".into();
    let pass = w.pass(at(5, 14, 10));
    assert!(pass.writes.create_snapshots.is_empty());
    assert_eq!(
        w.status().schedule_effective_since,
        Some(kube_time::to_time(at(5, 14, 10)))
    );
    assert_eq!(w.status().observed_schedule.unwrap().schedule, "0 14 * * *");
    // The next real slot runs.
    let pass = w.pass(at(6, 14, 0));
    assert_eq!(created(&pass).len(), 2);
}

#[test]
fn suspending_and_resuming_does_not_fire_a_run() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    w.policy.spec.suspend = true;
    let pass = w.pass(at(5, 13, 0));
    assert_eq!(w.status().next_schedule_time, None);
    assert_eq!(w.condition(READY).1, "Suspended");
    assert_eq!(pass.wake.next_slot, None);
    // Suspended through the 6th's slot; resumed ten minutes after it.
    assert!(w.pass(at(6, 2, 5)).writes.create_snapshots.is_empty());
    w.policy.spec.suspend = false;
    let resumed = w.pass(at(6, 2, 10));
    assert!(resumed.writes.create_snapshots.is_empty());
    assert_eq!(w.status().missed_runs, 0, "a pause is not a miss");
    assert_eq!(created(&w.pass(at(7, 2, 0))).len(), 2);
}

#[test]
fn after_downtime_one_catch_up_run_and_the_rest_counted_missed() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    w.pass(at(6, 2, 0));
    w.finish(Ends::Good);
    w.pass(at(6, 2, 1));
    // Down from the 6th to the 9th at 02:40: the 7th and 8th are missed,
    // the 9th (40 minutes late, deadline one hour) runs.
    let pass = w.pass(at(9, 2, 40));
    assert_eq!(created(&pass), snapshot_names(&["crm", "erp"], at(9, 2, 0)));
    assert_eq!(w.status().missed_runs, 2);
}

#[test]
fn a_busy_server_skips_the_slot_and_it_is_counted() {
    let mut w = World::new();
    w.policy.spec.run_deadline_seconds = 86400;
    w.pass(at(5, 12, 0));
    w.pass(at(6, 2, 0));
    let crm = naming::snapshot_name("crm", "nightly", at(6, 2, 0));
    w.finish_one(&crm, Ends::Good);
    // erp's backup of the 6th is still running at the 7th's slot.
    let pass = w.pass(at(7, 2, 0));
    assert_eq!(created(&pass), snapshot_names(&["crm"], at(7, 2, 0)));
    assert_eq!(w.status().missed_runs, 1);
    assert!(
        pass.notes
            .iter()
            .any(|n| n.reason == reason::SKIPPED_BUSY && n.message.contains("erp"))
    );
}

#[test]
fn a_failed_backup_is_not_pruned_before_its_run_is_counted() {
    let mut w = World::new();
    w.policy.spec.run_deadline_seconds = 3 * 86400;
    w.pass(at(5, 12, 0));
    w.pass(at(6, 2, 0));
    // erp's backup of the 6th hangs; crm's is good.
    w.finish_one(
        &naming::snapshot_name("crm", "nightly", at(6, 2, 0)),
        Ends::Good,
    );
    // crm fails on the 7th and the 8th (erp is skipped, busy).
    for day in 7..=8 {
        w.pass(at(day, 2, 0));
        w.finish_one(
            &naming::snapshot_name("crm", "nightly", at(day, 2, 0)),
            Ends::Fails,
        );
        w.pass(at(day, 2, 1));
    }
    assert!(
        w.names()
            .contains(&naming::snapshot_name("crm", "nightly", at(7, 2, 0))),
        "the 7th's failure waits to be counted"
    );
    // erp's backup of the 6th ends at last: all three runs are counted.
    w.finish_one(
        &naming::snapshot_name("erp", "nightly", at(6, 2, 0)),
        Ends::Good,
    );
    w.pass(at(8, 3, 0));
    assert_eq!(w.status().consecutive_failures, 2);
}

// --- Run now ---

#[test]
fn run_now_backs_up_every_selected_server_once_per_token() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    w.policy
        .annotations_mut()
        .insert(RUN_NOW_ANNOTATION.into(), "first".into());
    let pass = w.pass(at(5, 12, 30) + TimeDelta::milliseconds(400));
    assert_eq!(
        created(&pass),
        snapshot_names(&["crm", "erp"], at(5, 12, 30))
    );
    assert_eq!(w.status().last_run_now_token.as_deref(), Some("first"));
    assert_eq!(
        w.status().last_schedule_time,
        None,
        "the schedule is not moved"
    );
    let token = w.snapshots[0].annotations()[naming::RUN_NOW_TOKEN_ANNOTATION].clone();
    assert_eq!(token, "first");
    w.finish(Ends::Good);
    assert!(w.pass(at(5, 12, 31)).writes.create_snapshots.is_empty());
    assert!(w.pass(at(5, 13, 0)).writes.create_snapshots.is_empty());
    // A new token runs again.
    w.policy
        .annotations_mut()
        .insert(RUN_NOW_ANNOTATION.into(), "second".into());
    assert_eq!(created(&w.pass(at(5, 14, 0))).len(), 2);
}

#[test]
fn a_run_now_retried_after_a_lost_status_write_reuses_its_slot() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    w.policy
        .annotations_mut()
        .insert(RUN_NOW_ANNOTATION.into(), "t".into());
    let before = w.policy.clone();
    w.pass(at(5, 12, 30));
    w.policy = before;
    let retry = w.decide(at(5, 12, 45));
    assert!(retry.writes.create_snapshots.is_empty());
    assert_eq!(retry.status.last_run_now_token.as_deref(), Some("t"));
}

#[test]
fn run_now_works_while_suspended() {
    let mut w = World::new();
    w.policy.spec.suspend = true;
    w.pass(at(5, 12, 0));
    w.policy
        .annotations_mut()
        .insert(RUN_NOW_ANNOTATION.into(), "t".into());
    assert_eq!(created(&w.pass(at(5, 12, 1))).len(), 2);
}

// --- Outcomes and health (ACCEPTANCE 12) ---

fn run_now(w: &mut World, token: &str, now: DateTime<Utc>) -> Pass {
    w.policy
        .annotations_mut()
        .insert(RUN_NOW_ANNOTATION.into(), token.into());
    w.pass(now)
}

#[test]
fn a_good_backup_is_recorded_with_size_and_consistency_and_the_run_succeeds() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    run_now(&mut w, "t", at(5, 12, 1));
    let erp = naming::snapshot_name("erp", "nightly", at(5, 12, 1));
    let crm = naming::snapshot_name("crm", "nightly", at(5, 12, 1));
    assert_eq!(w.record(&erp).phase, BackupPhase::InProgress);
    w.finish_one(&erp, Ends::Good);
    w.finish_one(&crm, Ends::NoAgent);
    w.pass(at(5, 12, 2));
    let record = w.record(&erp);
    assert_eq!(record.phase, BackupPhase::Succeeded);
    assert_eq!(record.size_bytes, Some(160 << 30));
    assert_eq!(
        record.consistency,
        Some(crate::api::backup_policy::Consistency::Filesystem)
    );
    assert_eq!(
        w.record(&crm).consistency,
        Some(crate::api::backup_policy::Consistency::Crash)
    );
    let status = w.status();
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(
        status.last_successful_time,
        Some(kube_time::to_time(at(5, 12, 2)))
    );
    assert_eq!(
        status.last_judged_run_time,
        Some(kube_time::to_time(at(5, 12, 1)))
    );
    assert_eq!(w.condition(health::HEALTHY).0, TRUE);
}

#[test]
fn failed_runs_count_once_each_and_past_the_limit_healthy_turns_false_with_a_warning() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    run_now(&mut w, "1", at(5, 12, 1));
    w.finish(Ends::Fails);
    let pass = w.pass(at(5, 12, 2));
    assert_eq!(w.status().consecutive_failures, 1);
    let (status, reason_, message) = w.condition(health::HEALTHY);
    assert_eq!(
        (status.as_str(), reason_.as_str()),
        (TRUE, health::RECENT_FAILURES)
    );
    assert!(
        message.contains("crm: SnapshotFailed: volume snapshot could not be created"),
        "{message}"
    );
    assert!(pass.notes.iter().all(|n| !n.warning));
    // Looking again does not count the same run twice.
    w.pass(at(5, 12, 3));
    w.pass(at(5, 12, 4));
    assert_eq!(w.status().consecutive_failures, 1);
    assert_eq!(
        w.condition(health::HEALTHY).1,
        health::RECENT_FAILURES,
        "the message is kept"
    );
    let failed = naming::snapshot_name("erp", "nightly", at(5, 12, 1));
    assert_eq!(w.record(&failed).reason.as_deref(), Some("SnapshotFailed"));
    // The second failure reaches maxConsecutiveFailures (2).
    run_now(&mut w, "2", at(5, 13, 0));
    w.finish(Ends::Fails);
    let pass = w.pass(at(5, 13, 1));
    assert_eq!(w.status().consecutive_failures, 2);
    assert_eq!(w.condition(health::HEALTHY).0, FALSE);
    assert!(
        pass.notes
            .iter()
            .any(|n| n.warning && n.reason == health::TOO_MANY_FAILURES)
    );
    assert_eq!(w.condition(READY).0, TRUE, "still valid and scheduled");
    // A good run resets the count.
    run_now(&mut w, "3", at(5, 14, 0));
    w.finish(Ends::Good);
    w.pass(at(5, 14, 1));
    assert_eq!(w.status().consecutive_failures, 0);
    assert_eq!(w.condition(health::HEALTHY).1, health::BACKUPS_SUCCEEDING);
}

#[test]
fn a_stuck_snapshot_fails_its_run_at_the_deadline_and_stops_blocking() {
    let mut w = World::new();
    w.pass(at(5, 12, 0));
    w.pass(at(6, 2, 0));
    let erp = naming::snapshot_name("erp", "nightly", at(6, 2, 0));
    w.pass(at(6, 2, 30));
    assert_eq!(w.record(&erp).phase, BackupPhase::InProgress);
    assert_eq!(w.status().last_judged_run_time, None);
    let pass = w.pass(at(6, 3, 1));
    let record = w.record(&erp);
    assert_eq!(record.phase, BackupPhase::Failed);
    assert_eq!(record.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(w.status().consecutive_failures, 1);
    assert!(!pass.wake.waiting);
    // The next slot is not blocked by it.
    assert_eq!(created(&w.pass(at(7, 2, 0))).len(), 2);
}

// --- Retention ---

#[test]
fn retention_prunes_beyond_keep_last_but_keeps_the_newest_good_backup() {
    let mut w = World::new();
    w.pass(at(1, 0, 0));
    for day in 2..=4 {
        w.pass(at(day, 2, 0));
        w.finish(Ends::Good);
    }
    let pass = w.pass(at(4, 3, 0));
    // keepLast 2: the 2nd goes, for both servers.
    let mut deleted = pass.writes.delete_snapshots.clone();
    deleted.sort();
    assert_eq!(deleted, snapshot_names(&["crm", "erp"], at(2, 2, 0)));
    assert!(
        pass.notes
            .iter()
            .any(|n| n.reason == reason::BACKUPS_PRUNED)
    );
    assert_eq!(w.status().backups.len(), 4);
    assert_eq!(
        w.status().backups[0].slot,
        kube_time::to_time(at(4, 2, 0)),
        "newest first"
    );
    // Three failed runs later the newest good one is still there; of the
    // failures only the latest stays (for diagnosis).
    for day in 5..=7 {
        w.pass(at(day, 2, 0));
        w.finish(Ends::Fails);
    }
    w.pass(at(7, 3, 0));
    let erp: Vec<String> = w
        .names()
        .into_iter()
        .filter(|n| n.starts_with("erp"))
        .collect();
    let mut expected = vec![
        naming::snapshot_name("erp", "nightly", at(3, 2, 0)),
        naming::snapshot_name("erp", "nightly", at(4, 2, 0)),
        naming::snapshot_name("erp", "nightly", at(7, 2, 0)),
    ];
    expected.sort();
    assert_eq!(erp, expected);
}

#[test]
fn a_backup_a_restore_reads_from_is_kept_until_the_restore_has_its_disks() {
    let mut w = World::new();
    w.pass(at(1, 0, 0));
    w.pass(at(2, 2, 0));
    w.finish(Ends::Good);
    let oldest = naming::snapshot_name("erp", "nightly", at(2, 2, 0));
    let mut restore = server("erp-restored");
    restore.metadata.labels = None;
    restore.spec.source = crate::api::virtual_server::ServerSource {
        backup: Some(crate::api::virtual_server::BackupSource {
            snapshot: oldest.clone(),
        }),
        ..Default::default()
    };
    restore.status.as_mut().unwrap().disks[1].phase = Some("CloneInProgress".into());
    w.servers.push(restore);
    for day in 3..=5 {
        w.pass(at(day, 2, 0));
        w.finish(Ends::Good);
    }
    w.pass(at(5, 3, 0));
    assert!(w.names().contains(&oldest), "a restore reads from it");
    let restored = w
        .servers
        .iter_mut()
        .find(|s| s.name_any() == "erp-restored")
        .unwrap();
    restored.status.as_mut().unwrap().disks[1].phase = Some("Succeeded".into());
    w.pass(at(5, 3, 1));
    assert!(!w.names().contains(&oldest), "restored: retention applies");
}

#[test]
fn a_deleted_servers_backups_are_kept_and_retention_goes_on_applying() {
    let mut w = World::new();
    w.pass(at(1, 0, 0));
    for day in 2..=3 {
        w.pass(at(day, 2, 0));
        w.finish(Ends::Good);
    }
    w.servers.retain(|s| s.name_any() != "crm");
    w.pass(at(3, 3, 0));
    assert_eq!(w.names().iter().filter(|n| n.starts_with("crm")).count(), 2);
    // Shrinking retention still prunes the deleted server's backups, down
    // to its newest good one.
    w.policy.spec.retention.keep_last = Some(1);
    w.pass(at(3, 3, 1));
    assert_eq!(
        w.names()
            .into_iter()
            .filter(|n| n.starts_with("crm"))
            .collect::<Vec<_>>(),
        vec![naming::snapshot_name("crm", "nightly", at(3, 2, 0))]
    );
}

#[test]
fn a_new_server_with_a_deleted_ones_name_never_makes_its_only_backup_prunable() {
    let mut w = World::new();
    w.policy.spec.retention.keep_last = Some(1);
    w.pass(at(1, 0, 0));
    w.pass(at(2, 2, 0));
    w.finish(Ends::Good);
    let earlier = naming::snapshot_name("crm", "nightly", at(2, 2, 0));
    // crm is deleted, and a new crm (another UID) is created.
    let mut again = w
        .servers
        .iter()
        .find(|s| s.name_any() == "crm")
        .unwrap()
        .clone();
    again.metadata.uid = Some("a-later-crm".into());
    if let Some(status) = again.status.as_mut() {
        status.last_backup = None;
    }
    w.servers.retain(|s| s.name_any() != "crm");
    w.servers.push(again);
    let pass = w.pass(at(2, 3, 0));
    assert!(
        !pass
            .writes
            .last_backups
            .iter()
            .any(|(name, _)| name == "crm"),
        "the new crm does not inherit the earlier one's backup"
    );
    // The new crm's own backups come and go by keepLast: 1; the earlier
    // crm's only backup stays.
    for day in 3..=4 {
        w.pass(at(day, 2, 0));
        w.finish(Ends::Good);
        w.pass(at(day, 2, 1));
    }
    let crm: Vec<String> = w
        .names()
        .into_iter()
        .filter(|n| n.starts_with("crm"))
        .collect();
    assert!(crm.contains(&earlier), "{crm:?}");
    assert!(crm.contains(&naming::snapshot_name("crm", "nightly", at(4, 2, 0))));
    assert_eq!(crm.len(), 2, "{crm:?}");
}

// --- lastBackup ---

#[test]
fn the_newest_good_backup_is_published_on_each_server_once() {
    let mut w = World::new();
    w.pass(at(1, 0, 0));
    w.pass(at(2, 2, 0));
    w.finish(Ends::Good);
    let pass = w.pass(at(2, 2, 1));
    assert_eq!(pass.writes.last_backups.len(), 2);
    let erp = w.servers.iter().find(|s| s.name_any() == "erp").unwrap();
    let last = erp.status.as_ref().unwrap().last_backup.clone().unwrap();
    assert_eq!(last.policy, "nightly");
    assert_eq!(
        last.snapshot,
        naming::snapshot_name("erp", "nightly", at(2, 2, 0))
    );
    assert!(
        w.pass(at(2, 2, 2)).writes.last_backups.is_empty(),
        "already shown"
    );
    // A failed run publishes nothing new.
    w.pass(at(3, 2, 0));
    w.finish(Ends::Fails);
    assert!(w.pass(at(3, 2, 1)).writes.last_backups.is_empty());
}

#[test]
fn a_newer_backup_shown_by_another_policy_is_left_alone() {
    let mut w = World::new();
    w.pass(at(1, 0, 0));
    w.pass(at(2, 2, 0));
    w.finish(Ends::Good);
    for s in &mut w.servers {
        s.status.get_or_insert_with(Default::default).last_backup = Some(LastBackup {
            policy: "hourly".into(),
            snapshot: "x".into(),
            time: kube_time::to_time(at(9, 0, 0)),
        });
    }
    assert!(w.pass(at(2, 2, 1)).writes.last_backups.is_empty());
}

// --- Restore drills ---

fn with_drill(w: &mut World) {
    w.policy.spec.verify = Some(Verify {
        restore_drill: Some(RestoreDrill {
            schedule: "0 5 * * *".into(),
            timeout_seconds: 600,
        }),
    });
}

#[test]
fn a_drill_restores_each_servers_newest_good_backup_and_marks_it_verified() {
    let mut w = World::new();
    with_drill(&mut w);
    w.pass(at(1, 0, 0));
    for day in 2..=3 {
        w.pass(at(day, 2, 0));
        w.finish(Ends::Good);
    }
    let pass = w.pass(at(3, 5, 0));
    assert_eq!(pass.writes.create_drills.len(), 2);
    let erp_drill = naming::drill_server_name("erp", "nightly", at(3, 5, 0));
    let newest = naming::snapshot_name("erp", "nightly", at(3, 2, 0));
    let drill = pass
        .writes
        .create_drills
        .iter()
        .find(|d| d.name_any() == erp_drill)
        .unwrap();
    assert_eq!(drill.spec.source.backup.as_ref().unwrap().snapshot, newest);
    assert_eq!(
        w.status().last_drill_time,
        Some(kube_time::to_time(at(3, 5, 0)))
    );
    assert!(pass.wake.waiting);
    // The drill servers are not backed up themselves, and one drill per
    // server runs at a time.
    assert!(w.pass(at(3, 5, 1)).writes.create_drills.is_empty());
    w.drill_ready(&erp_drill);
    let pass = w.pass(at(3, 5, 2));
    assert_eq!(pass.writes.delete_drills, vec![erp_drill.clone()]);
    assert!(!w.servers.iter().any(|s| s.name_any() == erp_drill));
    assert_eq!(
        w.record(&newest).verified,
        Some(kube_time::to_time(at(3, 5, 2)))
    );
    assert!(pass.notes.iter().any(|n| n.reason == reason::DRILL_PASSED));
}

#[test]
fn a_failed_drill_fails_that_backup_and_counts_as_a_failure() {
    let mut w = World::new();
    with_drill(&mut w);
    w.pass(at(1, 0, 0));
    w.pass(at(2, 2, 0));
    w.finish(Ends::Good);
    w.pass(at(2, 2, 1));
    w.pass(at(2, 5, 0));
    // Neither drill server becomes Ready within the 600 s timeout.
    let pass = w.pass(at(2, 5, 11));
    assert_eq!(pass.writes.delete_drills.len(), 2);
    assert!(
        pass.notes
            .iter()
            .any(|n| n.warning && n.reason == reason::DRILL_FAILED)
    );
    let erp = naming::snapshot_name("erp", "nightly", at(2, 2, 0));
    let record = w.record(&erp);
    assert_eq!(record.phase, BackupPhase::Failed);
    assert_eq!(record.reason.as_deref(), Some("RestoreDrillFailed"));
    assert!(record.message.unwrap().contains("not running within 600s"));
    assert_eq!(w.status().consecutive_failures, 1, "one drill, one failure");
    let (_, reason_, message) = w.condition(health::HEALTHY);
    assert_eq!(reason_, health::RECENT_FAILURES);
    assert!(message.contains("RestoreDrillFailed"), "{message}");
    // Seeing it again (the server's deletion not through yet) counts nothing.
    assert_eq!(w.status().consecutive_failures, 1);
    // The failed backup is no longer anyone's last good one; the next
    // good backup is.
    w.pass(at(3, 2, 0));
    w.finish(Ends::Good);
    w.pass(at(3, 2, 1));
    assert!(
        w.names().contains(&erp),
        "the newest failure stays for diagnosis"
    );
}

#[test]
fn a_drill_seen_twice_is_marked_and_counted_once() {
    let mut w = World::new();
    with_drill(&mut w);
    w.pass(at(1, 0, 0));
    w.pass(at(2, 2, 0));
    w.finish(Ends::Good);
    w.pass(at(2, 5, 0));
    let servers_before = w.servers.clone();
    w.pass(at(2, 5, 11));
    // The drill servers' deletion did not go through: they are seen again.
    w.servers = servers_before;
    let again = w.pass(at(2, 5, 12));
    assert!(again.writes.mark_snapshots.is_empty());
    assert_eq!(again.writes.delete_drills.len(), 2);
    assert_eq!(w.status().consecutive_failures, 1);
}
