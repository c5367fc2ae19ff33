//! The desired children of a PartnerAccount, as pure functions of its spec.
//!
//! One file per child kind. Ownership follows one rule: a `Namespace` we
//! create follows `spec.deletionPolicy` (owned by the PartnerAccount only
//! with `Delete`, so that by default garbage collection never takes a
//! client's data with the account); the objects inside that carry the
//! partner's grip on the namespace (its quota, its admins' binding, its
//! branding) are always owned and go with the account. The default
//! NetworkPolicy is the exception that follows the namespace — see
//! [`network_policy`] for why.

pub mod branding;
pub mod namespace;
pub mod network_policy;
pub mod resource_quota;
pub mod role_binding;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use super::naming::{self, NamingError};
use super::quota::{Limits, QuotaError};
use crate::api::PartnerAccount;
use crate::api::partner_account::{PartnerDeletionPolicy, Program};

/// Why the children could not be built. Variant names are stable: they
/// become event reasons.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the PartnerAccount has no {0} (it was not read from the API server)")]
    MissingMetadata(&'static str),
    #[error(transparent)]
    Naming(#[from] NamingError),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error("program WhiteLabel needs spec.branding")]
    MissingBranding,
}

/// What the cluster's network looks like, as far as the default
/// NetworkPolicy needs to know. Operator configuration, not spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterNetwork {
    /// The cluster's pod CIDRs. When given, they are cut out of the
    /// "anywhere outside the cluster" egress rule, so that CNIs which match
    /// `ipBlock` against pod addresses too (Calico does) cannot reopen the
    /// path to other clients' pods through it.
    pub pod_cidrs: Vec<String>,
}

/// Everything built for one partner. The apply step destructures this (and
/// [`ClientChildren`], [`BrandingChildren`]) without `..`, so a child that
/// is built but not applied does not compile.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    /// One entry per `spec.clients[]`, in spec order.
    pub clients: Vec<ClientChildren>,
    /// The partner namespace and branding ConfigMap, for white label only.
    pub branding: Option<BrandingChildren>,
}

/// The children in and around one client's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientChildren {
    /// The client's key in `spec.clients`.
    pub client: String,
    pub namespace: Namespace,
    /// `None` when neither the client nor the pool limits anything the
    /// ResourceQuota can count; a stale one is then removed by the sweep.
    pub resource_quota: Option<ResourceQuota>,
    pub role_binding: RoleBinding,
    pub network_policy: NetworkPolicy,
}

/// A white-label partner's own namespace and its branding.
#[derive(Debug, Clone, PartialEq)]
pub struct BrandingChildren {
    pub namespace: Namespace,
    pub config_map: ConfigMap,
}

