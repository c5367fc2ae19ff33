//! The golden CDI DataVolume of one version of a template's image: imported
//! over HTTP(S) or restored from a capture's volume snapshot, the size of
//! `spec.diskSize`. New server disks clone its claim (through the
//! DataSource); they never use it directly, so it can be replaced.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use crate::api::ServerTemplate;
use crate::api::quantity::{Bytes, parse_bytes};
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::server_template::plan::{Golden, GoldenContent, Plan};
use crate::kubevirt::DataVolume;
use crate::kubevirt::data_volume::{
    DataVolumeSource, DataVolumeSpec, HttpSource, NamespacedName, Storage, StorageResources,
};

/// Labels of a golden image (DataVolume or DataSource).
pub fn image_labels(template: &ServerTemplate, plan: &Plan) -> BTreeMap<String, String> {
    let name = template.metadata.name.clone().unwrap_or_default();
    let mut labels = labels::template_labels(&name, labels::GOLDEN_IMAGE_ROLE);
    if let Some(generalize) = plan.generalize {
        labels.insert(labels::GENERALIZE.into(), generalize.to_string());
    }
    labels
}

pub fn build(
    template: &ServerTemplate,
    plan: &Plan,
    golden: &Golden,
) -> Result<DataVolume, OwnershipError> {
    let namespace = template.metadata.namespace.clone();
    let spec = match &golden.content {
        GoldenContent::Existing(spec) => (**spec).clone(),
        GoldenContent::Http { url } => DataVolumeSpec {
            source: Some(DataVolumeSource {
                http: Some(HttpSource {
                    url: url.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            storage: Some(storage(template)),
            ..Default::default()
        },
        GoldenContent::VolumeSnapshot { namespace, name } => DataVolumeSpec {
            source: Some(DataVolumeSource {
                snapshot: Some(NamespacedName {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }),
                ..Default::default()
            }),
            storage: Some(storage(template)),
            ..Default::default()
        },
    };
    Ok(DataVolume {
        metadata: ObjectMeta {
            name: Some(golden.name.clone()),
            namespace: namespace.clone(),
            labels: Some(image_labels(template, plan)),
            owner_references: Some(vec![controller_ref(
                template,
                "DataVolume",
                &golden.name,
                namespace.as_deref(),
            )?]),
            ..Default::default()
        },
        spec,
        status: None,
    })
}

fn storage(template: &ServerTemplate) -> Storage {
    // validate refuses a diskSize that does not parse before anything is built.
    let bytes = parse_bytes(&template.spec.disk_size.0).unwrap_or(0);
    Storage {
        resources: Some(StorageResources {
            requests: BTreeMap::from([("storage".to_string(), Bytes(bytes).to_string())]),
        }),
        ..Default::default()
    }
}
