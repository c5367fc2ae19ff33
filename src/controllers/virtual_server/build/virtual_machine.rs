//! The KubeVirt VirtualMachine of a server.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use super::{identity, names};
use crate::api::VirtualServer;
use crate::api::quantity::Bytes;
use crate::api::virtual_server::{NetworkMode, PowerState, UserDataFormat};
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::virtual_server::plan::Plan;
use crate::kubevirt::VirtualMachine;
use crate::kubevirt::virtual_machine::{
    CloudInitNoCloud, Cpu, DataVolumeRef, Devices, Disk, DiskTarget, Domain, Firmware, Interface,
    LocalRef, Memory, Network, Sysprep, TemplateMeta, VirtualMachineSpec, VmTemplate, VmiSpec,
    Volume,
};

/// `runStrategy` for a power state. `Halted` rather than the deprecated
/// `spec.running`.
pub fn run_strategy(power: PowerState) -> &'static str {
    match power {
        PowerState::Running => "Always",
        PowerState::Stopped => "Halted",
    }
}

pub fn build(
    server: &VirtualServer,
    plan: &Plan,
    power: PowerState,
) -> Result<VirtualMachine, OwnershipError> {
    let name = server.metadata.name.clone().unwrap_or_default();
    let namespace = server.metadata.namespace.clone();
    let uid = server.metadata.uid.clone().unwrap_or_default();
    let id = identity::for_server(&uid);
    let owner = controller_ref(server, "VirtualMachine", &name, namespace.as_deref())?;

    let mut labels = labels::server_labels(&name, "vm");
    add_tenancy(&mut labels, plan);
    // The launcher pod carries these, so Services and NetworkPolicies can
    // select the server.
    let pod_labels = BTreeMap::from([
        (labels::SERVER.to_string(), name.clone()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]);

    let mut disks = Vec::new();
    let mut volumes = Vec::new();
    let installing = plan.iso_url.is_some();
    for disk in &plan.disks {
        disks.push(Disk {
            name: disk.spec.name.clone(),
            disk: Some(DiskTarget {
                bus: Some("virtio".into()),
                ..Default::default()
            }),
            // While an ISO is attached it boots first; the system disk next.
            boot_order: disk.system.then_some(if installing { 2 } else { 1 }),
            ..Default::default()
        });
        volumes.push(Volume {
            name: disk.spec.name.clone(),
            data_volume: Some(DataVolumeRef {
                name: names::disk(&name, &disk.spec.name),
            }),
            ..Default::default()
        });
    }
    if installing {
        disks.push(Disk {
            name: names::CDROM_VOLUME.into(),
            cdrom: Some(DiskTarget {
                bus: Some("sata".into()),
                ..Default::default()
            }),
            boot_order: Some(1),
            ..Default::default()
        });
        volumes.push(Volume {
            name: names::CDROM_VOLUME.into(),
            data_volume: Some(DataVolumeRef {
                name: names::iso(&name),
            }),
            ..Default::default()
        });
    }
    if let Some(user_data) = &server.spec.user_data {
        let secret = Some(LocalRef {
            name: user_data.secret_name.clone(),
        });
        let volume = match user_data.format {
            UserDataFormat::CloudInit => Volume {
                name: names::FIRSTBOOT_VOLUME.into(),
                cloud_init_no_cloud: Some(CloudInitNoCloud {
                    secret_ref: secret,
                    ..Default::default()
                }),
                ..Default::default()
            },
            UserDataFormat::Sysprep => Volume {
                name: names::FIRSTBOOT_VOLUME.into(),
                sysprep: Some(Sysprep {
                    secret,
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        let target = match user_data.format {
            UserDataFormat::CloudInit => Disk {
                name: names::FIRSTBOOT_VOLUME.into(),
                disk: Some(DiskTarget {
                    bus: Some("virtio".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            UserDataFormat::Sysprep => Disk {
                name: names::FIRSTBOOT_VOLUME.into(),
                cdrom: Some(DiskTarget {
                    bus: Some("sata".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        disks.push(target);
        volumes.push(volume);
    }

    // An isolated server gets no interface, and KubeVirt is told not to
    // add its default one.
    let (interfaces, networks, autoattach) = match server.spec.network {
        NetworkMode::Pod => (
            vec![Interface {
                name: "default".into(),
                mac_address: Some(id.mac),
                masquerade: Some(BTreeMap::new()),
                ..Default::default()
            }],
            vec![Network {
                name: "default".into(),
                pod: Some(BTreeMap::new()),
                ..Default::default()
            }],
            None,
        ),
        NetworkMode::Isolated => (Vec::new(), Vec::new(), Some(false)),
    };

    Ok(VirtualMachine {
        metadata: ObjectMeta {
            name: Some(names::vm(&name)),
            namespace,
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: VirtualMachineSpec {
            run_strategy: Some(run_strategy(power).into()),
            template: VmTemplate {
                metadata: Some(TemplateMeta {
                    labels: pod_labels,
                    ..Default::default()
                }),
                spec: VmiSpec {
                    domain: Domain {
                        cpu: Some(Cpu {
                            cores: Some(plan.cores),
                            ..Default::default()
                        }),
                        memory: Some(Memory {
                            guest: Some(Bytes(plan.memory_bytes).to_string()),
                            ..Default::default()
                        }),
                        firmware: Some(Firmware {
                            uuid: Some(id.uuid),
                            ..Default::default()
                        }),
                        devices: Devices {
                            disks,
                            interfaces,
                            autoattach_pod_interface: autoattach,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    hostname: Some(name.clone()),
                    networks,
                    volumes,
                    ..Default::default()
                },
            },
            ..Default::default()
        },
        status: None,
    })
}

/// Partner, client and template labels, where known.
pub fn add_tenancy(labels: &mut BTreeMap<String, String>, plan: &Plan) {
    if let Some(partner) = &plan.partner {
        labels.insert(crate::controllers::labels::PARTNER.into(), partner.clone());
    }
    if let Some(client) = &plan.client {
        labels.insert(crate::controllers::labels::CLIENT.into(), client.clone());
    }
    if let Some(template) = &plan.template {
        labels.insert(
            crate::controllers::labels::TEMPLATE.into(),
            template.clone(),
        );
    }
}
