//! Plays virt-controller: a VirtualMachine with `runStrategy: Always`
//! gets a VirtualMachineInstance once its DataVolumes have succeeded; the
//! instance is scheduled, then runs with an address and a connected guest
//! agent. `Halted` removes the instance. Changing cores or memory of a
//! running VM raises `RestartRequired` until the instance is recreated.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Failure, Sim, SimError, hash_bytes, ignore_not_found, now_rfc3339, patch_status};
use crate::kubevirt::virtual_machine_instance::VirtualMachineInstanceSpec;
use crate::kubevirt::{DataVolume, VirtualMachine, VirtualMachineInstance};

pub async fn run(sim: Arc<Sim>) {
    let api = Api::<VirtualMachine>::all(sim.client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    let vms = controller.store();
    controller
        .owns(
            Api::<VirtualMachineInstance>::all(sim.client.clone()),
            watcher::Config::default(),
        )
        // A DataVolume finishing wakes the VMs that use it, as
        // virt-controller's volume index does.
        .watches(
            Api::<DataVolume>::all(sim.client.clone()),
            watcher::Config::default(),
            move |dv| {
                let (ns, name) = (dv.namespace(), dv.name_any());
                vms.state()
                    .into_iter()
                    .filter(|vm| vm.namespace() == ns)
                    .filter(|vm| {
                        vm.spec
                            .template
                            .spec
                            .volumes
                            .iter()
                            .any(|v| v.data_volume.as_ref().is_some_and(|d| d.name == name))
                    })
                    .map(|vm| ObjectRef::from_obj(&*vm))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            reconcile,
            |_, _, sim: Arc<Sim>| Action::requeue(sim.next_step()),
            sim,
        )
        .for_each(|_| async {})
        .await;
}

/// What the VM's volumes allow.
enum Volumes {
    Ready,
    Waiting,
    Failed(String),
}

async fn volumes(sim: &Sim, vm: &VirtualMachine) -> Result<Volumes, SimError> {
    let api =
        Api::<DataVolume>::namespaced(sim.client.clone(), &vm.namespace().unwrap_or_default());
    for volume in &vm.spec.template.spec.volumes {
        let Some(reference) = &volume.data_volume else {
            continue;
        };
        let Some(dv) = api.get_opt(&reference.name).await? else {
            return Ok(Volumes::Waiting);
        };
        match dv.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Succeeded") => {}
            Some("Failed") => {
                return Ok(Volumes::Failed(format!(
                    "DataVolume {} failed",
                    reference.name
                )));
            }
            _ => return Ok(Volumes::Waiting),
        }
    }
    Ok(Volumes::Ready)
}

/// The domain sizing a VM or instance runs with, for restart detection.
fn sizing(domain: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (
        domain.pointer("/cpu/cores").cloned().unwrap_or_default(),
        domain.pointer("/memory/guest").cloned().unwrap_or_default(),
    )
}

async fn reconcile(vm: Arc<VirtualMachine>, sim: Arc<Sim>) -> Result<Action, SimError> {
    if vm.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = vm.namespace().unwrap_or_default();
    let name = vm.name_any();
    let vms = Api::<VirtualMachine>::namespaced(sim.client.clone(), &ns);
    let vmis = Api::<VirtualMachineInstance>::namespaced(sim.client.clone(), &ns);
    let vmi = vmis.get_opt(&name).await?;
    let wants_running = matches!(
        vm.spec.run_strategy.as_deref(),
        Some("Always" | "RerunOnFailure" | "Once")
    );

    if !wants_running {
        if let Some(vmi) = vmi {
            if vmi.meta().deletion_timestamp.is_none() {
                ignore_not_found(
                    vmis.delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )?;
            }
            set_vm(&vms, &vm, "Stopping", false, true, None, false).await?;
            return Ok(Action::requeue(sim.next_step()));
        }
        set_vm(&vms, &vm, "Stopped", false, false, None, false).await?;
        return Ok(Action::await_change());
    }

    if sim.config.failures.applies(
        &ns,
        &name,
        vm.meta().annotations.as_ref(),
        Failure::StartFails,
    ) {
        set_vm(
            &vms,
            &vm,
            "CrashLoopBackOff",
            false,
            false,
            Some("virt-launcher crashed: the guest failed to boot"),
            false,
        )
        .await?;
        return Ok(Action::requeue(sim.waiting()));
    }
    match volumes(&sim, &vm).await? {
        Volumes::Waiting => {
            set_vm(&vms, &vm, "Provisioning", false, false, None, false).await?;
            return Ok(Action::requeue(sim.waiting()));
        }
        Volumes::Failed(why) => {
            set_vm(
                &vms,
                &vm,
                "DataVolumeError",
                false,
                false,
                Some(&why),
                false,
            )
            .await?;
            return Ok(Action::requeue(sim.waiting()));
        }
        Volumes::Ready => {}
    }

    let domain = serde_json::to_value(&vm.spec.template.spec.domain).unwrap_or_default();
    let Some(vmi) = vmi else {
        create_instance(&vmis, &vm, domain).await?;
        set_vm(&vms, &vm, "Starting", false, true, None, false).await?;
        return Ok(Action::requeue(sim.next_step()));
    };
    if vmi.meta().deletion_timestamp.is_some() {
        return Ok(Action::requeue(sim.next_step()));
    }
    let phase = vmi
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if phase != "Running" {
        run_instance(&sim, &vmis, &vm, &vmi).await?;
        set_vm(&vms, &vm, "Starting", false, true, None, false).await?;
        return Ok(Action::requeue(sim.next_step()));
    }
    let started_with = vmi.spec.other.get("domain").map(sizing).unwrap_or_default();
    let restart_required = started_with != sizing(&domain);
    set_vm(&vms, &vm, "Running", true, true, None, restart_required).await?;
    Ok(Action::await_change())
}

async fn create_instance(
    vmis: &Api<VirtualMachineInstance>,
    vm: &VirtualMachine,
    domain: serde_json::Value,
) -> Result<(), SimError> {
    let labels = vm
        .spec
        .template
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    let instance = VirtualMachineInstance {
        metadata: ObjectMeta {
            name: Some(vm.name_any()),
            namespace: vm.namespace(),
            labels: Some(labels),
            owner_references: vm.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: VirtualMachineInstanceSpec {
            other: [
                ("domain".to_string(), domain),
                (
                    "hostname".to_string(),
                    json!(vm.spec.template.spec.hostname),
                ),
            ]
            .into_iter()
            .collect(),
        },
        status: None,
    };
    match vmis.create(&PostParams::default(), &instance).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Scheduling → Running, with an address from 10.244.0.0/16 and the MAC
/// the VM asked for.
async fn run_instance(
    sim: &Sim,
    vmis: &Api<VirtualMachineInstance>,
    vm: &VirtualMachine,
    vmi: &VirtualMachineInstance,
) -> Result<(), SimError> {
    let phase = vmi.status.as_ref().and_then(|s| s.phase.clone());
    let next = if phase.is_none() {
        json!({"phase": "Scheduling"})
    } else {
        let h = hash_bytes(&vmi.uid().unwrap_or_default());
        let ip = format!("10.244.{}.{}", h[0], 2 + h[1] % 250);
        let mac = vm
            .spec
            .template
            .spec
            .domain
            .devices
            .interfaces
            .first()
            .and_then(|i| i.mac_address.clone());
        // A VM without interfaces (an isolated server) gets no address.
        let interfaces = if vm.spec.template.spec.domain.devices.interfaces.is_empty() {
            json!([])
        } else {
            json!([{"name": "default", "ipAddress": ip, "ipAddresses": [ip], "mac": mac}])
        };
        json!({
            "phase": "Running",
            "interfaces": interfaces,
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "AgentConnected", "status": "True", "lastProbeTime": now_rfc3339()},
            ]
        })
    };
    let _ = sim;
    patch_status(vmis, &vmi.name_any(), next).await?;
    Ok(())
}

async fn set_vm(
    vms: &Api<VirtualMachine>,
    vm: &VirtualMachine,
    printable: &str,
    ready: bool,
    created: bool,
    failure: Option<&str>,
    restart_required: bool,
) -> Result<(), SimError> {
    let mut conditions =
        vec![json!({"type": "Ready", "status": if ready { "True" } else { "False" }})];
    if let Some(message) = failure {
        conditions.push(json!({"type": "Failure", "status": "True", "reason": "FailedCreate", "message": message}));
    }
    if restart_required {
        conditions.push(json!({"type": "RestartRequired", "status": "True", "message": "a non-live-updatable field was changed in the template spec"}));
    }
    let current = vm.status.clone().unwrap_or_default();
    let same = current.printable_status.as_deref() == Some(printable)
        && current.ready == Some(ready)
        && current.created == Some(created)
        && current.conditions.len() == conditions.len()
        && crate::kubevirt::condition(&current.conditions, "RestartRequired").is_some()
            == restart_required;
    if same {
        return Ok(());
    }
    patch_status(vms, &vm.name_any(), json!({"printableStatus": printable, "ready": ready, "created": created, "conditions": conditions})).await?;
    Ok(())
}
