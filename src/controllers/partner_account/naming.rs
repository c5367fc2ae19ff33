//! Names and labels of everything a PartnerAccount creates.
//!
//! A client's namespace is `spec.clients[].namespace` when set (a client
//! migrated from elsewhere keeps its namespace), otherwise
//! `<partner>-<client>`. Both parts are fixed for the life of the client —
//! the partner is the object's name, the client its key in `spec.clients`,
//! and the CRD forbids changing an explicit namespace — so the name is
//! stable. The CRD limits the partner name to 30 characters and the client
//! name to 32, so `<partner>-<client>` fits the 63 characters of a namespace
//! name; the result is still checked here, because a cluster-scoped object's
//! name may contain dots, which a namespace name may not.
//!
//! A white-label partner also gets its own namespace `partner-<partner>` for
//! the branding a control panel reads.

use std::collections::BTreeMap;

use crate::api::partner_account::Client;

/// Label on every object we create: which partner it belongs to.
pub const PARTNER_LABEL: &str = "partnercloud.io/partner";
/// Label on a client namespace and what is inside it: which client.
pub const CLIENT_LABEL: &str = "partnercloud.io/client";
/// The well-known label saying which tool manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "partnercloud";
/// Set to `"true"` on a client namespace that was kept when its client (or
/// the whole partner) was removed with `deletionPolicy: Retain`.
pub const ORPHANED_LABEL: &str = "partnercloud.io/orphaned";
/// Value of [`ORPHANED_LABEL`].
pub const ORPHANED: &str = "true";

/// Prefix of a partner's own namespace.
pub const PARTNER_NAMESPACE_PREFIX: &str = "partner-";

/// Longest namespace name Kubernetes accepts (a DNS-1123 label).
pub const MAX_NAMESPACE_LEN: usize = 63;

/// Why a name cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error(
        "namespace name {name:?} (for {what}) is not a DNS label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
    )]
    InvalidNamespace { name: String, what: String },
    #[error(
        "partner name {0:?} is not a DNS label of at most 30 characters (lower-case letters, digits and '-'); it prefixes namespace names and labels"
    )]
    InvalidPartnerName(String),
    #[error("namespace {namespace:?} is claimed by both {first} and {second}")]
    DuplicateNamespace {
        namespace: String,
        first: String,
        second: String,
    },
}

/// Longest partner name: 30 characters, so that `<partner>-<client>` with a
/// client of up to 32 fits 63 (the CRD enforces the same limit).
pub const MAX_PARTNER_LEN: usize = 30;

/// Whether `name` is a DNS-1123 label (what a namespace name must be).
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAMESPACE_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Checks the partner's name: it becomes part of namespace names and a label
/// value, so it must be a DNS label of at most [`MAX_PARTNER_LEN`].
pub fn check_partner_name(partner: &str) -> Result<(), NamingError> {
    if partner.len() <= MAX_PARTNER_LEN && is_dns_label(partner) {
        Ok(())
    } else {
        Err(NamingError::InvalidPartnerName(partner.to_string()))
    }
}

/// The namespace of one client: its explicit `namespace`, otherwise
/// `<partner>-<client>`.
pub fn client_namespace(partner: &str, client: &Client) -> Result<String, NamingError> {
    let name = match &client.namespace {
        Some(explicit) => explicit.clone(),
        None => {
            check_partner_name(partner)?;
            format!("{partner}-{}", client.name)
        }
    };
    if is_dns_label(&name) {
        Ok(name)
    } else {
        Err(NamingError::InvalidNamespace {
            name,
            what: format!("client {:?}", client.name),
        })
    }
}

/// The partner's own namespace, `partner-<partner>`, holding its branding.
pub fn partner_namespace(partner: &str) -> Result<String, NamingError> {
    check_partner_name(partner)?;
    Ok(format!("{PARTNER_NAMESPACE_PREFIX}{partner}"))
}

/// One client and the namespace it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNamespace {
    pub client: String,
    pub namespace: String,
}

