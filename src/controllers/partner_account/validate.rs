//! Validate what admission could not: that every namespace the partner
//! wants is free, or already the partner's for that client.
//!
//! A partner never takes over a namespace that belongs to someone else —
//! another partner's client (derived names can collide: `a-b` + `c` and
//! `a` + `b-c`), another client of the same partner, a namespace kept from
//! another partner — nor a system namespace named as a migrated client's.
//! Such a client is left out of this pass (nothing is applied into the
//! namespace, nothing is changed on it) and the PartnerAccount's `Ready`
//! condition says which and whose; the other clients are set up as usual.

use std::collections::BTreeMap;
use std::fmt;

use super::build::Children;
use super::naming::{self, CLIENT_LABEL, ClientNamespace, NamespaceClaim, PARTNER_LABEL};

/// `Ready` reason while some namespace is refused.
pub const NAMESPACE_TAKEN: &str = "NamespaceTaken";

/// Namespaces no partner may adopt, whatever their labels: they hold the
/// cluster itself or the platform partnercloud runs on (the operator,
/// KubeVirt, CDI), and a partner with `deletionPolicy: Delete` would take
/// them with it.
pub fn is_system_namespace(name: &str) -> bool {
    const PLATFORM: [&str; 5] = [
        "default",
        "partnercloud-system",
        "kubevirt",
        "cdi",
        "local-path-storage",
    ];
    PLATFORM.contains(&name)
        || [
            "kube-",
            "openshift-",
            "kubevirt-",
            "cdi-",
            "cattle-",
            "calico-",
            "tigera-",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod platform_tests {
    use super::is_system_namespace;

    #[test]
    fn the_platform_namespaces_are_never_adopted() {
        for ns in [
            "default",
            "kube-system",
            "partnercloud-system",
            "kubevirt",
            "cdi",
            "openshift-monitoring",
            "kubevirt-hyperconverged",
        ] {
            assert!(is_system_namespace(ns), "{ns}");
        }
        for ns in ["alfa-soft-bakery", "legacy-bakery", "cdimport"] {
            assert!(!is_system_namespace(ns), "{ns}");
        }
    }
}

/// A namespace the partner may not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The client that wants it; `None` for the white-label partner
    /// namespace.
    pub client: Option<String>,
    pub namespace: String,
    /// Whose it is, from its labels (`None` when unlabelled, i.e. a system
    /// namespace).
    pub owner_partner: Option<String>,
    pub owner_client: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.client {
            Some(c) => write!(f, "client {c}: namespace {} ", self.namespace)?,
            None => write!(f, "branding: namespace {} ", self.namespace)?,
        }
        match (&self.owner_partner, &self.owner_client) {
            (None, None) => f.write_str("is a system namespace"),
            (Some(p), Some(c)) => write!(f, "belongs to partner {p}, client {c}"),
            (Some(p), None) => write!(f, "belongs to partner {p}"),
            (None, Some(c)) => write!(f, "belongs to client {c} of no partner"),
        }?;
        f.write_str("; it is left alone")
    }
}

