//! A restore drill's temporary server: the newest good backup of a server
//! restored as a new VirtualServer that must start.
//!
//! It has the server's size and disks, restores from the backup
//! (`source.backup`), runs, and has no network interface at all
//! (`network: Isolated`): nobody can reach the copy of a client's data, and
//! the copy cannot reach anyone — a restored 1C server must not talk to the
//! client's licence server, mail or bank as if it were the original. It is
//! owned by the policy, so deleting the policy removes a drill in flight,
//! and its disks go with it (`deletionPolicy: Delete`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::ObjectMeta;

use crate::api::virtual_server::{
    BackupSource, DeletionPolicy, NetworkMode, PowerState, ServerSource,
};
use crate::api::{BackupPolicy, VirtualServer, VirtualServerSpec};
use crate::controllers::backup_policy::judge::format_time;
use crate::controllers::backup_policy::naming;
use crate::controllers::ownership::{OwnershipError, controller_ref};

/// Size of a drill server whose original takes its size from a template
/// (the template's defaults are not at hand here): enough for a Windows
/// guest to boot, which is all a drill proves.
const FALLBACK_CORES: u32 = 2;
const FALLBACK_MEMORY: &str = "4Gi";

/// The drill server restoring `snapshot` (a backup of `server`) for the
/// drill of `drill_slot`, started at `now`.
pub fn build(
    policy: &BackupPolicy,
    server: &VirtualServer,
    snapshot: &str,
    drill_slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<VirtualServer, OwnershipError> {
    let policy_name = policy.name_any();
    let server_name = server.name_any();
    let name = naming::drill_server_name(&server_name, &policy_name, drill_slot);
    let labels = BTreeMap::from([
        (
            naming::POLICY_LABEL.to_string(),
            naming::label_value(&policy_name),
        ),
        (
            naming::ROLE_LABEL.to_string(),
            naming::DRILL_ROLE.to_string(),
        ),
        (
            naming::DRILL_OF_LABEL.to_string(),
            naming::label_value(&server_name),
        ),
        (
            naming::MANAGED_BY_LABEL.to_string(),
            naming::MANAGED_BY.to_string(),
        ),
    ]);
    let annotations = BTreeMap::from([
        (
            naming::DRILL_SNAPSHOT_ANNOTATION.to_string(),
            snapshot.to_string(),
        ),
        (
            naming::DRILL_ANNOTATION.to_string(),
            naming::slot_label(drill_slot),
        ),
        (naming::STARTED_AT_ANNOTATION.to_string(), format_time(now)),
    ]);
    let owner = controller_ref(
        policy,
        "VirtualServer",
        &name,
        policy.metadata.namespace.as_deref(),
    )?;
    Ok(VirtualServer {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: policy.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: VirtualServerSpec {
            cores: Some(server.spec.cores.unwrap_or(FALLBACK_CORES)),
            memory: Some(
                server
                    .spec
                    .memory
                    .clone()
                    .unwrap_or_else(|| Quantity(FALLBACK_MEMORY.into())),
            ),
            disks: server.spec.disks.clone(),
            source: ServerSource {
                backup: Some(BackupSource {
                    snapshot: snapshot.to_string(),
                }),
                ..Default::default()
            },
            power_state: PowerState::Running,
            expose: Vec::new(),
            network: NetworkMode::Isolated,
            user_data: None,
            deletion_policy: DeletionPolicy::Delete,
        },
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::backup_policy::tests_support::{policy, server};
    use chrono::TimeZone;

    fn drill_slot() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 11, 5, 0, 0).unwrap()
    }

    #[test]
    fn a_drill_restores_the_backup_into_a_running_unexposed_copy() {
        let original = server("erp");
        assert!(!original.spec.expose.is_empty(), "the fixture is exposed");
        let drill = build(
            &policy(),
            &original,
            "erp-nightly-202601100200-1a2b3c4d",
            drill_slot(),
            drill_slot(),
        )
        .unwrap();
        assert_eq!(
            drill.metadata.name.as_deref(),
            Some(naming::drill_server_name("erp", "nightly", drill_slot()).as_str())
        );
        assert_eq!(
            drill.spec.source.backup.as_ref().unwrap().snapshot,
            "erp-nightly-202601100200-1a2b3c4d"
        );
        assert_eq!(drill.spec.source.image, None);
        assert_eq!(drill.spec.disks, original.spec.disks);
        assert_eq!(drill.spec.cores, original.spec.cores);
        assert_eq!(drill.spec.memory, original.spec.memory);
        assert_eq!(drill.spec.power_state, PowerState::Running);
        assert!(drill.spec.expose.is_empty());
        assert_eq!(
            drill.spec.network,
            NetworkMode::Isolated,
            "a copy of client data boots without any network"
        );
        assert!(drill.spec.user_data.is_none());
        assert_eq!(drill.spec.deletion_policy, DeletionPolicy::Delete);
    }

    #[test]
    fn a_drill_is_labelled_as_one_and_owned_by_the_policy() {
        let drill = build(
            &policy(),
            &server("erp"),
            "snap",
            drill_slot(),
            drill_slot(),
        )
        .unwrap();
        let labels = drill.metadata.labels.clone().unwrap();
        assert_eq!(labels["partnercloud.io/role"], "restore-drill");
        assert_eq!(labels["partnercloud.io/drill-of"], "erp");
        assert_eq!(labels["partnercloud.io/backup-policy"], "nightly");
        assert!(
            !labels.contains_key("partnercloud.io/server"),
            "not mistaken for a child of the original"
        );
        let annotations = drill.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["partnercloud.io/drill"], "20260111T050000Z");
        assert_eq!(annotations["partnercloud.io/drill-snapshot"], "snap");
        let owners = drill.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "BackupPolicy");
        assert_eq!(owners[0].name, "nightly");
    }

    #[test]
    fn a_server_sized_by_its_template_drills_at_a_fallback_size() {
        let mut original = server("erp");
        original.spec.cores = None;
        original.spec.memory = None;
        let drill = build(&policy(), &original, "snap", drill_slot(), drill_slot()).unwrap();
        assert_eq!(drill.spec.cores, Some(2));
        assert_eq!(drill.spec.memory, Some(Quantity("4Gi".into())));
    }

    #[test]
    fn the_drill_of_a_long_named_server_has_a_valid_server_name() {
        let drill = build(
            &policy(),
            &server(&"a".repeat(40)),
            "snap",
            drill_slot(),
            drill_slot(),
        )
        .unwrap();
        assert!(drill.metadata.name.unwrap().len() <= 40);
    }
}
