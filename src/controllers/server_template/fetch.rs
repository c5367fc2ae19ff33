//! Fetch: the template's children as they are now, the server a capture is
//! taken from, and the namespaces its sharing selector matches. Reads only.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::core::Selector;
use kube::{Client, ResourceExt};

use super::build::names;
use crate::api::server_template::SharingScope;
use crate::api::{ServerTemplate, VirtualServer};
use crate::controllers::labels;
use crate::controllers::names::template_data_source;
use crate::kubevirt::{
    DataSource, DataVolume, VirtualMachineSnapshot, VirtualMachineSnapshotContent,
};

/// Why reading the cluster failed.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {source}")]
pub struct FetchError {
    what: String,
    #[source]
    source: kube::Error,
}

fn read(what: impl Into<String>) -> impl FnOnce(kube::Error) -> FetchError {
    let what = what.into();
    move |source| FetchError { what, source }
}

/// Everything the plan is computed from, besides the template itself.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Golden DataVolumes of this template (every version still present).
    pub golden: Vec<DataVolume>,
    /// The DataSource the template publishes under.
    pub data_source: Option<DataSource>,
    /// For `source.server`: the capture snapshot of the current version.
    pub capture: Option<VirtualMachineSnapshot>,
    pub capture_content: Option<VirtualMachineSnapshotContent>,
    /// For `source.server` in the template's namespace: the server.
    pub source_server: Option<VirtualServer>,
    /// For sharing scope `Selector`: the namespaces it matches, sorted.
    pub selected_namespaces: Vec<String>,
}

impl Observed {
    pub fn golden_volume(&self, name: &str) -> Option<&DataVolume> {
        self.golden.iter().find(|d| d.name_any() == name)
    }
}

pub async fn observe(client: &Client, template: &ServerTemplate) -> Result<Observed, FetchError> {
    let ns = template.namespace().unwrap_or_default();
    let name = template.name_any();
    let by_label = ListParams::default().labels(&labels::template_selector(&name));
    let golden = Api::<DataVolume>::namespaced(client.clone(), &ns)
        .list(&by_label)
        .await
        .map_err(read("golden data volumes"))?
        .items
        .into_iter()
        .filter(|d| {
            d.labels().get(labels::ROLE).map(String::as_str) == Some(labels::GOLDEN_IMAGE_ROLE)
        })
        .collect();
    let data_source = Api::<DataSource>::namespaced(client.clone(), &ns)
        .get_opt(&template_data_source(&name))
        .await
        .map_err(read("data source"))?;

    let mut observed = Observed {
        golden,
        data_source,
        ..Default::default()
    };

    // A capture only ever reads the template's own namespace (see validate).
    if let Some(server) = &template.spec.source.server
        && server.namespace.as_deref().is_none_or(|n| n == ns)
    {
        let version = names::version(&template.spec.source, &ns);
        let snapshots = Api::<VirtualMachineSnapshot>::namespaced(client.clone(), &ns);
        let capture_name = names::capture(&name, &version);
        observed.capture = snapshots
            .get_opt(&capture_name)
            .await
            .map_err(read(format!("snapshot {capture_name}")))?;
        let content_name = observed
            .capture
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.virtual_machine_snapshot_content_name.clone());
        if let Some(content) = content_name {
            observed.capture_content =
                Api::<VirtualMachineSnapshotContent>::namespaced(client.clone(), &ns)
                    .get_opt(&content)
                    .await
                    .map_err(read(format!("snapshot content {content}")))?;
        }
        observed.source_server = Api::<VirtualServer>::namespaced(client.clone(), &ns)
            .get_opt(&server.name)
            .await
            .map_err(read(format!("server {}", server.name)))?;
    }

    let sharing = &template.spec.sharing;
    if sharing.scope == SharingScope::Selector {
        // An unusable selector matches nothing: nothing is granted.
        if let Some(selector) = sharing
            .namespace_selector
            .clone()
            .and_then(|s| Selector::try_from(s).ok())
        {
            let mut names: Vec<String> = Api::<Namespace>::all(client.clone())
                .list(&ListParams::default().labels_from(&selector))
                .await
                .map_err(read("namespaces"))?
                .items
                .iter()
                .map(|n| n.name_any())
                .collect();
            names.sort();
            observed.selected_namespaces = names;
        }
    }
    Ok(observed)
}
