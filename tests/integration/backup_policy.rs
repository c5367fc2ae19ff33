//! BackupPolicy end to end: the operator and the simulator against the
//! real API server.
//!
//! Time: the shared operator runs on an [`OffsetClock`] (the system clock
//! plus a forward-only offset). Tests that need a slot, a deadline or a
//! drill timeout to arrive move it forward and then "poke" the policy (an
//! annotation change: the controller's timers are in real time, a watch
//! event wakes it at once). Every test here holds [`clock_lock`], so no
//! jump lands in the middle of another backup test's run. Most runs are
//! started with the run-now annotation; every schedule rule is also
//! tested without a cluster in `controllers::backup_policy`.
//!
//! [`OffsetClock`]: partnercloud::controllers::context::OffsetClock

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use partnercloud::api::backup_policy::{BackupPhase, BackupPolicyStatus, Consistency};
use partnercloud::api::{BackupPolicy, VirtualServer};
use partnercloud::controllers::backup_policy::kube_time;
use partnercloud::controllers::backup_policy::naming;
use partnercloud::controllers::backup_policy::schedule::Schedule;
use partnercloud::controllers::context::Clock;
use partnercloud::kubevirt::{VirtualMachine, VirtualMachineSnapshot};
use partnercloud::simulator::Failure;
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use crate::common::{admin, clock_lock, create, eventually, namespace, operator, wait_ready};

const WITHIN: Duration = Duration::from_secs(60);
/// A schedule that never comes up during a test (the first of January).
const YEARLY: &str = "0 0 1 1 *";

struct Env {
    _clock: MutexGuard<'static, ()>,
    client: Client,
    ns: String,
    servers: Api<VirtualServer>,
    policies: Api<BackupPolicy>,
    snapshots: Api<VirtualMachineSnapshot>,
}

/// A namespace with Ready servers `names`, labelled `backup: nightly`
/// (and `unselected`, if given, without the label).
async fn setup(prefix: &str, names: &[&str], unselected: Option<&str>) -> Env {
    let clock = clock_lock().await;
    operator();
    let client = admin().await;
    let ns = namespace(&client, prefix).await;
    let servers = Api::<VirtualServer>::namespaced(client.clone(), &ns);
    let labelled = names.iter().map(|n| (*n, true));
    for (name, selected) in labelled.chain(unselected.map(|n| (n, false))) {
        create(&client, &server(name, selected, None), &ns, false)
            .await
            .unwrap();
    }
    for name in names.iter().chain(unselected.iter()) {
        wait_ready(&servers, name, "True", Some("Running"), WITHIN).await;
    }
    Env {
        _clock: clock,
        policies: Api::namespaced(client.clone(), &ns),
        snapshots: Api::namespaced(client.clone(), &ns),
        servers,
        client,
        ns,
    }
}

fn server(name: &str, selected: bool, backup: Option<&str>) -> Value {
    let labels = if selected {
        json!({"backup": "nightly"})
    } else {
        json!({})
    };
    let source = match backup {
        Some(snapshot) => json!({"backup": {"snapshot": snapshot}}),
        None => json!({"blank": {}}),
    };
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": {"name": name, "labels": labels},
        "spec": {"cores": 1, "memory": "1Gi", "disks": [{"name": "system", "size": "2Gi"}, {"name": "data", "size": "1Gi"}], "source": source}
    })
}

fn policy(name: &str, spec: Value) -> Value {
    let base = json!({
        "selector": {"matchLabels": {"backup": "nightly"}},
        "schedule": YEARLY,
        "retention": {"keepLast": 5},
    });
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": name},
        "spec": crate::common::merged(&base, &spec),
    })
}

impl Env {
    async fn create_policy(&self, name: &str, spec: Value) -> BackupPolicy {
        create(&self.client, &policy(name, spec), &self.ns, false)
            .await
            .unwrap();
        wait_ready(&self.policies, name, "True", None, WITHIN).await
    }

    async fn annotate(&self, policy: &str, key: &str, value: &str) {
        self.policies
            .patch(
                policy,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
            )
            .await
            .unwrap();
    }

    async fn run_now(&self, policy: &str, token: &str) {
        self.annotate(policy, "partnercloud.io/run-now", token)
            .await;
    }

