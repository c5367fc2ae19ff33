//! Validate what admission could not: references to other objects and
//! their state. Produces the [`Plan`] the builders work from, or the reason
//! the server is [`Blocked`].

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use super::build::names;
use super::fetch::Observed;
use super::plan::{Blocked, CloneSnapshot, DiskContent, Plan, PlannedDisk, reason};
use crate::api::conditions;
use crate::api::quantity::{Bytes, parse_bytes};
use crate::api::server_template::SharingScope;
use crate::api::virtual_server::ServerPhase;
use crate::api::{ServerTemplate, VirtualServer};
use crate::controllers::labels;
use crate::controllers::mirror::{ImageMirror, rewrite};
use crate::kubevirt::VirtualMachineSnapshotContent;

/// A disk labelled with another server's UID was kept (`deletionPolicy:
/// Retain`) from an earlier server of the same name. Adopting it would
/// give this server the old disk — its old source and size — and delete it
/// with this server: the opposite of what Retain promised.
fn kept_from_an_earlier_server(server: &VirtualServer, observed: &Observed) -> Result<(), Blocked> {
    let Some(uid) = server.uid() else {
        return Ok(());
    };
    let kept = observed.data_volumes.iter().find(|dv| {
        dv.labels()
            .get(labels::SERVER_UID)
            .is_some_and(|created_by| *created_by != uid)
    });
    match kept {
        None => Ok(()),
        Some(dv) => Err(Blocked::new(
            reason::NAME_CONFLICT,
            format!(
                "DataVolume {} is a disk kept from an earlier server named {} (deletionPolicy Retain) and is never taken over; copy what you need from it and delete it to reuse the name, or give this server another name",
                dv.name_any(),
                server.name_any()
            ),
        )),
    }
}

pub fn plan(
    server: &VirtualServer,
    observed: &Observed,
    mirrors: &[ImageMirror],
) -> Result<Plan, Blocked> {
    let name = server.name_any();
    let ns = server.namespace().unwrap_or_default();
    let source = &server.spec.source;
    kept_from_an_earlier_server(server, observed)?;

    // A disk that exists keeps the source it was created with, so a
    // deployed server never depends on its template, clone source or backup
    // again.
    let existing = |disk: &str| {
        observed
            .data_volume(&names::disk(&name, disk))
            .map(|dv| DiskContent::Existing(Box::new(dv.spec.clone())))
    };
    // Deployed = the system disk exists. From then on the server needs
    // its source no more: a data disk added later starts blank.
    let deployed = server
        .spec
        .disks
        .first()
        .is_some_and(|d| existing(&d.name).is_some());

    // Once deployed, a server no longer needs its template: a template
    // that went away (or stopped being shared) blocks only new disks.
    let template = match &source.template {
        Some(reference) => match usable_template(
            server,
            observed,
            reference.namespace.as_deref().unwrap_or(&ns),
            &reference.name,
        ) {
            Ok(t) => Some(t),
            Err(blocked) if !deployed => return Err(blocked),
            Err(_) => None,
        },
        None => None,
    };

    let (cores, memory_bytes) = size(server, template, observed)?;
    if let Some(t) = template {
        check_minimums(t, cores, memory_bytes, server)?;
    }

    let snapshot_volumes = restore_volumes(server, observed, deployed)?;
    let mut disks = Vec::new();
    for (index, disk) in server.spec.disks.iter().enumerate() {
        let bytes = parse_bytes(&disk.size.0).map_err(|e| {
            Blocked::new(
                reason::INVALID_SPEC,
                format!("spec.disks[{index}].size: {e}"),
            )
        })?;
        let system = index == 0;
        let content = match existing(&disk.name) {
            Some(DiskContent::Existing(spec))
                if created_bytes(&spec).is_some_and(|held| held != bytes) =>
            {
                // Only a detached disk put back into the spec at another
                // size gets here (admission refuses resizing one in place).
                let held = created_bytes(&spec).unwrap_or(0);
                return Err(Blocked::new(
                    if held < bytes {
                        reason::DISK_CANNOT_GROW
                    } else {
                        reason::DISK_CANNOT_SHRINK
                    },
                    format!(
                        "disk {} exists with {}; spec.disks[{index}].size asks for {}: an existing disk keeps the size it was created with (put its size back, or add a data disk under another name)",
                        disk.name,
                        Bytes(held),
                        Bytes(bytes)
                    ),
                ));
            }
            Some(existing) => Some(existing),
            None if system => {
                system_content(server, template, snapshot_volumes.as_ref(), &ns, mirrors)
            }
            None if deployed => Some(DiskContent::Blank),
            None => match &snapshot_volumes {
                Some(Restore::Ready(content)) => {
                    Some(volume_for(content, &disk.name, None, &ns).unwrap_or(DiskContent::Blank))
                }
                Some(Restore::Waiting) => None,
                None => Some(DiskContent::Blank),
            },
        };
        disks.push(PlannedDisk {
            spec: disk.clone(),
            bytes,
            system,
            content,
        });
    }

    if let Some(Restore::Ready(content)) = &snapshot_volumes {
        check_every_volume_restored(content, &disks)?;
        check_restore_sizes(content, &disks)?;
    }
    let needs_snapshot = source.clone.is_some() && !restored(&name, &disks, observed);
    let clone_snapshot = match &source.clone {
        Some(c) if needs_snapshot => Some(CloneSnapshot {
            source_vm: names::vm(&c.server),
        }),
        _ => None,
    };

    let detached_bytes = detached(server, &disks, observed);
    Ok(Plan {
        cores,
        memory_bytes,
        disks,
        iso_url: source
            .iso
            .as_ref()
            .filter(|iso| !iso.eject)
            .map(|iso| rewrite(mirrors, &iso.url)),
        clone_snapshot,
        template: source.template.as_ref().map(|t| t.name.clone()),
        partner: observed.namespace_labels.get(labels::PARTNER).cloned(),
        client: observed.namespace_labels.get(labels::CLIENT).cloned(),
        detached_bytes,
    })
}

