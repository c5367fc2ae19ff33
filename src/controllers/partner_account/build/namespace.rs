//! A client's Namespace, and the orphan-labelled form it takes when its
//! client is removed under `deletionPolicy: Retain`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Owner;
use crate::controllers::partner_account::naming::{
    self, CLIENT_LABEL, ClientNamespace, ORPHANED, ORPHANED_LABEL, PARTNER_LABEL,
};

/// The client's namespace, labelled with partner, client and managed-by.
///
/// Owned by the PartnerAccount only with `deletionPolicy: Delete`: with the
/// default `Retain` it has no owner reference, so deleting the account never
/// lets garbage collection take the client's servers and disks; the
/// controller labels it orphaned instead ([`orphaned`]). Applying it again
/// (a client re-added) drops the orphaned label, because our field manager
/// owns that label and no longer sets it.
pub fn client_namespace(owner: &Owner, target: &ClientNamespace) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(target.namespace.clone()),
            labels: Some(naming::labels(&owner.partner, Some(&target.client))),
            owner_references: owner.owned_if_delete_policy(),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The namespace of a removed client, as applied when it is kept: the same
/// labels plus `partnercloud.io/orphaned: "true"`, and no owner reference.
/// Keeping the partner and client labels says where it came from and keeps
/// it out of reach of other clients' egress (see the network policy).
pub fn orphaned(partner: &str, client: &str, namespace: &str) -> Namespace {
    let mut labels = naming::labels(partner, Some(client));
    labels.insert(ORPHANED_LABEL.to_string(), ORPHANED.to_string());
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_string()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// Which existing namespaces of `partner` to label orphaned: those labelled
/// for one of its clients that is no longer in `wanted`, and not orphaned
/// yet. `existing` is what the controller listed by the partner label.
///
/// Only for `deletionPolicy: Retain`; with `Delete` the orphan sweep deletes
/// the (owned) namespace instead. On deletion of the whole account, `wanted`
/// is empty.
pub fn to_orphan(
    partner: &str,
    wanted: &[ClientNamespace],
    existing: &[Namespace],
) -> Vec<Namespace> {
    let wanted: BTreeSet<(&str, &str)> = wanted
        .iter()
        .map(|w| (w.client.as_str(), w.namespace.as_str()))
        .collect();
    let mut out: Vec<Namespace> = existing
        .iter()
        .filter_map(|ns| {
            let name = ns.metadata.name.as_deref()?;
            let labels = ns.metadata.labels.as_ref()?;
            if labels.get(PARTNER_LABEL).map(String::as_str) != Some(partner) {
                return None;
            }
            let client = labels.get(CLIENT_LABEL)?;
            let already = labels.get(ORPHANED_LABEL).map(String::as_str) == Some(ORPHANED);
            (!already && !wanted.contains(&(client.as_str(), name)))
                .then(|| orphaned(partner, client, name))
        })
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::fixtures::{
        CONSOLIDATED_DELETE, WHITE_LABEL, partner,
    };
    use crate::controllers::partner_account::naming::{MANAGED_BY, MANAGED_BY_LABEL};

    fn target(client: &str, namespace: &str) -> ClientNamespace {
        ClientNamespace {
            client: client.into(),
            namespace: namespace.into(),
        }
    }

    #[test]
    fn client_namespace_is_labelled_for_partner_client_and_manager() {
        let owner = Owner::of(&partner(WHITE_LABEL)).unwrap();
        let ns = client_namespace(&owner, &target("bakery", "alfa-soft-bakery"));
        assert_eq!(ns.metadata.name.as_deref(), Some("alfa-soft-bakery"));
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(labels[PARTNER_LABEL], "alfa-soft");
        assert_eq!(labels[CLIENT_LABEL], "bakery");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        assert!(!labels.contains_key(ORPHANED_LABEL));
    }

    #[test]
    fn retain_policy_namespace_has_no_owner_reference() {
        let owner = Owner::of(&partner(WHITE_LABEL)).unwrap();
        let ns = client_namespace(&owner, &target("bakery", "alfa-soft-bakery"));
        assert_eq!(ns.metadata.owner_references, None);
    }

    #[test]
    fn delete_policy_namespace_is_owned_by_the_account() {
        let p = partner(CONSOLIDATED_DELETE);
        let owner = Owner::of(&p).unwrap();
        let ns = client_namespace(&owner, &target("shop", "legacy-shop"));
        let refs = ns.metadata.owner_references.unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].uid, "0b8e4f6a-2c7d-4e19-8f3a-5d6c7b8a9e01");
        assert_eq!(refs[0].controller, Some(true));
    }

    #[test]
    fn orphaned_namespace_keeps_its_origin_and_gains_the_orphaned_label() {
        let ns = orphaned("acme", "shop", "acme-shop");
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(labels[ORPHANED_LABEL], "true");
        assert_eq!(labels[PARTNER_LABEL], "acme");
        assert_eq!(labels[CLIENT_LABEL], "shop");
        assert_eq!(ns.metadata.owner_references, None);
    }

    #[test]
    fn removed_clients_namespaces_are_orphaned_wanted_ones_are_not() {
        let owner = Owner::of(&partner(WHITE_LABEL)).unwrap();
        let existing = vec![
            client_namespace(&owner, &target("bakery", "alfa-soft-bakery")),
            client_namespace(&owner, &target("gone", "alfa-soft-gone")),
        ];
        let got = to_orphan(
            "alfa-soft",
            &[target("bakery", "alfa-soft-bakery")],
            &existing,
        );
        assert_eq!(got, vec![orphaned("alfa-soft", "gone", "alfa-soft-gone")]);
    }

    #[test]
    fn account_deletion_orphans_every_client_namespace_once() {
        let owner = Owner::of(&partner(WHITE_LABEL)).unwrap();
        let existing = vec![
            client_namespace(&owner, &target("b", "alfa-soft-b")),
            client_namespace(&owner, &target("a", "alfa-soft-a")),
            orphaned("alfa-soft", "old", "alfa-soft-old"),
        ];
        let got = to_orphan("alfa-soft", &[], &existing);
        let names: Vec<_> = got
            .iter()
            .map(|n| n.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            ["alfa-soft-a", "alfa-soft-b"],
            "already orphaned is skipped"
        );
    }

    #[test]
    fn other_partners_and_the_partner_namespace_are_never_orphaned() {
        let mut other = orphaned("other", "x", "other-x");
        other
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(ORPHANED_LABEL);
        let partner_ns = Namespace {
            metadata: ObjectMeta {
                name: Some("partner-alfa-soft".into()),
                labels: Some(naming::labels("alfa-soft", None)),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let unlabelled = Namespace {
            metadata: ObjectMeta {
                name: Some("default".into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        assert!(to_orphan("alfa-soft", &[], &[other, partner_ns, unlabelled]).is_empty());
    }

    #[test]
    fn a_client_moved_to_another_namespace_orphans_the_old_one() {
        let owner = Owner::of(&partner(WHITE_LABEL)).unwrap();
        let existing = vec![client_namespace(
            &owner,
            &target("bakery", "alfa-soft-bakery"),
        )];
        let got = to_orphan("alfa-soft", &[target("bakery", "bakery-new")], &existing);
        assert_eq!(got.len(), 1);
    }
}