    /// Deletes `policy` and waits until it is gone (its cleanup done).
    async fn delete_policy(&self, policy: &str) {
        self.policies
            .delete(policy, &DeleteParams::default())
            .await
            .unwrap();
        eventually(&format!("policy {policy} is gone"), WITHIN, || async {
            self.policies.get_opt(policy).await.unwrap().is_none()
        })
        .await;
    }

    /// Runs `policy` now (its first run) and returns the good backup it made.
    async fn first_good_backup(&self, policy: &str) -> String {
        self.run_now(policy, "t").await;
        let status = self
            .wait_status(policy, "a good backup", |s| {
                all_finished(s, 1) && s.backups[0].phase == BackupPhase::Succeeded
            })
            .await;
        status.backups[0].snapshot.clone()
    }

    /// Wakes the controller for the policy (after the clock moved).
    async fn poke(&self, policy: &str) {
        let stamp = format!("{:?}", std::time::Instant::now());
        self.annotate(policy, "test.partnercloud.io/poke", &stamp)
            .await;
    }

    async fn spec(&self, policy: &str, spec: Value) {
        self.policies
            .patch(
                policy,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap();
    }

    async fn status(&self, policy: &str) -> BackupPolicyStatus {
        self.policies
            .get(policy)
            .await
            .unwrap()
            .status
            .unwrap_or_default()
    }

    /// Waits until the policy's status satisfies `check`.
    async fn wait_status(
        &self,
        policy: &str,
        what: &str,
        check: impl Fn(&BackupPolicyStatus) -> bool,
    ) -> BackupPolicyStatus {
        let mut last = BackupPolicyStatus::default();
        let deadline = tokio::time::Instant::now() + WITHIN;
        while tokio::time::Instant::now() < deadline {
            last = self.status(policy).await;
            if check(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{policy}: timed out waiting for {what}; last status: {last:#?}");
    }

    /// The policy's snapshots, by name.
    async fn snapshot_names(&self, policy: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .snapshots
            .list(&ListParams::default().labels(&naming::policy_selector(policy)))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.name_any())
            .collect();
        names.sort();
        names
    }

    /// Looks a few times, to give a wrong extra snapshot a chance to
    /// appear, and returns what is there.
    async fn settled_snapshot_names(&self, policy: &str) -> Vec<String> {
        for _ in 0..3 {
            self.poke(policy).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        self.snapshot_names(policy).await
    }

    async fn events(&self, policy: &str, reason: &str) -> Vec<Event> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(policy)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect()
    }
}

fn all_finished(s: &BackupPolicyStatus, count: usize) -> bool {
    s.backups.len() == count && s.backups.iter().all(|b| b.phase != BackupPhase::InProgress)
}

fn now() -> DateTime<Utc> {
    kube_time::to_utc(&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        operator().clock.now(),
    ))
}

/// Moves the operator's clock to `seconds` after the next slot of
/// `schedule` (UTC); returns that slot.
fn jump_past_next_slot(schedule: &str, seconds: u64) -> DateTime<Utc> {
    let schedule = Schedule::parse(schedule, "UTC").unwrap();
    let from = now();
    let slot = schedule.next_slot_after(from).unwrap();
    let wait = (slot - from).to_std().unwrap() + Duration::from_secs(seconds);
    operator().clock.advance(wait);
    slot
}

#[tokio::test]
async fn run_now_backs_up_each_selected_server_once_per_token() {
    let env = setup("bp-run-now", &["erp", "crm"], Some("mail")).await;
    env.create_policy("nightly", json!({})).await;
    assert!(
        env.settled_snapshot_names("nightly").await.is_empty(),
        "creating a policy takes no backup"
    );

    env.run_now("nightly", "first").await;
    let status = env
        .wait_status("nightly", "two good backups", |s| all_finished(s, 2))
        .await;
    assert_eq!(status.last_run_now_token.as_deref(), Some("first"));
    let mut servers: Vec<&str> = status.backups.iter().map(|b| b.server.as_str()).collect();
    servers.sort();
    assert_eq!(servers, ["crm", "erp"], "mail is not selected");
    let slot = kube_time::to_utc(&status.backups[0].slot);
    for record in &status.backups {
        assert_eq!(record.phase, BackupPhase::Succeeded, "{record:?}");
        assert_eq!(record.size_bytes, Some(3 << 30), "both disks: {record:?}");
        assert_eq!(record.consistency, Some(Consistency::Filesystem));
        assert_eq!(kube_time::to_utc(&record.slot), slot, "one slot per run");
        assert_eq!(
            record.snapshot,
            naming::snapshot_name(&record.server, "nightly", slot)
        );
    }
    // Reconciling again, and again, creates nothing more.
    assert_eq!(env.settled_snapshot_names("nightly").await.len(), 2);
    let healthy = env.policies.get("nightly").await.unwrap();
    let conditions = &healthy.status.unwrap().conditions;
    let healthy = conditions.iter().find(|c| c.type_ == "Healthy").unwrap();
    assert_eq!(healthy.status, "True");

    // Each server shows its newest good backup; the unselected one none.
    for name in ["erp", "crm"] {
        let expected = naming::snapshot_name(name, "nightly", slot);
        eventually(&format!("{name} shows its last backup"), WITHIN, || {
            let (servers, expected) = (env.servers.clone(), expected.clone());
            async move {
                servers
                    .get(name)
                    .await
                    .unwrap()
                    .status
                    .and_then(|s| s.last_backup)
                    .is_some_and(|b| b.snapshot == expected && b.policy == "nightly")
            }
        })
        .await;
    }
    let mail = env.servers.get("mail").await.unwrap();
    assert!(mail.status.unwrap().last_backup.is_none());
    // The backups are not owned by the policy or the server.
    for snapshot in env.snapshots.list(&ListParams::default()).await.unwrap() {
        assert!(
            snapshot.owner_references().is_empty(),
            "{}",
            snapshot.name_any()
        );
    }

    // A new token runs again (in a later second: the slot of a run-now is
    // its second).
    operator().clock.advance(Duration::from_secs(2));
    env.run_now("nightly", "second").await;
    env.wait_status("nightly", "four good backups", |s| all_finished(s, 4))
        .await;
    assert_eq!(env.settled_snapshot_names("nightly").await.len(), 4);
}

#[tokio::test]
async fn without_the_guest_agent_a_backup_is_crash_consistent() {
    let env = setup("bp-crash", &["erp"], None).await;
    operator()
        .failures
        .inject_namespace(&env.ns, Failure::NoGuestAgent);
    env.create_policy("nightly", json!({"consistency": "Filesystem"}))
        .await;
    env.run_now("nightly", "t").await;
    let status = env
        .wait_status("nightly", "a finished backup", |s| all_finished(s, 1))
        .await;
    assert_eq!(status.backups[0].phase, BackupPhase::Succeeded);
    assert_eq!(status.backups[0].consistency, Some(Consistency::Crash));
}

/// What README tells a user of the dev job: annotating a server's
/// VirtualMachine makes the simulator fail every backup of it.
#[tokio::test]
async fn a_failure_annotated_on_the_vm_fails_its_backups() {
    let env = setup("bp-annotated", &["erp"], None).await;
    Api::<VirtualMachine>::namespaced(env.client.clone(), &env.ns)
        .patch(
            "erp",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"simulator.partnercloud.io/fail": "snapshot-fails"}}})),
        )
        .await
        .unwrap();
    env.create_policy("nightly", json!({})).await;
    env.run_now("nightly", "1").await;
    let status = env
        .wait_status("nightly", "a failed run", |s| s.consecutive_failures == 1)
        .await;
    assert_eq!(status.backups[0].phase, BackupPhase::Failed);
    assert_eq!(status.backups[0].reason.as_deref(), Some("SnapshotFailed"));
}

