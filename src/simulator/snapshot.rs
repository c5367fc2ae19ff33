//! Plays KubeVirt's snapshot controller: a VirtualMachineSnapshot goes
//! `InProgress`, then gets a VirtualMachineSnapshotContent with one volume
//! backup per DataVolume of the VM (its size taken from the claim, as a CSI
//! restore size), and ends `Succeeded` and `readyToUse`. A running VM with
//! a connected agent is frozen (indication `GuestAgent`); otherwise the
//! snapshot is crash-consistent (`NoGuestAgent`), as KubeVirt reports it.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Failure, Sim, SimError, now_rfc3339, patch_status};
use crate::kubevirt::snapshot::{VirtualMachineSnapshotContentSpec, VolumeBackup};
use crate::kubevirt::{
    DataVolume, VirtualMachine, VirtualMachineInstance, VirtualMachineSnapshot,
    VirtualMachineSnapshotContent,
};

pub async fn run(sim: Arc<Sim>) {
    let api = Api::<VirtualMachineSnapshot>::all(sim.client.clone());
    Controller::new(api, watcher::Config::default())
        .run(
            reconcile,
            |_, _, sim: Arc<Sim>| Action::requeue(sim.next_step()),
            sim,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile(
    snapshot: Arc<VirtualMachineSnapshot>,
    sim: Arc<Sim>,
) -> Result<Action, SimError> {
    if snapshot.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = snapshot.namespace().unwrap_or_default();
    let name = snapshot.name_any();
    let api = Api::<VirtualMachineSnapshot>::namespaced(sim.client.clone(), &ns);
    let status = snapshot.status.clone().unwrap_or_default();
    match status.phase.as_deref() {
        Some("Succeeded" | "Failed") => return Ok(Action::await_change()),
        None => {
            patch_status(&api, &name, json!({"phase": "InProgress", "readyToUse": false, "conditions": [
                {"type": "Progressing", "status": "True", "reason": "Source locked and operation in progress"},
                {"type": "Ready", "status": "False", "reason": "Not ready"},
            ]}))
            .await?;
            return Ok(Action::requeue(sim.next_step()));
        }
        Some(_) => {}
    }
    let vm_name = snapshot.spec.source.name.clone();
    let source_vm = Api::<VirtualMachine>::namespaced(sim.client.clone(), &ns)
        .get_opt(&vm_name)
        .await?;
    // A failure asked for on the snapshot, or on the VirtualMachine it is
    // taken of (so `kubectl annotate vm …` makes every backup of it fail).
    let fails = |failure: Failure| {
        sim.config
            .failures
            .applies(&ns, &name, snapshot.meta().annotations.as_ref(), failure)
            || source_vm.as_ref().is_some_and(|vm| {
                sim.config
                    .failures
                    .applies(&ns, &vm_name, vm.meta().annotations.as_ref(), failure)
            })
    };
    if fails(Failure::SnapshotStuck) {
        return Ok(Action::requeue(sim.waiting()));
    }
    if fails(Failure::SnapshotFails) {
        patch_status(&api, &name, json!({"phase": "Failed", "readyToUse": false,
            "error": {"message": "snapshot failed: volume snapshot could not be created", "time": now_rfc3339()},
            "conditions": [{"type": "Failure", "status": "True", "reason": "snapshot failed"}, {"type": "Ready", "status": "False"}]}))
        .await?;
        return Ok(Action::await_change());
    }

    let Some(vm) = source_vm.clone() else {
        patch_status(&api, &name, json!({"conditions": [
            {"type": "Progressing", "status": "False", "reason": format!("Source VirtualMachine {vm_name} does not exist")},
            {"type": "Ready", "status": "False", "reason": "Not ready"},
        ]}))
        .await?;
        return Ok(Action::requeue(sim.waiting()));
    };
    let vmi = Api::<VirtualMachineInstance>::namespaced(sim.client.clone(), &ns)
        .get_opt(&vm_name)
        .await?;
    let running = vmi
        .as_ref()
        .and_then(|i| i.status.as_ref())
        .and_then(|s| s.phase.as_deref())
        == Some("Running");
    let agent = running && !fails(Failure::NoGuestAgent);

    let content_name = format!("vmsnapshot-content-{}", snapshot.uid().unwrap_or_default());
    let backups = volume_backups(&sim, &vm, &snapshot).await?;
    let included: Vec<String> = backups.iter().map(|b| b.volume_name.clone()).collect();
    let volume_status: Vec<serde_json::Value> =
        backups.iter().map(|b| json!({"volumeSnapshotName": b.volume_snapshot_name, "readyToUse": true, "creationTime": now_rfc3339()})).collect();
    let content = VirtualMachineSnapshotContent {
        metadata: ObjectMeta {
            name: Some(content_name.clone()),
            namespace: Some(ns.clone()),
            owner_references: snapshot.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: VirtualMachineSnapshotContentSpec {
            virtual_machine_snapshot_name: Some(name.clone()),
            volume_backups: backups,
            ..Default::default()
        },
        status: None,
    };
    let contents = Api::<VirtualMachineSnapshotContent>::namespaced(sim.client.clone(), &ns);
    match contents.create(&PostParams::default(), &content).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    patch_status(&contents, &content_name, json!({"readyToUse": true, "creationTime": now_rfc3339(), "volumeSnapshotStatus": volume_status})).await?;

    let mut indications = vec!["Online"];
    indications.push(if agent { "GuestAgent" } else { "NoGuestAgent" });
    if !running {
        indications.clear();
    }
    patch_status(
        &api,
        &name,
        json!({
            "phase": "Succeeded",
            "readyToUse": true,
            "sourceUID": vm.uid(),
            "creationTime": now_rfc3339(),
            "virtualMachineSnapshotContentName": content_name,
            "indications": indications,
            "snapshotVolumes": {"includedVolumes": included},
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": "Operation complete"},
                {"type": "Ready", "status": "True", "reason": "Operation complete"},
            ]
        }),
    )
    .await?;
    Ok(Action::await_change())
}

/// One backup per DataVolume-backed volume, sized from its claim.
async fn volume_backups(
    sim: &Sim,
    vm: &VirtualMachine,
    snapshot: &VirtualMachineSnapshot,
) -> Result<Vec<VolumeBackup>, SimError> {
    let ns = vm.namespace().unwrap_or_default();
    let dvs = Api::<DataVolume>::namespaced(sim.client.clone(), &ns);
    let claims = Api::<PersistentVolumeClaim>::namespaced(sim.client.clone(), &ns);
    let uid = snapshot.uid().unwrap_or_default();
    let mut out = Vec::new();
    for volume in &vm.spec.template.spec.volumes {
        let Some(reference) = &volume.data_volume else {
            continue;
        };
        let from_claim = claims
            .get_opt(&reference.name)
            .await?
            .and_then(|c| c.spec)
            .and_then(|s| s.resources)
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").map(|q| q.0.clone()));
        let from_dv = dvs
            .get_opt(&reference.name)
            .await?
            .and_then(|d| d.spec.storage)
            .and_then(|s| s.resources)
            .and_then(|r| r.requests.get("storage").cloned());
        let size = from_claim.or(from_dv).unwrap_or_else(|| "0".into());
        out.push(VolumeBackup {
            volume_name: volume.name.clone(),
            volume_snapshot_name: Some(format!("vmsnapshot-{uid}-volume-{}", volume.name)),
            persistent_volume_claim: Some(json!({"metadata": {"name": reference.name}, "spec": {"resources": {"requests": {"storage": size}}}})),
            ..Default::default()
        });
    }
    Ok(out)
}
