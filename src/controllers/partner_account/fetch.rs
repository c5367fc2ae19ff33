//! Fetch: what exists of the namespaces a partner's clients (and its brand)
//! need, and the admissions of the servers in them. Reads only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::naming::{self, ClientNamespace};
use super::servers::{self, CountedServer};
use crate::api::PartnerAccount;
use crate::api::partner_account::Program;

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

/// Everything validation, the orphan step and the status are computed from.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Namespaces labelled with this partner: its client namespaces (kept
    /// ones too) and its own.
    pub labelled: Vec<Namespace>,
    /// The labels of every namespace the partner wants that exists, by name
    /// (labelled for this partner or not).
    pub existing: BTreeMap<String, BTreeMap<String, String>>,
    /// The servers in the client namespaces that really are this partner's.
    pub servers: Vec<CountedServer>,
}

/// Every client's namespace, as far as it can be named (a client whose
/// namespace cannot be named is reported by the build).
pub fn targets(partner: &PartnerAccount) -> Vec<ClientNamespace> {
    let name = partner.name_any();
    partner
        .spec
        .clients
        .iter()
        .filter_map(|c| {
            naming::client_namespace(&name, c)
                .ok()
                .map(|namespace| ClientNamespace {
                    client: c.name.clone(),
                    namespace,
                })
        })
        .collect()
}

/// The partner's own namespace, for white label.
pub fn partner_namespace(partner: &PartnerAccount) -> Option<String> {
    match partner.spec.program {
        Program::WhiteLabel => naming::partner_namespace(&partner.name_any()).ok(),
        Program::Consolidated | Program::Referral => None,
    }
}

pub async fn observe(client: &Client, partner: &PartnerAccount) -> Result<Observed, FetchError> {
    let name = partner.name_any();
    let labelled = servers::labelled_namespaces(client, &name)
        .await
        .map_err(read(format!("namespaces of partner {name}")))?;
    let mut existing: BTreeMap<String, BTreeMap<String, String>> = labelled
        .iter()
        .map(|ns| (ns.name_any(), ns.labels().clone()))
        .collect();
    let targets = targets(partner);
    let wanted = targets
        .iter()
        .map(|t| t.namespace.clone())
        .chain(partner_namespace(partner));
    let namespaces = Api::<Namespace>::all(client.clone());
    for ns in wanted {
        if existing.contains_key(&ns) {
            continue;
        }
        if let Some(found) = namespaces
            .get_opt(&ns)
            .await
            .map_err(read(format!("namespace {ns}")))?
        {
            existing.insert(ns, found.labels().clone());
        }
    }
    let counted = servers::counted_namespaces(&name, &targets, &labelled);
    let servers = servers::list(client, &counted)
        .await
        .map_err(read("virtual servers of the client namespaces"))?;
    Ok(Observed {
        labelled,
        existing,
        servers,
    })
}