/// Every client's namespace, in `spec.clients` order, checking that no two
/// clients — nor a client and the partner's own namespace — share one.
///
/// Within one partner only an explicit `namespace` can collide (client names
/// are unique), but it can: an explicit `acme-shop` for client `old-shop`
/// is exactly the derived name of a client `shop`. `partner_namespace` is
/// the partner's own namespace when the program needs one.
pub fn client_namespaces(
    partner: &str,
    clients: &[Client],
    partner_namespace: Option<&str>,
) -> Result<Vec<ClientNamespace>, NamingError> {
    check_partner_name(partner)?;
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    if let Some(own) = partner_namespace {
        claimed.insert(own.to_string(), "the partner's own namespace".into());
    }
    let mut out = Vec::with_capacity(clients.len());
    for client in clients {
        let namespace = client_namespace(partner, client)?;
        let who = format!("client {:?}", client.name);
        if let Some(first) = claimed.get(&namespace) {
            return Err(NamingError::DuplicateNamespace {
                namespace,
                first: first.clone(),
                second: who,
            });
        }
        claimed.insert(namespace.clone(), who);
        out.push(ClientNamespace {
            client: client.name.clone(),
            namespace,
        });
    }
    Ok(out)
}

/// The labels every object we create carries: partner and managed-by, plus
/// the client for what belongs to one client. The controller finds its
/// children (for the orphan sweep) by these.
pub fn labels(partner: &str, client: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (PARTNER_LABEL.to_string(), partner.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ]);
    if let Some(client) = client {
        labels.insert(CLIENT_LABEL.to_string(), client.to_string());
    }
    labels
}

/// Who an existing namespace belongs to, judged from its labels, before a
/// partner applies its client's namespace onto it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceClaim {
    /// No partnercloud labels: free to adopt (a migrated client's namespace,
    /// or one that does not exist yet).
    Free,
    /// Already this partner's, for this client (orphaned or not).
    Ours,
    /// Labelled for another partner or another client: applying would take
    /// it over, so the controller must refuse and report.
    Foreign {
        partner: Option<String>,
        client: Option<String>,
    },
}