/// The size a DataVolume was created with.
fn created_bytes(spec: &crate::kubevirt::data_volume::DataVolumeSpec) -> Option<u64> {
    spec.storage
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage"))
        .and_then(|q| parse_bytes(q).ok())
}

/// Bytes the server's detached disks hold (see [`Plan::detached_bytes`]):
/// its existing disks that `disks` no longer names. (A disk it does name
/// has the size the spec says, or the plan is blocked.) A disk whose size
/// cannot be read counts as nothing.
fn detached(server: &VirtualServer, disks: &[PlannedDisk], observed: &Observed) -> u64 {
    let name = server.name_any();
    observed
        .data_volumes
        .iter()
        .filter(|dv| {
            matches!(
                dv.labels().get(labels::ROLE).map(String::as_str),
                Some("system-disk" | "data-disk")
            )
        })
        .filter(|dv| {
            !disks
                .iter()
                .any(|d| names::disk(&name, &d.spec.name) == dv.name_any())
        })
        .map(|dv| created_bytes(&dv.spec).unwrap_or(0))
        .fold(0u64, u64::saturating_add)
}

/// A copy or restore must bring back every volume of the snapshot: a
/// volume no disk restores (a 1C server's `infobases`, restored onto a
/// server whose data disk has another name) would be silently missing.
fn check_every_volume_restored(
    content: &VirtualMachineSnapshotContent,
    disks: &[PlannedDisk],
) -> Result<(), Blocked> {
    let restored: Vec<&str> = disks
        .iter()
        .filter_map(|d| match &d.content {
            Some(DiskContent::VolumeSnapshot { name, .. }) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let missing: Vec<&str> = content
        .spec
        .volume_backups
        .iter()
        .filter(|b| {
            b.volume_snapshot_name
                .as_deref()
                .is_some_and(|n| !restored.contains(&n))
        })
        .map(|b| b.volume_name.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Blocked::new(
        reason::VOLUMES_NOT_RESTORED,
        format!(
            "the snapshot holds volume(s) {} that no disk of this server restores: add a disk of each name to spec.disks (at least as large as the volume), or its data would be missing from the copy",
            missing.join(", ")
        ),
    ))
}

/// A disk restored from a snapshot must hold the volume it restores.
fn check_restore_sizes(
    content: &VirtualMachineSnapshotContent,
    disks: &[PlannedDisk],
) -> Result<(), Blocked> {
    for disk in disks {
        let Some(DiskContent::VolumeSnapshot { name, .. }) = &disk.content else {
            continue;
        };
        let needed = content
            .spec
            .volume_backups
            .iter()
            .find(|b| b.volume_snapshot_name.as_deref() == Some(name.as_str()))
            .and_then(|b| b.restore_size())
            .and_then(|size| parse_bytes(&size).ok());
        if let Some(needed) = needed.filter(|needed| *needed > disk.bytes) {
            return Err(Blocked::new(
                reason::DISK_SMALLER_THAN_SOURCE,
                format!(
                    "spec.disks {} is {} but the volume it is restored from holds {}; make it at least that large",
                    disk.spec.name,
                    Bytes(disk.bytes),
                    Bytes(needed)
                ),
            ));
        }
    }
    Ok(())
}

/// Whether every disk restored from the hot copy's snapshot (or still
/// waiting for it) has finished; until then the snapshot is kept.
fn restored(server: &str, disks: &[PlannedDisk], observed: &Observed) -> bool {
    disks
        .iter()
        .filter(|d| match &d.content {
            None | Some(DiskContent::VolumeSnapshot { .. }) => true,
            Some(DiskContent::Existing(spec)) => {
                spec.source.as_ref().is_some_and(|s| s.snapshot.is_some())
            }
            Some(_) => false,
        })
        .all(|d| {
            observed
                .data_volume(&names::disk(server, &d.spec.name))
                .and_then(|dv| dv.status.as_ref())
                .is_some_and(|s| s.phase.as_deref() == Some("Succeeded"))
        })
}

fn usable_template<'a>(
    server: &VirtualServer,
    observed: &'a Observed,
    template_ns: &str,
    template_name: &str,
) -> Result<&'a ServerTemplate, Blocked> {
    let Some(template) = observed.template.as_ref() else {
        return Err(Blocked::new(
            reason::TEMPLATE_NOT_FOUND,
            format!("ServerTemplate {template_ns}/{template_name} does not exist"),
        ));
    };
    let server_ns = server.namespace().unwrap_or_default();
    let shared = template_ns == server_ns
        || match template.spec.sharing.scope {
            SharingScope::Namespace => false,
            SharingScope::All => true,
            SharingScope::Selector => template
                .spec
                .sharing
                .namespace_selector
                .clone()
                .and_then(|s| Selector::try_from(s).ok())
                .is_some_and(|s| s.matches(&observed.namespace_labels)),
        };
    if !shared {
        return Err(Blocked::new(
            reason::TEMPLATE_NOT_SHARED,
            format!(
                "ServerTemplate {template_ns}/{template_name} is not shared with namespace {server_ns} (see its spec.sharing)"
            ),
        ));
    }
    let ready = template
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, conditions::READY));
    if !ready {
        let why = template
            .status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, conditions::READY))
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_else(|| "not reconciled yet".into());
        return Err(Blocked::new(
            reason::TEMPLATE_NOT_READY,
            format!("ServerTemplate {template_ns}/{template_name} is not ready ({why})"),
        ));
    }
    Ok(template)
}