#[tokio::test]
async fn failed_snapshots_count_and_past_the_limit_healthy_turns_false_with_a_warning() {
    let env = setup("bp-fails", &["erp"], None).await;
    operator()
        .failures
        .inject_namespace(&env.ns, Failure::SnapshotFails);
    env.create_policy("nightly", json!({"maxConsecutiveFailures": 2}))
        .await;
    env.run_now("nightly", "1").await;
    let status = env
        .wait_status("nightly", "one failed run", |s| s.consecutive_failures == 1)
        .await;
    let record = &status.backups[0];
    assert_eq!(record.phase, BackupPhase::Failed);
    assert_eq!(record.reason.as_deref(), Some("SnapshotFailed"));
    assert!(
        record
            .message
            .as_deref()
            .unwrap()
            .contains("snapshot failed")
    );
    assert_eq!(
        status.last_successful_time, None,
        "never counted as a success"
    );
    let healthy = |s: &BackupPolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Healthy")
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap()
    };
    assert_eq!(healthy(&status), ("True".into(), "RecentFailures".into()));

    operator().clock.advance(Duration::from_secs(2));
    env.run_now("nightly", "2").await;
    let status = env
        .wait_status("nightly", "two failed runs", |s| {
            s.consecutive_failures == 2
        })
        .await;
    assert_eq!(healthy(&status), ("False".into(), "TooManyFailures".into()));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "still valid and scheduled");
    eventually("a TooManyFailures Warning event", WITHIN, || async {
        env.events("nightly", "TooManyFailures")
            .await
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning"))
    })
    .await;
    // Counted once each.
    env.settled_snapshot_names("nightly").await;
    assert_eq!(env.status("nightly").await.consecutive_failures, 2);

    // A good run resets the count.
    operator()
        .failures
        .heal(&env.ns, "*", Failure::SnapshotFails);
    operator().clock.advance(Duration::from_secs(2));
    env.run_now("nightly", "3").await;
    let status = env
        .wait_status("nightly", "a good run", |s| s.consecutive_failures == 0)
        .await;
    assert_eq!(
        healthy(&status),
        ("True".into(), "BackupsSucceeding".into())
    );
    assert!(status.last_successful_time.is_some());
}

