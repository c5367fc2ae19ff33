//! Apply: server-side apply every built child, keep (Retain) or delete
//! (Delete) the namespaces of clients no longer in the spec, then sweep the
//! owned children this pass no longer wants. Also the finalizer's cleanup.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::build::{BrandingChildren, Children, ClientChildren, namespace};
use super::naming::{ClientNamespace, MANAGED_BY, MANAGED_BY_LABEL, PARTNER_LABEL};
use crate::api::PartnerAccount;
use crate::api::partner_account::PartnerDeletionPolicy;
use crate::controllers::apply::{ApplyError, Key, apply, keys, sweep, sweep_namespaced};
use crate::controllers::labels::SERVER;

/// The partner's own children (not the servers' children, which carry the
/// partner label too but also the server's).
pub fn selector(partner: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{PARTNER_LABEL}={partner},!{SERVER}")
}

/// Applies `children` and removes what the spec no longer wants.
/// `labelled` are the namespaces labelled with this partner, as fetched.
pub async fn apply_children(
    client: &Client,
    partner: &PartnerAccount,
    children: Children,
    labelled: &[Namespace],
) -> Result<(), ApplyError> {
    let name = partner.name_any();
    let uid = partner.uid().unwrap_or_default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // No `..`: a new child kind must be applied (and swept) here.
    let Children { clients, branding } = children;

    let mut wanted = Vec::new();
    let mut quotas = Vec::new();
    let mut bindings = Vec::new();
    let mut policies = Vec::new();
    for ClientChildren {
        client: client_name,
        namespace,
        resource_quota,
        role_binding,
        network_policy,
    } in clients
    {
        // The namespace first: everything else lives in it.
        apply(&namespaces, &namespace).await?;
        let ns = namespace.name_any();
        if let Some(quota) = &resource_quota {
            apply(&Api::namespaced(client.clone(), &ns), quota).await?;
        }
        apply(&Api::namespaced(client.clone(), &ns), &role_binding).await?;
        apply(&Api::namespaced(client.clone(), &ns), &network_policy).await?;
        wanted.push(ClientNamespace {
            client: client_name,
            namespace: ns,
        });
        quotas.extend(resource_quota);
        bindings.push(role_binding);
        policies.push(network_policy);
    }
    let mut config_maps = Vec::new();
    let mut own_namespace = None;
    if let Some(BrandingChildren {
        namespace,
        config_map,
    }) = branding
    {
        apply(&namespaces, &namespace).await?;
        apply(
            &Api::namespaced(client.clone(), &namespace.name_any()),
            &config_map,
        )
        .await?;
        own_namespace = Some(namespace.name_any());
        config_maps.push(config_map);
    }

    // Namespaces of removed clients: kept and labelled orphaned, or — owned
    // only under Delete — deleted by the sweep.
    let selector = selector(&name);
    match partner.spec.deletion_policy {
        PartnerDeletionPolicy::Retain => {
            orphan(client, &name, &wanted, labelled).await?;
        }
        PartnerDeletionPolicy::Delete => {
            let keep: BTreeSet<String> = wanted
                .iter()
                .map(|w| w.namespace.clone())
                .chain(own_namespace)
                .collect();
            sweep(&namespaces, &selector, &uid, &keep).await?;
        }
    }
    // The partner's grip on a removed client's namespace goes with it: its
    // admins' binding and its quota (both always owned). The isolation
    // policy of a kept namespace is not owned and stays.
    sweep_namespaced::<ResourceQuota>(client, &selector, &uid, &keys(&quotas)).await?;
    sweep_namespaced::<RoleBinding>(client, &selector, &uid, &keys(&bindings)).await?;
    sweep_namespaced::<NetworkPolicy>(client, &selector, &uid, &keys(&policies)).await?;
    sweep_namespaced::<ConfigMap>(client, &selector, &uid, &keys(&config_maps)).await?;
    Ok(())
}

/// Labels the namespaces of this partner's clients that are not `wanted`
/// orphaned (and drops any owner reference our field manager set). Skips a
/// namespace that is already being deleted, so that applying never creates
/// one again. Returns the namespaces labelled.
pub async fn orphan(
    client: &Client,
    partner: &str,
    wanted: &[ClientNamespace],
    labelled: &[Namespace],
) -> Result<Vec<String>, ApplyError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let terminating: BTreeSet<String> = labelled
        .iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_some())
        .map(ResourceExt::name_any)
        .collect();
    let mut done = Vec::new();
    for ns in namespace::to_orphan(partner, wanted, labelled) {
        let name = ns.name_any();
        if terminating.contains(&name) {
            continue;
        }
        apply(&namespaces, &ns).await?;
        tracing::info!(partner, namespace = %name, "client namespace kept and labelled orphaned");
        done.push(name);
    }
    Ok(done)
}

/// The finalizer's cleanup, before the account goes. Idempotent; anything
/// already gone counts as done; reads nothing of the spec but the name, the
/// uid and the deletion policy, so an account that no longer builds is still
/// released.
///
/// - `Retain`: every client namespace is labelled orphaned and loses the
///   admins' binding at once (garbage collection would remove it too, a
///   little later); everything else in it stays.
/// - `Delete`: the namespaces the account owns are deleted (garbage
///   collection would do the same once the account is gone).
pub async fn cleanup(client: &Client, partner: &PartnerAccount) -> Result<(), ApplyError> {
    let name = partner.name_any();
    let uid = partner.uid().unwrap_or_default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let selector = selector(&name);
    match partner.spec.deletion_policy {
        PartnerDeletionPolicy::Retain => {
            let labelled = namespaces
                .list(&ListParams::default().labels(&format!("{PARTNER_LABEL}={name}")))
                .await
                .map_err(|source| ApplyError::List {
                    kind: "Namespace".into(),
                    source,
                })?
                .items;
            orphan(client, &name, &[], &labelled).await?;
            let bindings: BTreeSet<Key> = BTreeSet::new();
            let revoked =
                sweep_namespaced::<RoleBinding>(client, &selector, &uid, &bindings).await?;
            tracing::info!(partner = %name, bindings = revoked.len(), "partner released its client namespaces");
        }
        PartnerDeletionPolicy::Delete => {
            let deleted = sweep(&namespaces, &selector, &uid, &BTreeSet::new()).await?;
            tracing::info!(partner = %name, namespaces = ?deleted, "partner's namespaces deleted");
        }
    }
    Ok(())
}
