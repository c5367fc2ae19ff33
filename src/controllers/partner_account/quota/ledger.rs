//! The pool ledger: admissions for one partner, decided one at a time.
//!
//! "Serialised per partner" is what makes the pool atomic. The
//! VirtualServer controller decides a new server (or a resize) while holding
//! its partner's lock ([`crate::controllers::context::PartnerLocks`]), on a
//! ledger rebuilt under that lock from the recorded admissions
//! (`status.admitted`, see [`super::record`]) of every server in the
//! partner's client namespaces, read fresh from the API server; it writes the
//! new record before it lets go of the lock. Each decision therefore sees
//! every earlier one, so servers created at the same instant in different
//! client namespaces can never together exceed the pool, and a restart
//! rebuilds the same ledger from the same records.
//!
//! [`PoolLedger::decide_all`] decides a batch in a deterministic order —
//! creation time, then namespace and name — so the same cluster state always
//! gives the same answers, whatever order the requests arrived in.
//!
//! Re-deciding a server that is already admitted at the same size is a
//! no-op (it is counted once); a record that fails to be written is simply
//! decided again next pass, against everything that was recorded, which can
//! only be as full as or emptier than what this pass saw.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::admission::{Admission, ServerRequest, decide};
use super::{Limits, QuotaError, Resources};
use crate::api::partner_account::PartnerAccountSpec;
use crate::controllers::partner_account::naming::ClientNamespace;
use crate::controllers::partner_account::suspension::suspended_by;

/// A VirtualServer's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerKey {
    pub namespace: String,
    pub name: String,
}

impl ServerKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// A server waiting for a decision (new, resized, or already admitted and
/// simply seen again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub key: ServerKey,
    /// The server's `metadata.creationTimestamp`: earlier servers are decided
    /// first.
    pub created: Option<Time>,
    /// Its effective size now.
    pub wanted: Resources,
}

/// A server the ledger cannot place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("namespace {0:?} is not a client namespace of this partner")]
    UnknownNamespace(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientBook {
    limit: Limits,
    suspended: bool,
    usage: Resources,
}

/// One partner's admissions: what each server holds, and the resulting
/// usage of each client and of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLedger {
    partner_limit: Limits,
    partner_suspended: bool,
    partner_usage: Resources,
    /// By namespace.
    clients: BTreeMap<String, ClientBook>,
    admitted: BTreeMap<ServerKey, Resources>,
}

impl PoolLedger {
    /// An empty ledger for a pool with these limits.
    pub fn new(partner_limit: Limits, partner_suspended: bool) -> Self {
        Self {
            partner_limit,
            partner_suspended,
            partner_usage: Resources::default(),
            clients: BTreeMap::new(),
            admitted: BTreeMap::new(),
        }
    }

    /// An empty ledger for `spec`'s pool and clients, each client in the
    /// namespace `namespaces` gives it.
    pub fn from_spec(
        spec: &PartnerAccountSpec,
        namespaces: &[ClientNamespace],
    ) -> Result<Self, QuotaError> {
        let mut ledger = Self::new(
            Limits::from_spec(spec.quota.as_ref(), "spec.quota")?,
            spec.suspended,
        );
        for client in &spec.clients {
            let Some(target) = namespaces.iter().find(|n| n.client == client.name) else {
                continue;
            };
            let limit = Limits::from_spec(
                client.quota.as_ref(),
                &format!("spec.clients[{}].quota", client.name),
            )?;
            ledger.add_client(target.namespace.clone(), limit, client.suspended);
        }
        Ok(ledger)
    }

    /// Adds a client namespace with its own limits.
    pub fn add_client(&mut self, namespace: impl Into<String>, limit: Limits, suspended: bool) {
        self.clients.insert(
            namespace.into(),
            ClientBook {
                limit,
                suspended,
                usage: Resources::default(),
            },
        );
    }

    /// Counts a server admitted earlier, at its recorded size. Recording a
    /// server again replaces its earlier entry.
    pub fn record(&mut self, key: ServerKey, size: Resources) -> Result<(), LedgerError> {
        if !self.clients.contains_key(&key.namespace) {
            return Err(LedgerError::UnknownNamespace(key.namespace));
        }
        let held = self.admitted.get(&key).copied().unwrap_or_default();
        self.hold(key, held, Resources { servers: 1, ..size });
        Ok(())
    }