#[tokio::test]
async fn a_stuck_snapshot_fails_at_its_deadline_and_blocks_no_deletion() {
    let env = setup("bp-stuck", &["erp"], None).await;
    operator()
        .failures
        .inject_namespace(&env.ns, Failure::SnapshotStuck);
    env.create_policy(
        "nightly",
        json!({"runDeadlineSeconds": 60, "deletionPolicy": "Delete"}),
    )
    .await;
    env.run_now("nightly", "t").await;
    env.wait_status("nightly", "a backup in progress", |s| {
        s.backups.len() == 1 && s.backups[0].phase == BackupPhase::InProgress
    })
    .await;
    operator().clock.advance(Duration::from_secs(65));
    env.poke("nightly").await;
    let status = env
        .wait_status("nightly", "the deadline to pass", |s| {
            s.backups
                .first()
                .is_some_and(|b| b.phase == BackupPhase::Failed)
        })
        .await;
    assert_eq!(
        status.backups[0].reason.as_deref(),
        Some("DeadlineExceeded")
    );
    assert_eq!(status.consecutive_failures, 1);

    // Deleting the policy (which deletes its backups) and the server both
    // complete although the snapshot never finished.
    env.policies
        .delete("nightly", &DeleteParams::default())
        .await
        .unwrap();
    env.servers
        .delete("erp", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the policy, the server and the stuck backup are gone",
        WITHIN,
        || async {
            env.policies.get_opt("nightly").await.unwrap().is_none()
                && env.servers.get_opt("erp").await.unwrap().is_none()
                && env.snapshot_names("nightly").await.is_empty()
        },
    )
    .await;
}

