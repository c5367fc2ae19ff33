//! The VM snapshot of a running server that a hot copy is restored from.
//! Taken online (no downtime); KubeVirt freezes the guest through its agent
//! when one runs.

use kube::api::ObjectMeta;

use super::names;
use super::virtual_machine::add_tenancy;
use crate::api::VirtualServer;
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::virtual_server::plan::{CloneSnapshot, Plan};
use crate::kubevirt::VirtualMachineSnapshot;
use crate::kubevirt::snapshot::{TypedLocalRef, VM_API_GROUP, VirtualMachineSnapshotSpec};

pub fn build(
    server: &VirtualServer,
    plan: &Plan,
    clone: &CloneSnapshot,
) -> Result<VirtualMachineSnapshot, OwnershipError> {
    let server_name = server.metadata.name.clone().unwrap_or_default();
    let name = names::clone_snapshot(&server_name);
    let mut labels = labels::server_labels(&server_name, "clone-source");
    add_tenancy(&mut labels, plan);
    Ok(VirtualMachineSnapshot {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: server.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(
                server,
                "VirtualMachineSnapshot",
                &name,
                server.metadata.namespace.as_deref(),
            )?]),
            ..Default::default()
        },
        spec: VirtualMachineSnapshotSpec {
            source: TypedLocalRef {
                api_group: VM_API_GROUP.into(),
                kind: "VirtualMachine".into(),
                name: clone.source_vm.clone(),
            },
            deletion_policy: Some("Delete".into()),
            failure_deadline: Some("5m0s".into()),
            ..Default::default()
        },
        status: None,
    })
}