    /// Decides one server: admitted at `wanted` (and counted), or refused
    /// (and the ledger unchanged — a refused resize keeps what it held).
    pub fn decide(
        &mut self,
        key: &ServerKey,
        wanted: &Resources,
    ) -> Result<Admission, LedgerError> {
        let book = self
            .clients
            .get(&key.namespace)
            .ok_or_else(|| LedgerError::UnknownNamespace(key.namespace.clone()))?;
        let wanted = Resources {
            servers: 1,
            ..*wanted
        };
        let held = self.admitted.get(key).copied().unwrap_or_default();
        let request = ServerRequest { wanted, held };
        let grows = request.growth() != Resources::default();
        let admission = match suspended_by(book.suspended, self.partner_suspended) {
            Some(by) if grows => Admission::Suspended { by },
            _ => decide(
                &request,
                &book.usage,
                &book.limit,
                &self.partner_usage,
                &self.partner_limit,
            ),
        };
        if admission.is_admitted() {
            self.hold(key.clone(), held, wanted);
        }
        Ok(admission)
    }

    /// Decides many servers, in creation order then by namespace and name,
    /// each seeing the ones before. Nothing is decided if any server is in a
    /// namespace the ledger does not know.
    pub fn decide_all(
        &mut self,
        pending: &[Pending],
    ) -> Result<Vec<(ServerKey, Admission)>, LedgerError> {
        if let Some(stray) = pending
            .iter()
            .find(|p| !self.clients.contains_key(&p.key.namespace))
        {
            return Err(LedgerError::UnknownNamespace(stray.key.namespace.clone()));
        }
        let mut ordered: Vec<&Pending> = pending.iter().collect();
        ordered.sort_by(|a, b| (&a.created, &a.key).cmp(&(&b.created, &b.key)));
        ordered
            .into_iter()
            .map(|p| Ok((p.key.clone(), self.decide(&p.key, &p.wanted)?)))
            .collect()
    }

    /// What a server holds, if admitted.
    pub fn held(&self, key: &ServerKey) -> Option<&Resources> {
        self.admitted.get(key)
    }

    /// What a client's admitted servers hold together.
    pub fn client_usage(&self, namespace: &str) -> Option<&Resources> {
        self.clients.get(namespace).map(|b| &b.usage)
    }

    /// What all admitted servers hold together.
    pub fn partner_usage(&self) -> &Resources {
        &self.partner_usage
    }

    /// Every admitted server with its size, by key.
    pub fn admitted(&self) -> impl Iterator<Item = (&ServerKey, &Resources)> {
        self.admitted.iter()
    }