#[tokio::test]
async fn creating_editing_suspending_and_resuming_fire_no_run_and_the_next_slot_does() {
    let env = setup("bp-anchor", &["erp"], None).await;
    // Created: a yearly schedule, nothing due.
    env.create_policy("nightly", json!({})).await;
    assert!(env.settled_snapshot_names("nightly").await.is_empty());

    // Ten minutes later, edited to a minute that passed two minutes ago:
    // after the creation and well within the starting deadline, but before
    // the edit, so it does not run.
    operator().clock.advance(Duration::from_secs(600));
    let minute = |t: DateTime<Utc>| t.format("%M").to_string().parse::<u32>().unwrap();
    let m = (minute(now()) + 58) % 60;
    let hourly = format!("{m} * * * *");
    env.spec("nightly", json!({"schedule": hourly})).await;
    env.wait_status("nightly", "the edit to be seen", |s| {
        s.observed_schedule
            .as_ref()
            .is_some_and(|o| o.schedule == hourly)
    })
    .await;
    assert!(
        env.settled_snapshot_names("nightly").await.is_empty(),
        "editing the schedule fired a run"
    );

    // Suspended across a slot, resumed just after it: nothing runs.
    env.spec("nightly", json!({"suspend": true})).await;
    env.wait_status("nightly", "the suspension to be seen", |s| {
        s.observed_schedule.as_ref().is_some_and(|o| o.suspend) && s.next_schedule_time.is_none()
    })
    .await;
    jump_past_next_slot(&hourly, 60);
    env.poke("nightly").await;
    assert!(env.settled_snapshot_names("nightly").await.is_empty());
    env.spec("nightly", json!({"suspend": false})).await;
    env.wait_status("nightly", "the resumption to be seen", |s| {
        s.observed_schedule.as_ref().is_some_and(|o| !o.suspend) && s.next_schedule_time.is_some()
    })
    .await;
    assert!(
        env.settled_snapshot_names("nightly").await.is_empty(),
        "resuming fired a run"
    );
    assert_eq!(env.status("nightly").await.missed_runs, 0);

    // The next real slot runs, once.
    let slot = jump_past_next_slot(&hourly, 30);
    env.poke("nightly").await;
    let status = env
        .wait_status("nightly", "the slot's backup", |s| all_finished(s, 1))
        .await;
    assert_eq!(status.last_schedule_time, Some(kube_time::to_time(slot)));
    assert_eq!(
        env.settled_snapshot_names("nightly").await,
        [naming::snapshot_name("erp", "nightly", slot)]
    );

    // Three hours of downtime: one catch-up run of the latest slot, the
    // two before it counted as missed.
    operator().clock.advance(Duration::from_secs(3 * 3600));
    env.poke("nightly").await;
    let status = env
        .wait_status("nightly", "the catch-up backup", |s| all_finished(s, 2))
        .await;
    let caught_up = slot + chrono::TimeDelta::hours(3);
    assert_eq!(
        status.last_schedule_time,
        Some(kube_time::to_time(caught_up))
    );
    assert_eq!(status.missed_runs, 2);
}

#[tokio::test]
async fn an_invalid_cron_is_refused_at_admission_and_a_valid_one_shows_its_next_run() {
    let env = setup("bp-cron", &[], None).await;
    for (field, value) in [
        ("schedule", "0 0 * * * *"),
        ("schedule", "every night"),
        ("timeZone", "Mars/Olympus_Mons"),
    ] {
        let err = create(
            &env.client,
            &policy("bad", json!({ field: value })),
            &env.ns,
            false,
        )
        .await
        .unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("{field}={value}: {err}");
        };
        assert_eq!(status.code, 422, "{field}={value}: {status:?}");
        assert!(
            status.message.contains(&format!("spec.{field}")),
            "{field}={value}: {}",
            status.message
        );
    }
    let ready = env
        .create_policy(
            "nightly",
            json!({"schedule": "30 2 * * *", "timeZone": "Europe/Moscow"}),
        )
        .await;
    let status = ready.status.unwrap();
    let next = status.next_schedule_time.expect("nextScheduleTime");
    assert!(next.contains("T02:30:00+03:00"), "{next}");
}

#[tokio::test]
async fn retention_prunes_beyond_keep_last_and_keeps_the_newest_good_backup() {
    let env = setup("bp-retention", &["erp"], None).await;
    env.create_policy("nightly", json!({"retention": {"keepLast": 2}}))
        .await;
    let mut tokens = 0;
    let mut run = |count: usize| {
        tokens += 1;
        let token = tokens.to_string();
        let env = &env;
        async move {
            operator().clock.advance(Duration::from_secs(2));
            env.run_now("nightly", &token).await;
            env.wait_status("nightly", &format!("run {token} finished"), |s| {
                s.last_run_now_token.as_deref() == Some(&token) && all_finished(s, count)
            })
            .await
        }
    };
    let first = run(1).await.backups[0].snapshot.clone();
    run(2).await;
    let status = run(2).await;
    assert!(
        status.backups.iter().all(|b| b.snapshot != first),
        "keepLast 2 lets the oldest of three go"
    );
    let left = env.settled_snapshot_names("nightly").await;
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&first));
    let newest_good = status.backups[0].snapshot.clone();

    // Failures do not push the good backups out; of them only the newest
    // stays, for diagnosis.
    operator()
        .failures
        .inject_namespace(&env.ns, Failure::SnapshotFails);
    run(3).await;
    let status = run(3).await;
    let phases: Vec<BackupPhase> = status.backups.iter().map(|b| b.phase).collect();
    assert_eq!(
        phases,
        [
            BackupPhase::Failed,
            BackupPhase::Succeeded,
            BackupPhase::Succeeded
        ]
    );
    assert_eq!(status.backups[1].snapshot, newest_good);
    assert_eq!(env.settled_snapshot_names("nightly").await.len(), 3);
}