/// Decides whether a namespace carrying `existing` labels may be used as
/// `client`'s namespace of `partner`.
///
/// Derived names can collide across partners (`a-b` + `c` and `a` + `b-c`
/// both give `a-b-c`), and a namespace that was orphaned from one partner
/// must not silently become another's; the labels tell.
pub fn claim(existing: &BTreeMap<String, String>, partner: &str, client: &str) -> NamespaceClaim {
    let their_partner = existing.get(PARTNER_LABEL);
    let their_client = existing.get(CLIENT_LABEL);
    match (their_partner, their_client) {
        (None, None) => NamespaceClaim::Free,
        (Some(p), Some(c)) if p == partner && c == client => NamespaceClaim::Ours,
        _ => NamespaceClaim::Foreign {
            partner: their_partner.cloned(),
            client: their_client.cloned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, namespace: Option<&str>) -> Client {
        serde_saphyr::from_str(&match namespace {
            Some(ns) => format!("name: {name}\nnamespace: {ns}\n"),
            None => format!("name: {name}\n"),
        })
        .unwrap()
    }

    #[test]
    fn derived_namespace_is_partner_dash_client() {
        assert_eq!(
            client_namespace("alfa-soft", &client("bakery", None)).unwrap(),
            "alfa-soft-bakery"
        );
    }

    #[test]
    fn explicit_namespace_wins_and_is_kept_verbatim() {
        assert_eq!(
            client_namespace("alfa-soft", &client("bakery", Some("legacy-bakery"))).unwrap(),
            "legacy-bakery"
        );
    }

    #[test]
    fn longest_names_the_crd_allows_still_fit() {
        let partner = "p".repeat(30);
        let name = client_namespace(&partner, &client(&"c".repeat(32), None)).unwrap();
        assert_eq!(name.len(), 63);
        assert!(is_dns_label(&name));
    }

    #[test]
    fn partner_name_with_dots_is_refused() {
        let err = client_namespace("alfa.soft", &client("bakery", None)).unwrap_err();
        assert_eq!(err, NamingError::InvalidPartnerName("alfa.soft".into()));
        assert!(partner_namespace("alfa.soft").is_err());
    }

    #[test]
    fn partner_name_too_long_is_refused_even_if_admission_was_bypassed() {
        let partner = "p".repeat(31);
        assert!(matches!(
            client_namespace(&partner, &client("c", None)),
            Err(NamingError::InvalidPartnerName(_))
        ));
    }

    #[test]
    fn invalid_explicit_namespace_is_refused() {
        let err = client_namespace("alfa", &client("bakery", Some("Bakery_NS"))).unwrap_err();
        assert!(matches!(err, NamingError::InvalidNamespace { .. }));
        assert!(err.to_string().contains("client \"bakery\""));
    }

    #[test]
    fn dns_label_rules() {
        assert!(is_dns_label("a"));
        assert!(is_dns_label("a-1"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }

    #[test]
    fn partner_namespace_is_prefixed() {
        assert_eq!(partner_namespace("alfa-soft").unwrap(), "partner-alfa-soft");
    }

    #[test]
    fn clients_namespaces_in_spec_order() {
        let clients = [client("b", None), client("a", Some("legacy"))];
        let got = client_namespaces("p", &clients, None).unwrap();
        assert_eq!(
            got,
            vec![
                ClientNamespace {
                    client: "b".into(),
                    namespace: "p-b".into()
                },
                ClientNamespace {
                    client: "a".into(),
                    namespace: "legacy".into()
                },
            ]
        );
    }

    #[test]
    fn explicit_namespace_colliding_with_a_derived_one_is_refused() {
        let clients = [client("shop", None), client("old-shop", Some("acme-shop"))];
        let err = client_namespaces("acme", &clients, None).unwrap_err();
        assert_eq!(
            err,
            NamingError::DuplicateNamespace {
                namespace: "acme-shop".into(),
                first: "client \"shop\"".into(),
                second: "client \"old-shop\"".into(),
            }
        );
    }

    #[test]
    fn client_namespace_colliding_with_the_partner_namespace_is_refused() {
        let clients = [client("x", Some("partner-acme"))];
        let err = client_namespaces("acme", &clients, Some("partner-acme")).unwrap_err();
        assert!(matches!(err, NamingError::DuplicateNamespace { .. }));
    }

    #[test]
    fn labels_carry_partner_managed_by_and_optionally_client() {
        let partner_only = labels("acme", None);
        assert_eq!(partner_only.len(), 2);
        assert_eq!(partner_only[PARTNER_LABEL], "acme");
        assert_eq!(partner_only[MANAGED_BY_LABEL], "partnercloud");
        let with_client = labels("acme", Some("shop"));
        assert_eq!(with_client[CLIENT_LABEL], "shop");
        assert_eq!(with_client.len(), 3);
    }

    #[test]
    fn unlabelled_namespace_is_free_to_adopt() {
        let existing = BTreeMap::from([("team".to_string(), "x".to_string())]);
        assert_eq!(claim(&existing, "acme", "shop"), NamespaceClaim::Free);
    }

    #[test]
    fn own_namespace_is_ours_even_when_orphaned() {
        let mut existing = labels("acme", Some("shop"));
        existing.insert(ORPHANED_LABEL.into(), ORPHANED.into());
        assert_eq!(claim(&existing, "acme", "shop"), NamespaceClaim::Ours);
    }

    #[test]
    fn derived_names_colliding_across_partners_are_detected() {
        // Partner "a-b" with client "c" and partner "a" with client "b-c"
        // both derive "a-b-c"; the second must not take the first's over.
        let existing = labels("a-b", Some("c"));
        assert_eq!(
            claim(&existing, "a", "b-c"),
            NamespaceClaim::Foreign {
                partner: Some("a-b".into()),
                client: Some("c".into())
            }
        );
    }

    #[test]
    fn another_clients_namespace_of_the_same_partner_is_foreign() {
        let existing = labels("acme", Some("shop"));
        assert!(matches!(
            claim(&existing, "acme", "bakery"),
            NamespaceClaim::Foreign { .. }
        ));
    }

    #[test]
    fn partner_namespace_is_not_a_client_namespace() {
        let existing = labels("acme", None);
        assert!(matches!(
            claim(&existing, "acme", "shop"),
            NamespaceClaim::Foreign { client: None, .. }
        ));
    }
}
