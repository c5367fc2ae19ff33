//! Fetch: the server's namespace, what its source references, and its
//! children as they are now. Reads only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::build::names;
use crate::api::{PartnerAccount, ServerTemplate, VirtualServer};
use crate::controllers::labels;
use crate::kubevirt::{
    DataVolume, VirtualMachine, VirtualMachineInstance, VirtualMachineSnapshot,
    VirtualMachineSnapshotContent,
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

/// Everything the plan and the status are computed from.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub namespace_labels: BTreeMap<String, String>,
    /// The PartnerAccount the namespace's partner label names, if it exists.
    pub partner: Option<PartnerAccount>,
    /// For `source.template`: the template, if it exists.
    pub template: Option<ServerTemplate>,
    /// For `source.clone`: the server being copied, if it exists.
    pub clone_source: Option<VirtualServer>,
    /// The snapshot disks are restored from: the hot copy's own, or the
    /// backup named in `source.backup`.
    pub snapshot: Option<VirtualMachineSnapshot>,
    pub snapshot_content: Option<VirtualMachineSnapshotContent>,
    pub vm: Option<VirtualMachine>,
    pub vmi: Option<VirtualMachineInstance>,
    /// DataVolumes labelled with this server (disks and ISO).
    pub data_volumes: Vec<DataVolume>,
    pub services: Vec<Service>,
    pub network_policies: Vec<NetworkPolicy>,
}

impl Observed {
    pub fn data_volume(&self, name: &str) -> Option<&DataVolume> {
        self.data_volumes.iter().find(|d| d.name_any() == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name_any() == name)
    }
}

pub async fn observe(client: &Client, server: &VirtualServer) -> Result<Observed, FetchError> {
    let ns = server.namespace().unwrap_or_default();
    let name = server.name_any();
    let selector = labels::server_selector(&name);
    let namespace = Api::<Namespace>::all(client.clone())
        .get_opt(&ns)
        .await
        .map_err(read(format!("namespace {ns}")))?;

    let namespace_labels = namespace.map(|n| n.labels().clone()).unwrap_or_default();
    let partner = match namespace_labels.get(labels::PARTNER) {
        Some(p) => Api::<PartnerAccount>::all(client.clone())
            .get_opt(p)
            .await
            .map_err(read(format!("partner account {p}")))?,
        None => None,
    };

    let source = &server.spec.source;
    let template = match &source.template {
        Some(t) => {
            let tns = t.namespace.clone().unwrap_or_else(|| ns.clone());
            Api::<ServerTemplate>::namespaced(client.clone(), &tns)
                .get_opt(&t.name)
                .await
                .map_err(read(format!("template {tns}/{}", t.name)))?
        }
        None => None,
    };
    let clone_source = match &source.clone {
        Some(c) => Api::<VirtualServer>::namespaced(client.clone(), &ns)
            .get_opt(&c.server)
            .await
            .map_err(read(format!("server {}", c.server)))?,
        None => None,
    };
    let snapshot_name = match (&source.clone, &source.backup) {
        (Some(_), _) => Some(names::clone_snapshot(&name)),
        (_, Some(b)) => Some(b.snapshot.clone()),
        _ => None,
    };
    let snapshots = Api::<VirtualMachineSnapshot>::namespaced(client.clone(), &ns);
    let snapshot = match &snapshot_name {
        Some(s) => snapshots
            .get_opt(s)
            .await
            .map_err(read(format!("snapshot {s}")))?,
        None => None,
    };
    let content_name = snapshot
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.virtual_machine_snapshot_content_name.clone());
    let snapshot_content = match content_name {
        Some(c) => Api::<VirtualMachineSnapshotContent>::namespaced(client.clone(), &ns)
            .get_opt(&c)
            .await
            .map_err(read(format!("snapshot content {c}")))?,
        None => None,
    };

    let vm = Api::<VirtualMachine>::namespaced(client.clone(), &ns)
        .get_opt(&names::vm(&name))
        .await
        .map_err(read("virtual machine"))?;
    let vmi = Api::<VirtualMachineInstance>::namespaced(client.clone(), &ns)
        .get_opt(&names::vm(&name))
        .await
        .map_err(read("virtual machine instance"))?;
    let by_label = ListParams::default().labels(&selector);
    let data_volumes = Api::<DataVolume>::namespaced(client.clone(), &ns)
        .list(&by_label)
        .await
        .map_err(read("data volumes"))?
        .items;
    let services = Api::<Service>::namespaced(client.clone(), &ns)
        .list(&by_label)
        .await
        .map_err(read("services"))?
        .items;
    let network_policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
        .list(&by_label)
        .await
        .map_err(read("network policies"))?
        .items;

    Ok(Observed {
        namespace_labels,
        partner,
        template,
        clone_source,
        snapshot,
        snapshot_content,
        vm,
        vmi,
        data_volumes,
        services,
        network_policies,
    })
}
