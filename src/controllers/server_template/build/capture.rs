//! The VM snapshot a template is captured from. Taken online while the
//! server runs (KubeVirt freezes the guest through its agent when one
//! runs), or offline when it is stopped; the server itself is never
//! modified. The same mechanism as a VirtualServer's hot copy. It lives in
//! the template's namespace, owned by the template, only until the golden
//! disk has been restored from it.

use kube::api::ObjectMeta;

use crate::api::ServerTemplate;
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::server_template::plan::CaptureSnapshot;
use crate::kubevirt::VirtualMachineSnapshot;
use crate::kubevirt::snapshot::{TypedLocalRef, VM_API_GROUP, VirtualMachineSnapshotSpec};

pub fn build(
    template: &ServerTemplate,
    capture: &CaptureSnapshot,
) -> Result<VirtualMachineSnapshot, OwnershipError> {
    let template_name = template.metadata.name.clone().unwrap_or_default();
    let namespace = template.metadata.namespace.clone();
    let name = capture.name.clone();
    Ok(VirtualMachineSnapshot {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: namespace.clone(),
            labels: Some(labels::template_labels(
                &template_name,
                labels::TEMPLATE_CAPTURE_ROLE,
            )),
            owner_references: Some(vec![controller_ref(
                template,
                "VirtualMachineSnapshot",
                &name,
                namespace.as_deref(),
            )?]),
            ..Default::default()
        },
        spec: VirtualMachineSnapshotSpec {
            source: TypedLocalRef {
                api_group: VM_API_GROUP.into(),
                kind: "VirtualMachine".into(),
                name: capture.vm.clone(),
            },
            deletion_policy: Some("Delete".into()),
            failure_deadline: Some("5m0s".into()),
            ..Default::default()
        },
        status: None,
    })
}