    fn hold(&mut self, key: ServerKey, held: Resources, wanted: Resources) {
        if let Some(book) = self.clients.get_mut(&key.namespace) {
            book.usage = book.usage.minus(&held).plus(&wanted);
        }
        self.partner_usage = self.partner_usage.minus(&held).plus(&wanted);
        self.admitted.insert(key, wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::fixtures::{WHITE_LABEL, partner};
    use crate::controllers::partner_account::naming::client_namespaces;
    use crate::controllers::partner_account::quota::record::{decode, encode};
    use crate::controllers::partner_account::quota::test_support::{GI, server};
    use crate::controllers::partner_account::quota::{Resource, Scope, usage};
    use crate::controllers::partner_account::suspension::SuspendedBy;

    fn time(s: &str) -> Option<Time> {
        Some(Time(s.parse().unwrap()))
    }

    fn pool(servers: u64, cores: u64, memory_gi: u64, storage_gi: u64) -> Limits {
        Limits {
            servers: Some(servers),
            cores: Some(cores),
            memory: Some(memory_gi * GI),
            storage: Some(storage_gi * GI),
        }
    }

    /// A ledger with a pool of 20 servers, 64 cores, 256Gi, 10Ti and five
    /// clients `c0`..`c4`; `c0` has its own quota of 16 cores.
    fn five_clients() -> PoolLedger {
        let mut ledger = PoolLedger::new(pool(20, 64, 256, 10240), false);
        for i in 0..5 {
            let limit = if i == 0 {
                Limits {
                    cores: Some(16),
                    ..Limits::default()
                }
            } else {
                Limits::default()
            };
            ledger.add_client(format!("c{i}"), limit, false);
        }
        ledger
    }

    /// 50 servers across five clients, all created at the same instant, with
    /// sizes from a small deterministic generator (no randomness in tests).
    fn fifty_at_once() -> Vec<Pending> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        (0..50)
            .map(|i| Pending {
                key: ServerKey::new(format!("c{}", i % 5), format!("server-{i:02}")),
                created: time("2026-03-01T09:00:00Z"),
                wanted: server(1 + next(8), 1 + next(32), 20 + next(900)),
            })
            .collect()
    }

    /// Sums the sizes of the admitted requests from the decisions alone,
    /// without trusting the ledger's own books.
    fn admitted_sum(
        pending: &[Pending],
        decisions: &[(ServerKey, Admission)],
        namespace: Option<&str>,
    ) -> Resources {
        let sizes: Vec<Resources> = decisions
            .iter()
            .filter(|(k, a)| a.is_admitted() && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(k, _)| pending.iter().find(|p| &p.key == k).unwrap().wanted)
            .collect();
        usage(&sizes)
    }

    fn fits(used: &Resources, limit: &Limits) -> bool {
        Resource::ALL
            .iter()
            .all(|r| limit.get(*r).is_none_or(|l| used.get(*r) <= l))
    }

    #[test]
    fn fifty_simultaneous_requests_never_exceed_the_pool_or_a_client_quota() {
        let pending = fifty_at_once();
        let mut ledger = five_clients();
        let decisions = ledger.decide_all(&pending).unwrap();
        assert_eq!(decisions.len(), 50);

        let total = admitted_sum(&pending, &decisions, None);
        assert!(fits(&total, &pool(20, 64, 256, 10240)), "{total:?}");
        let c0 = admitted_sum(&pending, &decisions, Some("c0"));
        assert!(c0.cores <= 16, "client quota exceeded: {c0:?}");

        let admitted = decisions.iter().filter(|(_, a)| a.is_admitted()).count();
        let refused = decisions
            .iter()
            .filter(|(_, a)| matches!(a, Admission::Refused { .. }))
            .count();
        assert!(admitted > 5, "the pool admits a fair number: {admitted}");
        assert!(refused > 0, "50 servers cannot all fit");
        assert_eq!(admitted + refused, 50);
        assert_eq!(ledger.partner_usage(), &total, "books match the decisions");
        assert_eq!(ledger.client_usage("c0"), Some(&c0));
    }

    #[test]
    fn decisions_do_not_depend_on_the_order_requests_arrive_in() {
        let pending = fifty_at_once();
        let expected = five_clients().decide_all(&pending).unwrap();
        let mut reversed = pending.clone();
        reversed.reverse();
        assert_eq!(five_clients().decide_all(&reversed).unwrap(), expected);
        let mut interleaved = pending.clone();
        interleaved.sort_by_key(|p| (p.key.name.len() % 3, p.wanted.cores));
        assert_eq!(five_clients().decide_all(&interleaved).unwrap(), expected);
    }

    #[test]
    fn deciding_the_same_batch_again_counts_nothing_twice() {
        let pending = fifty_at_once();
        let mut ledger = five_clients();
        let first = ledger.decide_all(&pending).unwrap();
        let after_first = ledger.clone();
        let second = ledger.decide_all(&pending).unwrap();
        assert_eq!(ledger, after_first, "no server counted twice");
        for ((k1, a1), (k2, a2)) in first.iter().zip(&second) {
            assert_eq!(k1, k2);
            // Refusals may now report a fuller pool; the verdicts are equal.
            assert_eq!(a1.is_admitted(), a2.is_admitted(), "{k1:?}");
        }
    }

    #[test]
    fn a_rebuilt_ledger_from_records_decides_the_same_and_counts_once() {
        let pending = fifty_at_once();
        let mut ledger = five_clients();
        let first = ledger.decide_all(&pending).unwrap();

        // A restart: a fresh ledger from the records written on the servers.
        let mut rebuilt = five_clients();
        for (key, size) in ledger.admitted() {
            rebuilt
                .record(key.clone(), decode(&encode(size)).unwrap())
                .unwrap();
        }
        assert_eq!(rebuilt.partner_usage(), ledger.partner_usage());
        let again = rebuilt.decide_all(&pending).unwrap();
        for ((k1, a1), (k2, a2)) in first.iter().zip(&again) {
            assert_eq!(k1, k2);
            if a1.is_admitted() {
                assert!(a2.is_admitted(), "{k1:?} lost its admission");
            }
        }
        assert_eq!(rebuilt.partner_usage(), ledger.partner_usage());
    }

    #[test]
    fn earlier_servers_are_served_first() {
        let mut ledger = PoolLedger::new(pool(1, 64, 256, 10240), false);
        ledger.add_client("a", Limits::default(), false);
        ledger.add_client("b", Limits::default(), false);
        let decisions = ledger
            .decide_all(&[
                Pending {
                    key: ServerKey::new("a", "late"),
                    created: time("2026-03-01T09:00:01Z"),
                    wanted: server(1, 1, 1),
                },
                Pending {
                    key: ServerKey::new("b", "early"),
                    created: time("2026-03-01T09:00:00Z"),
                    wanted: server(1, 1, 1),
                },
            ])
            .unwrap();
        assert_eq!(decisions[0].0, ServerKey::new("b", "early"));
        assert!(decisions[0].1.is_admitted());
        assert_eq!(
            decisions[1].1.to_string(),
            "servers requested 1, used 1, limit 1 (partner pool)"
        );
    }

    #[test]
    fn same_instant_ties_are_broken_by_namespace_then_name() {
        let mut ledger = PoolLedger::new(pool(1, 64, 256, 10240), false);
        ledger.add_client("a", Limits::default(), false);
        ledger.add_client("b", Limits::default(), false);
        let at = time("2026-03-01T09:00:00Z");
        let decisions = ledger
            .decide_all(&[
                Pending {
                    key: ServerKey::new("b", "x"),
                    created: at.clone(),
                    wanted: server(1, 1, 1),
                },
                Pending {
                    key: ServerKey::new("a", "y"),
                    created: at,
                    wanted: server(1, 1, 1),
                },
            ])
            .unwrap();
        assert_eq!(decisions[0].0, ServerKey::new("a", "y"));
        assert!(decisions[0].1.is_admitted());
        assert!(!decisions[1].1.is_admitted());
    }

    #[test]
    fn re_deciding_an_admitted_server_is_idempotent() {
        let mut ledger = five_clients();
        let key = ServerKey::new("c1", "db");
        ledger.record(key.clone(), server(4, 16, 500)).unwrap();
        let before = ledger.clone();
        assert_eq!(
            ledger.decide(&key, &server(4, 16, 500)).unwrap(),
            Admission::Admitted
        );
        assert_eq!(ledger, before);
        assert_eq!(ledger.partner_usage(), &server(4, 16, 500));
    }

    #[test]
    fn recording_twice_replaces_rather_than_adds() {
        let mut ledger = five_clients();
        let key = ServerKey::new("c1", "db");
        ledger.record(key.clone(), server(4, 16, 500)).unwrap();
        ledger.record(key.clone(), server(2, 8, 500)).unwrap();
        assert_eq!(ledger.partner_usage(), &server(2, 8, 500));
        assert_eq!(ledger.client_usage("c1"), Some(&server(2, 8, 500)));
    }

    #[test]
    fn a_resize_counts_only_its_growth_and_replaces_the_held_size() {
        let mut ledger = PoolLedger::new(pool(20, 10, 256, 10240), false);
        ledger.add_client("c", Limits::default(), false);
        let key = ServerKey::new("c", "app");
        ledger.record(key.clone(), server(6, 8, 100)).unwrap();
        // 6 → 10 adds 4: exactly the pool.
        assert!(
            ledger
                .decide(&key, &server(10, 8, 100))
                .unwrap()
                .is_admitted()
        );
        assert_eq!(ledger.partner_usage().cores, 10);
        assert_eq!(ledger.partner_usage().servers, 1);
        // 10 → 11 does not fit; the server keeps 10.
        let refused = ledger.decide(&key, &server(11, 8, 100)).unwrap();
        assert!(matches!(
            refused,
            Admission::Refused {
                requested: 1,
                held: 10,
                used: 10,
                limit: 10,
                scope: Scope::Partner,
                ..
            }
        ));
        assert_eq!(ledger.held(&key), Some(&server(10, 8, 100)));
    }

    #[test]
    fn a_shrink_frees_capacity_for_the_next_server() {
        let mut ledger = PoolLedger::new(pool(20, 8, 256, 10240), false);
        ledger.add_client("c", Limits::default(), false);
        let big = ServerKey::new("c", "big");
        ledger.record(big.clone(), server(8, 8, 100)).unwrap();
        let newcomer = ServerKey::new("c", "new");
        assert!(
            !ledger
                .decide(&newcomer, &server(4, 1, 1))
                .unwrap()
                .is_admitted()
        );
        assert!(
            ledger
                .decide(&big, &server(4, 8, 100))
                .unwrap()
                .is_admitted()
        );
        assert!(
            ledger
                .decide(&newcomer, &server(4, 1, 1))
                .unwrap()
                .is_admitted()
        );
        assert_eq!(ledger.partner_usage().cores, 8);
    }

    #[test]
    fn a_suspended_client_gets_no_new_servers_but_keeps_its_own() {
        let mut ledger = PoolLedger::new(Limits::default(), false);
        ledger.add_client("s", Limits::default(), true);
        let existing = ServerKey::new("s", "old");
        ledger.record(existing.clone(), server(2, 4, 50)).unwrap();
        assert_eq!(
            ledger
                .decide(&ServerKey::new("s", "new"), &server(1, 1, 1))
                .unwrap(),
            Admission::Suspended {
                by: SuspendedBy::Client
            }
        );
        assert_eq!(
            ledger.decide(&existing, &server(4, 4, 50)).unwrap(),
            Admission::Suspended {
                by: SuspendedBy::Client
            },
            "no growth while suspended"
        );
        assert!(
            ledger
                .decide(&existing, &server(2, 4, 50))
                .unwrap()
                .is_admitted(),
            "what it already holds stays admitted"
        );
        assert!(
            ledger
                .decide(&existing, &server(1, 4, 50))
                .unwrap()
                .is_admitted(),
            "shrinking is allowed"
        );
        assert_eq!(ledger.partner_usage(), &server(1, 4, 50));
    }

    #[test]
    fn a_suspended_partner_refuses_new_servers_in_every_client() {
        let mut ledger = PoolLedger::new(Limits::default(), true);
        ledger.add_client("a", Limits::default(), false);
        ledger.add_client("b", Limits::default(), true);
        assert_eq!(
            ledger
                .decide(&ServerKey::new("a", "x"), &server(1, 1, 1))
                .unwrap(),
            Admission::Suspended {
                by: SuspendedBy::Partner
            }
        );
        assert_eq!(
            ledger
                .decide(&ServerKey::new("b", "x"), &server(1, 1, 1))
                .unwrap(),
            Admission::Suspended {
                by: SuspendedBy::ClientAndPartner
            }
        );
        assert_eq!(ledger.partner_usage(), &Resources::default());
    }

    #[test]
    fn servers_outside_the_partners_namespaces_are_an_error() {
        let mut ledger = five_clients();
        assert_eq!(
            ledger.record(ServerKey::new("elsewhere", "x"), server(1, 1, 1)),
            Err(LedgerError::UnknownNamespace("elsewhere".into()))
        );
        let before = ledger.clone();
        let mut pending = fifty_at_once();
        pending.push(Pending {
            key: ServerKey::new("elsewhere", "x"),
            created: None,
            wanted: server(1, 1, 1),
        });
        assert!(ledger.decide_all(&pending).is_err());
        assert_eq!(ledger, before, "nothing decided when the batch is invalid");
    }

    #[test]
    fn a_request_always_counts_as_one_server() {
        let mut ledger = five_clients();
        let odd = Resources {
            servers: 7,
            ..server(1, 1, 1)
        };
        ledger.decide(&ServerKey::new("c1", "x"), &odd).unwrap();
        assert_eq!(ledger.partner_usage().servers, 1);
    }

    #[test]
    fn ledger_from_spec_maps_clients_to_their_namespaces() {
        let p = partner(WHITE_LABEL);
        let namespaces = client_namespaces("alfa-soft", &p.spec.clients, None).unwrap();
        let mut ledger = PoolLedger::from_spec(&p.spec, &namespaces).unwrap();
        // bakery: 16 cores of its own, inside the pool of 64.
        let refused = ledger
            .decide(
                &ServerKey::new("alfa-soft-bakery", "big"),
                &server(17, 1, 1),
            )
            .unwrap();
        assert!(matches!(
            refused,
            Admission::Refused {
                scope: Scope::Client,
                limit: 16,
                ..
            }
        ));
        // autoparts: only the pool.
        let refused = ledger
            .decide(
                &ServerKey::new("alfa-soft-autoparts", "big"),
                &server(65, 1, 1),
            )
            .unwrap();
        assert!(matches!(
            refused,
            Admission::Refused {
                scope: Scope::Partner,
                limit: 64,
                ..
            }
        ));
        assert!(
            ledger
                .decide(
                    &ServerKey::new("alfa-soft-autoparts", "ok"),
                    &server(64, 1, 1)
                )
                .unwrap()
                .is_admitted()
        );
    }
}
