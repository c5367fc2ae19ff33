//! The CDI DataSource a template publishes its golden image under: named
//! like the template (`controllers::names::template_data_source`), in the
//! template's namespace. New server disks clone from it with `sourceRef`,
//! so re-pointing it at a new golden disk republishes the template.

use kube::api::ObjectMeta;

use super::golden::image_labels;
use crate::api::ServerTemplate;
use crate::controllers::names::template_data_source;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::server_template::plan::Plan;
use crate::kubevirt::DataSource;
use crate::kubevirt::data_source::{DataSourceSource, DataSourceSpec};
use crate::kubevirt::data_volume::NamespacedName;

/// The DataSource, while something is published.
pub fn build(template: &ServerTemplate, plan: &Plan) -> Result<Option<DataSource>, OwnershipError> {
    let Some(claim) = &plan.publish else {
        return Ok(None);
    };
    let namespace = template.metadata.namespace.clone();
    let name = template_data_source(template.metadata.name.as_deref().unwrap_or_default());
    Ok(Some(DataSource {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: namespace.clone(),
            labels: Some(image_labels(template, plan)),
            owner_references: Some(vec![controller_ref(
                template,
                "DataSource",
                &name,
                namespace.as_deref(),
            )?]),
            ..Default::default()
        },
        spec: DataSourceSpec {
            source: DataSourceSource {
                pvc: Some(NamespacedName {
                    namespace: namespace.clone().unwrap_or_default(),
                    name: claim.clone(),
                }),
                ..Default::default()
            },
            ..Default::default()
        },
        status: None,
    }))
}