#[tokio::test]
async fn a_backup_restores_as_new_servers_twice_at_once() {
    let env = setup("bp-restore", &["erp"], None).await;
    env.create_policy("nightly", json!({})).await;
    let snapshot = env.first_good_backup("nightly").await;
    for name in ["erp-copy-a", "erp-copy-b"] {
        create(
            &env.client,
            &server(name, false, Some(&snapshot)),
            &env.ns,
            false,
        )
        .await
        .unwrap();
    }
    for name in ["erp-copy-a", "erp-copy-b"] {
        let restored = wait_ready(&env.servers, name, "True", Some("Running"), WITHIN).await;
        assert!(
            restored
                .status
                .unwrap()
                .disks
                .iter()
                .all(|d| d.phase.as_deref() == Some("Succeeded"))
        );
    }
    // The restored servers are not selected, so not backed up.
    assert_eq!(env.settled_snapshot_names("nightly").await, [snapshot]);
}

#[tokio::test]
async fn deleting_a_policy_keeps_its_backups_with_retain_and_removes_them_with_delete() {
    let env = setup("bp-delete", &["erp"], None).await;
    env.create_policy("kept", json!({})).await;
    env.create_policy("dropped", json!({"deletionPolicy": "Delete"}))
        .await;
    for policy in ["kept", "dropped"] {
        env.run_now(policy, "t").await;
    }
    for policy in ["kept", "dropped"] {
        env.wait_status(policy, "a finished backup", |s| all_finished(s, 1))
            .await;
    }
    let kept = env.snapshot_names("kept").await;
    for policy in ["kept", "dropped"] {
        env.policies
            .delete(policy, &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually("both policies are gone", WITHIN, || async {
        env.policies.get_opt("kept").await.unwrap().is_none()
            && env.policies.get_opt("dropped").await.unwrap().is_none()
    })
    .await;
    eventually("the Delete policy's backups are gone", WITHIN, || async {
        env.snapshot_names("dropped").await.is_empty()
    })
    .await;
    eventually(
        "erp does not show a deleted backup as its last one",
        WITHIN,
        || async {
            let erp = env.servers.get("erp").await.unwrap();
            erp.status
                .and_then(|s| s.last_backup)
                .is_none_or(|last| last.policy != "dropped")
        },
    )
    .await;
    // Garbage collection had time to act on the Retain policy's backups
    // too: they stay.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.snapshot_names("kept").await, kept);
}

#[tokio::test]
async fn deleting_a_delete_policy_keeps_a_backup_a_restore_is_still_reading() {
    let env = setup("bp-reading", &["erp"], None).await;
    env.create_policy("dropped", json!({"deletionPolicy": "Delete"}))
        .await;
    let snapshot = env.first_good_backup("dropped").await;
    // A restore that cannot finish yet: its disks are smaller than the
    // volumes it restores, so it keeps reading the backup.
    let mut restore = server("erp-restore", false, Some(&snapshot));
    restore["spec"]["disks"] =
        json!([{"name": "system", "size": "1Mi"}, {"name": "data", "size": "1Mi"}]);
    create(&env.client, &restore, &env.ns, false).await.unwrap();
    wait_ready(
        &env.servers,
        "erp-restore",
        "False",
        Some("DiskSmallerThanSource"),
        WITHIN,
    )
    .await;
    env.delete_policy("dropped").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.snapshots.get_opt(&snapshot).await.unwrap().is_some(),
        "the backup a restore reads was kept"
    );
    wait_ready(
        &env.servers,
        "erp-restore",
        "False",
        Some("DiskSmallerThanSource"),
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn deleting_a_delete_policy_completes_when_its_backups_and_server_are_already_gone() {
    let env = setup("bp-gone", &["erp"], None).await;
    env.create_policy("dropped", json!({"deletionPolicy": "Delete"}))
        .await;
    env.run_now("dropped", "t").await;
    env.wait_status("dropped", "a finished backup", |s| all_finished(s, 1))
        .await;
    // Someone cleans up by hand first: the backups, then the server.
    for name in env.snapshot_names("dropped").await {
        env.snapshots
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();
    }
    env.servers
        .delete("erp", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the server is gone", WITHIN, || async {
        env.servers.get_opt("erp").await.unwrap().is_none()
    })
    .await;
    // Nothing already deleted holds its cleanup.
    env.delete_policy("dropped").await;
}

#[tokio::test]
async fn a_restore_drill_verifies_the_newest_good_backup_and_a_failed_drill_fails_it() {
    let env = setup("bp-drill", &["erp"], None).await;
    let drills = "0 * * * *";
    env.create_policy(
        "nightly",
        json!({"verify": {"restoreDrill": {"schedule": drills, "timeoutSeconds": 60}}}),
    )
    .await;
    let backup = env.first_good_backup("nightly").await;

    // The drill's slot comes: a temporary server restores the backup,
    // starts, is recorded and removed.
    let drill_slot = jump_past_next_slot(drills, 5);
    let drill = naming::drill_server_name("erp", "nightly", drill_slot);
    env.poke("nightly").await;
    let status = env
        .wait_status("nightly", "the backup to be verified", |s| {
            s.backups[0].verified.is_some()
        })
        .await;
    assert_eq!(status.last_drill_time, Some(kube_time::to_time(drill_slot)));
    assert_eq!(status.consecutive_failures, 0);
    eventually("the drill server is removed", WITHIN, || async {
        env.servers.get_opt(&drill).await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        env.settled_snapshot_names("nightly").await,
        [backup],
        "the drill server is not backed up"
    );

    // The next drill's server cannot start: past the timeout the backup
    // has failed verification, which counts as a failure.
    let next_slot = Schedule::parse(drills, "UTC")
        .unwrap()
        .next_slot_after(now())
        .unwrap();
    let failing = naming::drill_server_name("erp", "nightly", next_slot);
    operator()
        .failures
        .inject(&env.ns, &failing, Failure::StartFails);
    jump_past_next_slot(drills, 5);
    env.poke("nightly").await;
    eventually("the failing drill server exists", WITHIN, || async {
        env.servers.get_opt(&failing).await.unwrap().is_some()
    })
    .await;
    // The copy of the client's data boots with no network at all.
    let machines = Api::<VirtualMachine>::namespaced(env.client.clone(), &env.ns);
    eventually(
        "the drill server's VirtualMachine exists",
        WITHIN,
        || async { machines.get_opt(&failing).await.unwrap().is_some() },
    )
    .await;
    let machine = machines.get(&failing).await.unwrap();
    let devices = &machine.spec.template.spec.domain.devices;
    assert!(devices.interfaces.is_empty(), "{devices:?}");
    assert_eq!(devices.autoattach_pod_interface, Some(false));
    assert!(machine.spec.template.spec.networks.is_empty());
    operator().clock.advance(Duration::from_secs(65));
    env.poke("nightly").await;
    let status = env
        .wait_status("nightly", "the drill to fail", |s| {
            s.backups[0].phase == BackupPhase::Failed
        })
        .await;
    let record = &status.backups[0];
    assert_eq!(record.reason.as_deref(), Some("RestoreDrillFailed"));
    assert!(
        record
            .message
            .as_deref()
            .unwrap()
            .contains("not running within 60s"),
        "{record:?}"
    );
    assert_eq!(status.consecutive_failures, 1);
    eventually("the failed drill server is removed", WITHIN, || async {
        env.servers.get_opt(&failing).await.unwrap().is_none()
    })
    .await;
    assert!(
        !env.events("nightly", "RestoreDrillFailed").await.is_empty(),
        "a Warning event says so"
    );
}