/// The namespaces this partner may not use: for each client the claim on
/// its namespace's labels (`existing`: name → labels of namespaces that
/// exist), and the partner namespace (white label), which must be free or
/// labelled with this partner and no client.
pub fn refusals(
    partner: &str,
    targets: &[ClientNamespace],
    partner_namespace: Option<&str>,
    existing: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Refusal> {
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for target in targets {
        let labels = existing.get(&target.namespace).unwrap_or(&empty);
        let refused = is_system_namespace(&target.namespace)
            || matches!(
                naming::claim(labels, partner, &target.client),
                NamespaceClaim::Foreign { .. }
            );
        if refused {
            out.push(Refusal {
                client: Some(target.client.clone()),
                namespace: target.namespace.clone(),
                owner_partner: labels.get(PARTNER_LABEL).cloned(),
                owner_client: labels.get(CLIENT_LABEL).cloned(),
            });
        }
    }
    if let Some(ns) = partner_namespace {
        let labels = existing.get(ns).unwrap_or(&empty);
        let their_partner = labels.get(PARTNER_LABEL);
        let their_client = labels.get(CLIENT_LABEL);
        let ours = their_client.is_none() && their_partner.is_none_or(|p| p == partner);
        if !ours {
            out.push(Refusal {
                client: None,
                namespace: ns.to_string(),
                owner_partner: their_partner.cloned(),
                owner_client: their_client.cloned(),
            });
        }
    }
    out
}

/// The children without those in refused namespaces.
pub fn without_refused(children: Children, refusals: &[Refusal]) -> Children {
    let refused = |ns: Option<&str>| refusals.iter().any(|r| Some(r.namespace.as_str()) == ns);
    let Children { clients, branding } = children;
    Children {
        clients: clients
            .into_iter()
            .filter(|c| !refused(c.namespace.metadata.name.as_deref()))
            .collect(),
        branding: branding.filter(|b| !refused(b.namespace.metadata.name.as_deref())),
    }
}

/// The message of `Ready=False` while namespaces are refused.
pub fn message(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(Refusal::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::build::{ClusterNetwork, build};
    use crate::controllers::partner_account::fixtures::{WHITE_LABEL, partner};

    fn target(client: &str, namespace: &str) -> ClientNamespace {
        ClientNamespace {
            client: client.into(),
            namespace: namespace.into(),
        }
    }

    fn existing(
        entries: &[(&str, BTreeMap<String, String>)],
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        entries
            .iter()
            .map(|(n, l)| (n.to_string(), l.clone()))
            .collect()
    }

    #[test]
    fn missing_unlabelled_and_own_namespaces_are_fine() {
        let targets = [
            target("new", "a-new"),
            target("migrated", "legacy"),
            target("mine", "a-mine"),
        ];
        let seen = existing(&[
            ("legacy", BTreeMap::from([("team".into(), "x".into())])),
            ("a-mine", naming::labels("a", Some("mine"))),
        ]);
        assert!(refusals("a", &targets, None, &seen).is_empty());
    }

    #[test]
    fn another_partners_namespace_is_refused_and_named() {
        // Partner "a" with client "b-c" derives a-b-c, which partner "a-b"
        // with client "c" owns.
        let seen = existing(&[("a-b-c", naming::labels("a-b", Some("c")))]);
        let got = refusals("a", &[target("b-c", "a-b-c")], None, &seen);
        assert_eq!(
            got,
            vec![Refusal {
                client: Some("b-c".into()),
                namespace: "a-b-c".into(),
                owner_partner: Some("a-b".into()),
                owner_client: Some("c".into()),
            }]
        );
        assert_eq!(
            message(&got),
            "client b-c: namespace a-b-c belongs to partner a-b, client c; it is left alone"
        );
    }

    #[test]
    fn system_namespaces_are_never_adopted() {
        let got = refusals(
            "a",
            &[target("x", "kube-system"), target("y", "default")],
            None,
            &BTreeMap::new(),
        );
        assert_eq!(got.len(), 2);
        assert!(message(&got).contains("kube-system is a system namespace"));
    }

    #[test]
    fn the_partner_namespace_must_be_free_or_the_partners_own() {
        let ok = existing(&[("partner-a", naming::labels("a", None))]);
        assert!(refusals("a", &[], Some("partner-a"), &ok).is_empty());
        assert!(refusals("a", &[], Some("partner-a"), &BTreeMap::new()).is_empty());
        // A client namespace of partner "partner" for client "a".
        let taken = existing(&[("partner-a", naming::labels("partner", Some("a")))]);
        let got = refusals("a", &[], Some("partner-a"), &taken);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].client, None);
        assert!(
            message(&got).starts_with("branding: namespace partner-a belongs to partner partner")
        );
    }

    #[test]
    fn refused_clients_and_branding_are_left_out_of_the_children() {
        let children = build(&partner(WHITE_LABEL), &ClusterNetwork::default()).unwrap();
        let refused = [
            Refusal {
                client: Some("bakery".into()),
                namespace: "alfa-soft-bakery".into(),
                owner_partner: Some("other".into()),
                owner_client: Some("x".into()),
            },
            Refusal {
                client: None,
                namespace: "partner-alfa-soft".into(),
                owner_partner: Some("other".into()),
                owner_client: None,
            },
        ];
        let kept = without_refused(children, &refused);
        let names: Vec<_> = kept.clients.iter().map(|c| c.client.as_str()).collect();
        assert_eq!(names, ["autoparts"]);
        assert!(kept.branding.is_none());
    }
}