/// The owner reference every owned child carries: the PartnerAccount as
/// controller, blocking its foreground deletion until the child is gone.
/// A cluster-scoped owner may own namespaced children.
///
/// Fails only for an object not read from the API server (no uid), which the
/// controller never sees.
pub fn owner_reference(partner: &PartnerAccount) -> Result<OwnerReference, BuildError> {
    let meta = &partner.metadata;
    Ok(OwnerReference {
        api_version: PartnerAccount::api_version(&()).into_owned(),
        kind: PartnerAccount::kind(&()).into_owned(),
        name: meta
            .name
            .clone()
            .ok_or(BuildError::MissingMetadata("metadata.name"))?,
        uid: meta
            .uid
            .clone()
            .ok_or(BuildError::MissingMetadata("metadata.uid"))?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// What the per-kind builders need to know about the partner.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    /// The PartnerAccount's name.
    pub partner: String,
    /// Its owner reference, for owned children.
    pub reference: OwnerReference,
    /// Whether namespaces we create go with the account.
    pub deletion_policy: PartnerDeletionPolicy,
}

impl Owner {
    pub fn of(partner: &PartnerAccount) -> Result<Self, BuildError> {
        let reference = owner_reference(partner)?;
        naming::check_partner_name(&reference.name)?;
        Ok(Self {
            partner: reference.name.clone(),
            reference,
            deletion_policy: partner.spec.deletion_policy,
        })
    }

    /// Owner references for an object that always goes with the account.
    pub fn owned(&self) -> Option<Vec<OwnerReference>> {
        Some(vec![self.reference.clone()])
    }

    /// Owner references for an object that holds or guards clients' data:
    /// owned only with `deletionPolicy: Delete`. With `Retain` the field is
    /// left out entirely, so server-side apply also removes a reference set
    /// while the policy was `Delete`.
    pub fn owned_if_delete_policy(&self) -> Option<Vec<OwnerReference>> {
        match self.deletion_policy {
            PartnerDeletionPolicy::Delete => self.owned(),
            PartnerDeletionPolicy::Retain => None,
        }
    }
}

/// Builds every child of `partner`.
pub fn build(partner: &PartnerAccount, network: &ClusterNetwork) -> Result<Children, BuildError> {
    let owner = Owner::of(partner)?;
    let spec = &partner.spec;
    let partner_namespace = match spec.program {
        Program::WhiteLabel => Some(naming::partner_namespace(&owner.partner)?),
        Program::Consolidated | Program::Referral => None,
    };
    let targets =
        naming::client_namespaces(&owner.partner, &spec.clients, partner_namespace.as_deref())?;
    let pool = Limits::from_spec(spec.quota.as_ref(), "spec.quota")?;

    let mut clients = Vec::with_capacity(targets.len());
    for (client, target) in spec.clients.iter().zip(&targets) {
        let own = Limits::from_spec(
            client.quota.as_ref(),
            &format!("spec.clients[{}].quota", client.name),
        )?;
        clients.push(ClientChildren {
            client: client.name.clone(),
            namespace: namespace::client_namespace(&owner, target),
            resource_quota: resource_quota::resource_quota(&owner, target, &own, &pool),
            role_binding: role_binding::role_binding(&owner, target, &spec.admins),
            network_policy: network_policy::network_policy(&owner, target, network),
        });
    }

    let branding = match partner_namespace {
        Some(ns) => {
            let brand = spec.branding.as_ref().ok_or(BuildError::MissingBranding)?;
            Some(BrandingChildren {
                namespace: branding::partner_namespace(&owner, &ns),
                config_map: branding::config_map(&owner, &ns, brand),
            })
        }
        None => None,
    };
    Ok(Children { clients, branding })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::fixtures::{
        CONSOLIDATED_DELETE, WHITE_LABEL, partner,
    };

    #[test]
    fn owner_reference_is_a_blocking_controller_reference() {
        let r = owner_reference(&partner(WHITE_LABEL)).unwrap();
        assert_eq!(r.api_version, "partnercloud.io/v1alpha1");
        assert_eq!(r.kind, "PartnerAccount");
        assert_eq!(r.name, "alfa-soft");
        assert_eq!(r.uid, "6f1c2a9e-3b1d-4c55-9a77-0d2f5e8b4a10");
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
    }

    #[test]
    fn owner_reference_needs_a_uid() {
        let mut p = partner(WHITE_LABEL);
        p.metadata.uid = None;
        assert!(matches!(
            owner_reference(&p),
            Err(BuildError::MissingMetadata("metadata.uid"))
        ));
    }

    #[test]
    fn one_set_of_children_per_client_in_spec_order() {
        let children = build(&partner(WHITE_LABEL), &ClusterNetwork::default()).unwrap();
        let names: Vec<_> = children.clients.iter().map(|c| c.client.as_str()).collect();
        assert_eq!(names, ["bakery", "autoparts"]);
        let namespaces: Vec<_> = children
            .clients
            .iter()
            .map(|c| c.namespace.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(namespaces, ["alfa-soft-bakery", "alfa-soft-autoparts"]);
        for c in &children.clients {
            let ns = c.namespace.metadata.name.as_deref();
            assert_eq!(c.role_binding.metadata.namespace.as_deref(), ns);
            assert_eq!(c.network_policy.metadata.namespace.as_deref(), ns);
            if let Some(q) = &c.resource_quota {
                assert_eq!(q.metadata.namespace.as_deref(), ns);
            }
        }
    }

    #[test]
    fn white_label_gets_branding_other_programs_do_not() {
        let white = build(&partner(WHITE_LABEL), &ClusterNetwork::default()).unwrap();
        let branding = white.branding.expect("branding for white label");
        assert_eq!(
            branding.namespace.metadata.name.as_deref(),
            Some("partner-alfa-soft")
        );
        let consolidated =
            build(&partner(CONSOLIDATED_DELETE), &ClusterNetwork::default()).unwrap();
        assert!(consolidated.branding.is_none());
    }

    #[test]
    fn white_label_without_branding_is_an_error_not_a_panic() {
        let mut p = partner(WHITE_LABEL);
        p.spec.branding = None;
        assert!(matches!(
            build(&p, &ClusterNetwork::default()),
            Err(BuildError::MissingBranding)
        ));
    }

    #[test]
    fn partner_name_with_dots_fails_the_build() {
        let mut p = partner(WHITE_LABEL);
        p.metadata.name = Some("alfa.soft".into());
        assert!(matches!(
            build(&p, &ClusterNetwork::default()),
            Err(BuildError::Naming(NamingError::InvalidPartnerName(_)))
        ));
    }

    #[test]
    fn duplicate_client_namespaces_fail_the_build() {
        let mut p = partner(CONSOLIDATED_DELETE);
        p.spec.clients[1].namespace = Some("legacy-shop".into());
        assert!(matches!(
            build(&p, &ClusterNetwork::default()),
            Err(BuildError::Naming(NamingError::DuplicateNamespace { .. }))
        ));
    }

    #[test]
    fn unreadable_quota_fails_the_build_naming_the_field() {
        let mut p = partner(WHITE_LABEL);
        p.spec.clients[0].quota.as_mut().unwrap().memory = Some(
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("lots".into()),
        );
        let err = build(&p, &ClusterNetwork::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.clients[bakery].quota.memory"),
            "{err}"
        );
    }

    #[test]
    fn building_twice_gives_the_same_children() {
        let p = partner(WHITE_LABEL);
        let network = ClusterNetwork {
            pod_cidrs: vec!["10.244.0.0/16".into()],
        };
        assert_eq!(build(&p, &network).unwrap(), build(&p, &network).unwrap());
    }
}