/// Effective cores and memory: the spec's, else the template's defaults,
/// else what the running VM already has (a template deleted after deploy).
fn size(
    server: &VirtualServer,
    template: Option<&ServerTemplate>,
    observed: &Observed,
) -> Result<(u32, u64), Blocked> {
    let defaults = template
        .and_then(|t| t.spec.defaults.clone())
        .unwrap_or_default();
    let vm_domain = observed.vm.as_ref().map(|vm| &vm.spec.template.spec.domain);
    // A deployed server keeps the size it was built with when its spec
    // leaves it to the template: editing a template's defaults must not
    // resize (or un-admit) servers already running from it.
    let cores = server
        .spec
        .cores
        .or_else(|| vm_domain.and_then(|d| d.cpu.as_ref()).and_then(|c| c.cores))
        .or(defaults.cores)
        .ok_or_else(|| {
            Blocked::new(
                reason::INVALID_SPEC,
                "spec.cores is not set and the template has no defaults.cores",
            )
        })?;
    let memory_text = server
        .spec
        .memory
        .as_ref()
        .map(|m| m.0.clone())
        .or_else(|| {
            vm_domain
                .and_then(|d| d.memory.as_ref())
                .and_then(|m| m.guest.clone())
        })
        .or(defaults.memory.map(|m| m.0))
        .ok_or_else(|| {
            Blocked::new(
                reason::INVALID_SPEC,
                "spec.memory is not set and the template has no defaults.memory",
            )
        })?;
    let memory = parse_bytes(&memory_text)
        .map_err(|e| Blocked::new(reason::INVALID_SPEC, format!("memory: {e}")))?;
    Ok((cores, memory))
}

fn check_minimums(
    template: &ServerTemplate,
    cores: u32,
    memory: u64,
    server: &VirtualServer,
) -> Result<(), Blocked> {
    let name = template.name_any();
    let below = |what: String| {
        Err(Blocked::new(
            reason::BELOW_TEMPLATE_MINIMUM,
            format!("{what} (template {name})"),
        ))
    };
    if let Some(min) = template.spec.minimums.as_ref() {
        if let Some(min_cores) = min.cores.filter(|m| cores < *m) {
            return below(format!("cores {cores} is below the minimum {min_cores}"));
        }
        if let Some(min_memory) = min
            .memory
            .as_ref()
            .and_then(|m| parse_bytes(&m.0).ok())
            .filter(|m| memory < *m)
        {
            return below(format!(
                "memory {} is below the minimum {}",
                Bytes(memory),
                Bytes(min_memory)
            ));
        }
    }
    let golden = parse_bytes(&template.spec.disk_size.0).unwrap_or(0);
    let system = server
        .spec
        .disks
        .first()
        .and_then(|d| parse_bytes(&d.size.0).ok())
        .unwrap_or(0);
    if system < golden {
        return below(format!(
            "system disk {} is smaller than the template's disk {}",
            Bytes(system),
            Bytes(golden)
        ));
    }
    Ok(())
}

