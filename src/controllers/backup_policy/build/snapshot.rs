//! One backup: a VirtualMachineSnapshot of a server's VM for one slot.
//!
//! It carries **no owner reference**: a backup must outlive both the
//! policy (garbage collection would delete every backup with it, whatever
//! `deletionPolicy` says) and the server (restoring a deleted server is
//! what backups are for). The policy finds its backups again by label.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::ObjectMeta;

use crate::api::{BackupPolicy, VirtualServer};
use crate::controllers::backup_policy::judge::{Trigger, format_time};
use crate::controllers::backup_policy::naming;
use crate::controllers::virtual_server::build::names as server_names;
use crate::kubevirt::VirtualMachineSnapshot;
use crate::kubevirt::snapshot::{TypedLocalRef, VM_API_GROUP, VirtualMachineSnapshotSpec};

/// The snapshot of `server` for `slot`, started at `now`.
pub fn build(
    policy: &BackupPolicy,
    server: &VirtualServer,
    slot: DateTime<Utc>,
    trigger: &Trigger,
    now: DateTime<Utc>,
) -> VirtualMachineSnapshot {
    let policy_name = policy.name_any();
    let server_name = server.name_any();
    let mut labels = naming::snapshot_labels(&server_name, &policy_name, slot);
    labels.insert(naming::TRIGGER_LABEL.into(), trigger.label().into());
    // Which server this is a backup of, beyond its name: a later server of
    // the same name is another server, and never takes these backups over.
    if let Some(uid) = &server.metadata.uid {
        labels.insert(naming::SERVER_UID_LABEL.into(), uid.clone());
    }
    let mut annotations = BTreeMap::from([
        (naming::STARTED_AT_ANNOTATION.to_string(), format_time(now)),
        (
            naming::EXPECTED_VOLUMES_ANNOTATION.to_string(),
            server.spec.disks.len().to_string(),
        ),
    ]);
    if let Trigger::RunNow(token) = trigger {
        annotations.insert(naming::RUN_NOW_TOKEN_ANNOTATION.into(), token.clone());
    }
    VirtualMachineSnapshot {
        metadata: ObjectMeta {
            name: Some(naming::snapshot_name(&server_name, &policy_name, slot)),
            namespace: policy.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: None,
            ..Default::default()
        },
        spec: VirtualMachineSnapshotSpec {
            source: TypedLocalRef {
                api_group: VM_API_GROUP.into(),
                kind: "VirtualMachine".into(),
                name: server_names::vm(&server_name),
            },
            // The content (the volume snapshots) goes with the snapshot, so
            // deleting a backup frees its storage.
            deletion_policy: Some("Delete".into()),
            // KubeVirt gives up at the same deadline the policy judges by.
            failure_deadline: Some(format!("{}s", policy.spec.run_deadline_seconds)),
            ..Default::default()
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::backup_policy::judge::{Judging, judge_snapshot};
    use crate::controllers::backup_policy::tests_support::{policy, server};
    use chrono::{TimeDelta, TimeZone};

    fn slot() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap()
    }

    #[test]
    fn a_backup_snapshot_is_named_and_labelled_for_its_server_and_slot() {
        let now = slot() + TimeDelta::seconds(3);
        let s = build(&policy(), &server("erp"), slot(), &Trigger::Schedule, now);
        assert_eq!(
            s.metadata.name.as_deref(),
            Some(naming::snapshot_name("erp", "nightly", slot()).as_str())
        );
        assert_eq!(s.metadata.namespace.as_deref(), Some("client-a"));
        let labels = s.metadata.labels.clone().unwrap();
        assert_eq!(labels["partnercloud.io/backup-policy"], "nightly");
        assert_eq!(labels["partnercloud.io/server"], "erp");
        assert_eq!(labels["partnercloud.io/slot"], "20260105T020000Z");
        assert_eq!(labels["partnercloud.io/trigger"], "schedule");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "partnercloud");
        let annotations = s.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["partnercloud.io/expected-volumes"], "2");
        assert_eq!(
            annotations["partnercloud.io/started-at"],
            "2026-01-05T02:00:03.000Z"
        );
        assert_eq!(s.spec.source.kind, "VirtualMachine");
        assert_eq!(s.spec.source.name, "erp");
        assert_eq!(s.spec.source.api_group, "kubevirt.io");
        assert_eq!(s.spec.failure_deadline.as_deref(), Some("3600s"));
        assert_eq!(s.spec.deletion_policy.as_deref(), Some("Delete"));
    }

    #[test]
    fn a_backup_is_never_owned_by_the_policy_or_the_server() {
        let s = build(
            &policy(),
            &server("erp"),
            slot(),
            &Trigger::Schedule,
            slot(),
        );
        assert!(s.metadata.owner_references.is_none());
    }

    #[test]
    fn a_run_now_backup_carries_its_token_and_reads_back_as_one() {
        let trigger = Trigger::RunNow("2026-01-05 deploy".into());
        let mut s = build(&policy(), &server("erp"), slot(), &trigger, slot());
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()["partnercloud.io/trigger"],
            "run-now"
        );
        s.metadata.creation_timestamp =
            Some(crate::controllers::backup_policy::kube_time::to_time(slot()));
        let judged = judge_snapshot(
            &s,
            None,
            &Judging {
                consistency: Default::default(),
                run_deadline: TimeDelta::hours(1),
                now: slot(),
            },
        )
        .unwrap();
        assert_eq!(judged.trigger, trigger);
        assert_eq!(judged.slot, slot());
        assert_eq!(judged.server, "erp");
    }
}
