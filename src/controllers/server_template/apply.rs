//! Apply: server-side apply every built child, then sweep the children
//! this pass no longer wants (owned by this template and labelled as its
//! children; servers deployed from it are never touched).

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::build::Children;
use crate::api::ServerTemplate;
use crate::controllers::apply::{ApplyError, apply, names, sweep};
use crate::controllers::labels;
use crate::kubevirt::{DataSource, DataVolume, VirtualMachineSnapshot};

pub async fn apply_children(
    client: &Client,
    template: &ServerTemplate,
    children: Children,
) -> Result<(), ApplyError> {
    let ns = template.namespace().unwrap_or_default();
    let uid = template.uid().unwrap_or_default();
    let selector = labels::template_selector(&template.name_any());
    // No `..`: a new child kind must be applied (and swept) here.
    let Children {
        golden,
        previous,
        capture,
        data_source,
        clone_role,
        clone_binding,
    } = children;

    let snapshots: Api<VirtualMachineSnapshot> = Api::namespaced(client.clone(), &ns);
    if let Some(snapshot) = &capture {
        apply(&snapshots, snapshot).await?;
    }
    let data_volumes: Api<DataVolume> = Api::namespaced(client.clone(), &ns);
    let volumes: Vec<DataVolume> = golden.into_iter().chain(previous).collect();
    for dv in &volumes {
        apply(&data_volumes, dv).await?;
    }
    // The DataSource moves to a new golden disk before the old one is swept.
    let data_sources: Api<DataSource> = Api::namespaced(client.clone(), &ns);
    if let Some(ds) = &data_source {
        apply(&data_sources, ds).await?;
    }
    let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
    if let Some(role) = &clone_role {
        apply(&roles, role).await?;
    }
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
    if let Some(binding) = &clone_binding {
        apply(&bindings, binding).await?;
    }

    sweep(&bindings, &selector, &uid, &names(&clone_binding)).await?;
    sweep(&roles, &selector, &uid, &names(&clone_role)).await?;
    sweep(&data_sources, &selector, &uid, &names(&data_source)).await?;
    sweep(&data_volumes, &selector, &uid, &names(&volumes)).await?;
    sweep(&snapshots, &selector, &uid, &names(&capture)).await?;
    Ok(())
}