/// The state of the snapshot disks are restored from.
enum Restore {
    Ready(Box<VirtualMachineSnapshotContent>),
    Waiting,
}

fn restore_volumes(
    server: &VirtualServer,
    observed: &Observed,
    deployed: bool,
) -> Result<Option<Restore>, Blocked> {
    let source = &server.spec.source;
    if deployed || (source.clone.is_none() && source.backup.is_none()) {
        return Ok(None);
    }
    if let Some(c) = &source.clone
        && observed.clone_source.is_none()
    {
        return Err(Blocked::new(
            reason::CLONE_SOURCE_NOT_FOUND,
            format!(
                "VirtualServer {} to copy does not exist in this namespace",
                c.server
            ),
        ));
    }
    if let Some(source_server) = &observed.clone_source {
        let phase = source_server.status.as_ref().and_then(|s| s.phase);
        let copyable = matches!(phase, Some(ServerPhase::Running | ServerPhase::Stopped));
        if !copyable && observed.snapshot.is_none() {
            return Err(Blocked::new(
                reason::CLONE_SOURCE_NOT_READY,
                format!(
                    "VirtualServer {} is {}; a copy is taken once it runs (or is stopped)",
                    source_server.name_any(),
                    phase
                        .map(|p| format!("{p:?}"))
                        .unwrap_or_else(|| "not built yet".into())
                ),
            ));
        }
    }
    let Some(snapshot) = observed.snapshot.as_ref() else {
        return match &source.backup {
            Some(b) => Err(Blocked::new(
                reason::BACKUP_NOT_FOUND,
                format!(
                    "backup snapshot {} does not exist in this namespace",
                    b.snapshot
                ),
            )),
            None => Ok(Some(Restore::Waiting)),
        };
    };
    let status = snapshot.status.clone().unwrap_or_default();
    if status.phase.as_deref() == Some("Failed") {
        let message = status
            .error
            .and_then(|e| e.message)
            .unwrap_or_else(|| "snapshot failed".into());
        return Err(Blocked::new(
            reason::SNAPSHOT_FAILED,
            format!("snapshot {}: {message}", snapshot.name_any()),
        ));
    }
    match (&observed.snapshot_content, status.ready_to_use) {
        (Some(content), Some(true)) => Ok(Some(Restore::Ready(Box::new(content.clone())))),
        _ => Ok(Some(Restore::Waiting)),
    }
}

/// The volume of the snapshot a disk is restored from: the one with the
/// disk's name, else (for the system disk) the snapshot's first volume.
fn volume_for(
    content: &VirtualMachineSnapshotContent,
    disk: &str,
    fallback_first: Option<()>,
    ns: &str,
) -> Option<DiskContent> {
    let backups = &content.spec.volume_backups;
    let chosen = backups
        .iter()
        .find(|b| b.volume_name == disk)
        .or_else(|| fallback_first.and_then(|_| backups.first()))?;
    chosen
        .volume_snapshot_name
        .clone()
        .map(|name| DiskContent::VolumeSnapshot {
            namespace: ns.to_string(),
            name,
        })
}

fn system_content(
    server: &VirtualServer,
    template: Option<&ServerTemplate>,
    restore: Option<&Restore>,
    ns: &str,
    mirrors: &[ImageMirror],
) -> Option<DiskContent> {
    let source = &server.spec.source;
    if let Some(image) = &source.image {
        return Some(DiskContent::Http {
            url: rewrite(mirrors, &image.url),
        });
    }
    if source.blank.is_some() || source.iso.is_some() {
        return Some(DiskContent::Blank);
    }
    if let (Some(t), Some(reference)) = (template, &source.template) {
        let namespace = reference
            .namespace
            .clone()
            .unwrap_or_else(|| ns.to_string());
        return Some(DiskContent::DataSource {
            namespace,
            name: crate::controllers::names::template_data_source(&t.name_any()),
        });
    }
    match restore {
        Some(Restore::Ready(content)) => {
            let system = server
                .spec
                .disks
                .first()
                .map(|d| d.name.as_str())
                .unwrap_or_default();
            volume_for(content, system, Some(()), ns)
        }
        _ => None,
    }
}
