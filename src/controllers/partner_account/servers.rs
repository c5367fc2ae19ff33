//! The servers of a partner's clients as the quota counts them: each one's
//! recorded admission (`status.admitted`), read fresh from the API server.
//!
//! Used by the VirtualServer controller to decide (under the partner's lock)
//! and by the PartnerAccount controller to report usage, so decisions and
//! status read one account.
//!
//! Only namespaces that really are the partner's count: a namespace a client
//! of this partner would derive, but that is labelled for someone else (see
//! [`naming::claim`]), holds someone else's servers.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::naming::{self, ClientNamespace, NamespaceClaim, PARTNER_LABEL};
use super::quota::{PoolLedger, QuotaError, ServerKey, from_status};
use crate::api::PartnerAccountSpec;
use crate::api::VirtualServer;
use crate::api::virtual_server::AdmittedSize;

/// One server as the ledger sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedServer {
    pub key: ServerKey,
    /// Its `status.admitted`, if it was ever admitted.
    pub admitted: Option<AdmittedSize>,
    /// Being deleted: its share is free already.
    pub deleting: bool,
}

impl CountedServer {
    pub fn of(server: &VirtualServer) -> Self {
        Self {
            key: ServerKey::new(server.namespace().unwrap_or_default(), server.name_any()),
            admitted: server.status.as_ref().and_then(|s| s.admitted.clone()),
            deleting: server.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// The client namespaces of `targets` that exist and are labelled for this
/// partner and that client (orphaned or not): the ones whose servers count.
pub fn counted_namespaces(
    partner: &str,
    targets: &[ClientNamespace],
    labelled: &[Namespace],
) -> Vec<ClientNamespace> {
    targets
        .iter()
        .filter(|target| {
            labelled.iter().any(|ns| {
                ns.metadata.name.as_deref() == Some(target.namespace.as_str())
                    && ns.metadata.deletion_timestamp.is_none()
                    && naming::claim(ns.labels(), partner, &target.client) == NamespaceClaim::Ours
            })
        })
        .cloned()
        .collect()
}

/// Lists the namespaces labelled with `partner` (client namespaces, orphaned
/// ones, and the partner's own).
pub async fn labelled_namespaces(
    client: &Client,
    partner: &str,
) -> Result<Vec<Namespace>, kube::Error> {
    Ok(Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{PARTNER_LABEL}={partner}")))
        .await?
        .items)
}

/// Lists the servers in `namespaces` (one request per namespace: a quorum
/// read, so a record written just before is seen).
pub async fn list(
    client: &Client,
    namespaces: &[ClientNamespace],
) -> Result<Vec<CountedServer>, kube::Error> {
    let mut out = Vec::new();
    for target in namespaces {
        let servers = Api::<VirtualServer>::namespaced(client.clone(), &target.namespace)
            .list(&ListParams::default())
            .await?;
        out.extend(servers.items.iter().map(CountedServer::of));
    }
    Ok(out)
}

/// The partner's ledger: its pool and clients from the spec, and every
/// counted server at its recorded size. A server being deleted holds
/// nothing; a record that cannot be read counts as absent (the server is
/// decided again, never counted partly), and so does a server outside the
/// partner's client namespaces.
pub fn ledger(
    spec: &PartnerAccountSpec,
    targets: &[ClientNamespace],
    servers: &[CountedServer],
) -> Result<PoolLedger, QuotaError> {
    let mut ledger = PoolLedger::from_spec(spec, targets)?;
    for server in servers.iter().filter(|s| !s.deleting) {
        let Some(record) = &server.admitted else {
            continue;
        };
        match from_status(record) {
            Ok(size) => {
                if let Err(e) = ledger.record(server.key.clone(), size) {
                    tracing::debug!(server = ?server.key, error = %e, "not counted");
                }
            }
            Err(e) => {
                tracing::warn!(server = ?server.key, error = %e, "unreadable admission record")
            }
        }
    }
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::controllers::partner_account::fixtures::{WHITE_LABEL, partner};
    use crate::controllers::partner_account::quota::test_support::server;
    use crate::controllers::partner_account::quota::to_status;

    fn namespace(name: &str, labels: BTreeMap<String, String>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    fn targets() -> Vec<ClientNamespace> {
        naming::client_namespaces("alfa-soft", &partner(WHITE_LABEL).spec.clients, None).unwrap()
    }

    fn counted(
        ns: &str,
        name: &str,
        admitted: Option<(u64, u64, u64)>,
        deleting: bool,
    ) -> CountedServer {
        CountedServer {
            key: ServerKey::new(ns, name),
            admitted: admitted.map(|(c, m, s)| to_status(&server(c, m, s))),
            deleting,
        }
    }

    #[test]
    fn only_namespaces_labelled_for_the_partner_and_client_count() {
        let labelled = vec![
            namespace(
                "alfa-soft-bakery",
                naming::labels("alfa-soft", Some("bakery")),
            ),
            // Derived for autoparts, but labelled for another partner's client.
            namespace(
                "alfa-soft-autoparts",
                naming::labels("alfa", Some("soft-autoparts")),
            ),
        ];
        let got = counted_namespaces("alfa-soft", &targets(), &labelled);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].namespace, "alfa-soft-bakery");
    }

    #[test]
    fn a_namespace_not_yet_created_or_terminating_counts_nothing() {
        let mut terminating = namespace(
            "alfa-soft-bakery",
            naming::labels("alfa-soft", Some("bakery")),
        );
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-03-01T00:00:00Z".parse().unwrap(),
            ));
        assert!(counted_namespaces("alfa-soft", &targets(), &[terminating]).is_empty());
        assert!(counted_namespaces("alfa-soft", &targets(), &[]).is_empty());
    }

    #[test]
    fn ledger_counts_recorded_servers_once_and_skips_the_rest() {
        let p = partner(WHITE_LABEL);
        let servers = vec![
            counted("alfa-soft-bakery", "db", Some((4, 16, 100)), false),
            counted("alfa-soft-bakery", "new", None, false),
            counted("alfa-soft-autoparts", "gone", Some((8, 8, 8)), true),
            counted("elsewhere", "stray", Some((1, 1, 1)), false),
            CountedServer {
                key: ServerKey::new("alfa-soft-autoparts", "garbled"),
                admitted: Some(AdmittedSize {
                    cores: 1,
                    memory: "lots".into(),
                    storage: "1Gi".into(),
                }),
                deleting: false,
            },
        ];
        let ledger = ledger(&p.spec, &targets(), &servers).unwrap();
        assert_eq!(ledger.partner_usage(), &server(4, 16, 100));
        assert_eq!(
            ledger.client_usage("alfa-soft-bakery"),
            Some(&server(4, 16, 100))
        );
        assert_eq!(ledger.admitted().count(), 1);
    }
}
