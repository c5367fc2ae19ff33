//! One CDI DataVolume per disk, plus the installation ISO.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;

use super::names;
use super::virtual_machine::add_tenancy;
use crate::api::VirtualServer;
use crate::api::quantity::Bytes;
use crate::api::virtual_server::DeletionPolicy;
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::virtual_server::plan::{DiskContent, Plan, PlannedDisk};
use crate::kubevirt::DataVolume;
use crate::kubevirt::data_volume::{
    DataVolumeSource, DataVolumeSpec, HttpSource, NamespacedName, SourceRef, Storage,
    StorageResources,
};

/// The DataVolumes whose content is known. With `deletionPolicy: Retain`
/// disks carry no owner reference, so deleting the server leaves them (and
/// their volumes) in place, still labelled with the server's name.
pub fn build_disks(server: &VirtualServer, plan: &Plan) -> Result<Vec<DataVolume>, OwnershipError> {
    let owner = match server.spec.deletion_policy {
        DeletionPolicy::Delete => Some(owner(server, "disk")?),
        DeletionPolicy::Retain => None,
    };
    Ok(plan
        .disks
        .iter()
        .filter_map(|disk| {
            disk.content
                .as_ref()
                .map(|content| build_disk(server, plan, disk, content, owner.clone()))
        })
        .collect())
}

fn owner(server: &VirtualServer, child: &str) -> Result<OwnerReference, OwnershipError> {
    controller_ref(
        server,
        "DataVolume",
        child,
        server.metadata.namespace.as_deref(),
    )
}

fn build_disk(
    server: &VirtualServer,
    plan: &Plan,
    disk: &PlannedDisk,
    content: &DiskContent,
    owner: Option<OwnerReference>,
) -> DataVolume {
    let server_name = server.metadata.name.clone().unwrap_or_default();
    let mut labels = labels::server_labels(
        &server_name,
        if disk.system {
            "system-disk"
        } else {
            "data-disk"
        },
    );
    labels.insert(labels::DISK.into(), disk.spec.name.clone());
    if let Some(uid) = &server.metadata.uid {
        labels.insert(labels::SERVER_UID.into(), uid.clone());
    }
    add_tenancy(&mut labels, plan);
    let spec = match content {
        DiskContent::Existing(spec) => (**spec).clone(),
        other => DataVolumeSpec {
            storage: Some(storage(disk.bytes, disk.spec.storage_class.clone())),
            ..source_fields(other)
        },
    };
    DataVolume {
        metadata: ObjectMeta {
            name: Some(names::disk(&server_name, &disk.spec.name)),
            namespace: server.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// The installation ISO as a DataVolume, while it is attached. It is not
/// client data, so it is always owned by the server.
pub fn build_iso(
    server: &VirtualServer,
    plan: &Plan,
) -> Result<Option<DataVolume>, OwnershipError> {
    let Some(url) = &plan.iso_url else {
        return Ok(None);
    };
    let server_name = server.metadata.name.clone().unwrap_or_default();
    let name = names::iso(&server_name);
    let mut labels = labels::server_labels(&server_name, "iso");
    add_tenancy(&mut labels, plan);
    Ok(Some(DataVolume {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: server.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner(server, &name)?]),
            ..Default::default()
        },
        spec: DataVolumeSpec {
            source: Some(DataVolumeSource {
                http: Some(HttpSource {
                    url: url.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            // ISOs of Windows Server and Linux distributions fit in 16Gi.
            storage: Some(storage(16 << 30, None)),
            ..Default::default()
        },
        status: None,
    }))
}

fn storage(bytes: u64, class: Option<String>) -> Storage {
    Storage {
        resources: Some(StorageResources {
            requests: BTreeMap::from([("storage".to_string(), Bytes(bytes).to_string())]),
        }),
        storage_class_name: class,
        ..Default::default()
    }
}

fn source_fields(content: &DiskContent) -> DataVolumeSpec {
    let source = |s: DataVolumeSource| DataVolumeSpec {
        source: Some(s),
        ..Default::default()
    };
    match content {
        DiskContent::Http { url } => source(DataVolumeSource {
            http: Some(HttpSource {
                url: url.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        DiskContent::Blank => source(DataVolumeSource {
            blank: Some(BTreeMap::new()),
            ..Default::default()
        }),
        DiskContent::VolumeSnapshot { namespace, name } => source(DataVolumeSource {
            snapshot: Some(NamespacedName {
                namespace: namespace.clone(),
                name: name.clone(),
            }),
            ..Default::default()
        }),
        DiskContent::DataSource { namespace, name } => DataVolumeSpec {
            source_ref: Some(SourceRef {
                kind: "DataSource".into(),
                name: name.clone(),
                namespace: Some(namespace.clone()),
            }),
            ..Default::default()
        },
        DiskContent::Existing(spec) => (**spec).clone(),
    }
}
