//! Apply: server-side apply every built child, then sweep the children
//! this pass no longer wants. Returns the applied objects (they carry the
//! freshest status) so the status step sees what was just written.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

use super::build::Children;
use super::fetch::Observed;
use crate::api::VirtualServer;
use crate::controllers::apply::{ApplyError, ensure, names, refuse_takeover, sweep_observed};
use crate::controllers::labels;
use crate::controllers::writes;
use crate::kubevirt::{DataVolume, VirtualMachine, VirtualMachineSnapshot};

pub async fn apply_children(
    client: &Client,
    server: &VirtualServer,
    children: Children,
    observed: &mut Observed,
) -> Result<(), ApplyError> {
    let ns = server.namespace().unwrap_or_default();
    let uid = server.uid().unwrap_or_default();
    let owner = writes::key("VirtualServer", &ns, &server.name_any());
    // No `..`: a new child kind must be applied (and swept) here.
    let Children {
        vm,
        disks,
        iso,
        clone_snapshot,
        services,
        network_policies,
    } = children;

    let snapshots: Api<VirtualMachineSnapshot> = Api::namespaced(client.clone(), &ns);
    let data_volumes: Api<DataVolume> = Api::namespaced(client.clone(), &ns);
    let vms: Api<VirtualMachine> = Api::namespaced(client.clone(), &ns);
    let service_api: Api<Service> = Api::namespaced(client.clone(), &ns);
    let policy_api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let all_disks: Vec<DataVolume> = disks.into_iter().chain(iso).collect();
    let current_snapshot = |snapshot: &VirtualMachineSnapshot| {
        observed
            .snapshot
            .clone()
            .filter(|s| s.name_any() == snapshot.name_any())
    };
    let current_policy = |policy: &NetworkPolicy| {
        observed
            .network_policies
            .iter()
            .find(|p| p.name_any() == policy.name_any())
            .cloned()
    };

    // Every name this pass would create is checked before anything is
    // applied: a name another server holds builds nothing at all.
    if let Some(snapshot) = &clone_snapshot
        && current_snapshot(snapshot).is_none()
    {
        refuse_takeover(&snapshots, snapshot).await?;
    }
    for dv in &all_disks {
        if observed.data_volume(&dv.name_any()).is_none() {
            refuse_takeover(&data_volumes, dv).await?;
        }
    }
    if let Some(vm) = &vm
        && observed.vm.is_none()
    {
        refuse_takeover(&vms, vm).await?;
    }
    for service in &services {
        if observed.service(&service.name_any()).is_none() {
            refuse_takeover(&service_api, service).await?;
        }
    }
    for policy in &network_policies {
        if current_policy(policy).is_none() {
            refuse_takeover(&policy_api, policy).await?;
        }
    }

    if let Some(snapshot) = &clone_snapshot {
        let current = current_snapshot(snapshot);
        ensure(&snapshots, snapshot, current.as_ref(), &owner).await?;
    }
    for dv in &all_disks {
        let current = observed.data_volume(&dv.name_any()).cloned();
        if let Some(applied) = ensure(&data_volumes, dv, current.as_ref(), &owner).await? {
            replace(&mut observed.data_volumes, applied);
        }
    }
    if let Some(vm) = &vm
        && let Some(applied) = ensure(&vms, vm, observed.vm.as_ref(), &owner).await?
    {
        observed.vm = Some(applied);
    }
    for service in &services {
        let current = observed.service(&service.name_any()).cloned();
        if let Some(applied) = ensure(&service_api, service, current.as_ref(), &owner).await? {
            replace(&mut observed.services, applied);
        }
    }
    for policy in &network_policies {
        let current = current_policy(policy);
        ensure(&policy_api, policy, current.as_ref(), &owner).await?;
    }

    // The sweep only ever deletes children owned by this server: retained
    // disks (no owner) and the VM (swept only by GC) are never touched here.
    // Disks taken out of spec.disks are detached, never deleted here: a
    // renamed data disk must not cost its data. They go with the server
    // (under `Delete`). Only the installation ISO is swept.
    let existing_disks: Vec<DataVolume> = observed
        .data_volumes
        .iter()
        .filter(|d| d.labels().get(labels::ROLE).map(String::as_str) == Some("iso"))
        .cloned()
        .collect();
    let removed_disks =
        sweep_observed(&data_volumes, &existing_disks, &uid, &names(&all_disks)).await?;
    let existing_policies = observed.network_policies.clone();
    let removed_policies = sweep_observed(
        &policy_api,
        &existing_policies,
        &uid,
        &names(&network_policies),
    )
    .await?;
    let existing_snapshots: Vec<VirtualMachineSnapshot> =
        observed.snapshot.iter().cloned().collect();
    let removed_snapshots = sweep_observed(
        &snapshots,
        &existing_snapshots,
        &uid,
        &names(&clone_snapshot),
    )
    .await?;
    observed
        .data_volumes
        .retain(|d| !removed_disks.contains(&d.name_any()));
    let existing_services = observed.services.clone();
    let removed_services =
        sweep_observed(&service_api, &existing_services, &uid, &names(&services)).await?;
    observed
        .services
        .retain(|s| !removed_services.contains(&s.name_any()));
    for _ in removed_disks
        .iter()
        .chain(&removed_services)
        .chain(&removed_policies)
        .chain(&removed_snapshots)
    {
        writes::record(&owner);
    }
    Ok(())
}

/// Field manager of the halt below, distinct from the one that applies the
/// whole VM, so the next full apply simply takes `runStrategy` back.
const SUSPENSION_MANAGER: &str = "partnercloud-suspension";

/// While a server is blocked nothing is applied — except that a suspension
/// must still halt a server that was built before (one whose resize was
/// refused, say). Only `spec.runStrategy` is touched, and only when it is
/// not `Halted` already; nothing is created or deleted.
pub async fn halt(client: &Client, observed: &mut Observed) -> Result<(), ApplyError> {
    let Some(vm) = observed.vm.as_ref() else {
        return Ok(());
    };
    if vm.spec.run_strategy.as_deref() == Some("Halted") {
        return Ok(());
    }
    let name = vm.name_any();
    let api: Api<VirtualMachine> =
        Api::namespaced(client.clone(), &vm.namespace().unwrap_or_default());
    let patch = serde_json::json!({"spec": {"runStrategy": "Halted"}});
    let halted = api
        .patch(
            &name,
            &PatchParams {
                field_manager: Some(SUSPENSION_MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| ApplyError::Apply {
            kind: "VirtualMachine".into(),
            name,
            source,
        })?;
    observed.vm = Some(halted);
    Ok(())
}

fn replace<K: ResourceExt>(list: &mut Vec<K>, fresh: K) {
    let name = fresh.name_any();
    list.retain(|k| k.name_any() != name);
    list.push(fresh);
}
