//! Admission: between validate and build, a server in a partner's client
//! namespace is admitted against its client's quota and its partner's pool,
//! and its power follows the client's and partner's suspension.
//!
//! - **Whose server is it?** A namespace labelled with a partner and a
//!   client (by the PartnerAccount controller), for a client still in that
//!   PartnerAccount's spec, not orphaned. Servers anywhere else are not
//!   subject to partner quotas or suspension.
//! - **The decision** is made in guest terms (cores, memory, the sum of the
//!   disk sizes, one server) from the plan, on the delta against what the
//!   server already holds (`status.admitted`). A server already admitted at
//!   its size needs no decision and takes no lock — the steady state costs
//!   nothing. Otherwise the partner's lock is taken, every server of the
//!   partner's client namespaces is read fresh, the ledger decides, and an
//!   admission is recorded in the server's status *before* the lock is let
//!   go, so the next decision sees it.
//! - **A refusal** (`QuotaExceeded` with requested, used and limit, or
//!   `Suspended`) blocks the server: it is not built, nothing is applied and
//!   nothing deleted. A refused resize keeps what the server already holds.
//! - **Suspension** halts every server of the client (`runStrategy:
//!   Halted`, nothing deleted) and refuses new servers and growth; resuming
//!   gives each server its own `powerState` back (nothing is stored).

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::fetch::Observed;
use super::plan::{Blocked, Plan, reason};
use crate::api::VirtualServer;
use crate::api::partner_account::PartnerAccountSpec;
use crate::api::virtual_server::{AdmittedSize, PowerState};
use crate::controllers::context::Context;
use crate::controllers::labels;
use crate::controllers::partner_account::naming::{
    self, ClientNamespace, ORPHANED, ORPHANED_LABEL,
};
use crate::controllers::partner_account::quota::{
    Admission, LedgerError, QuotaError, Resources, ServerKey, from_status, to_status,
};
use crate::controllers::partner_account::servers::{self, CountedServer};
use crate::controllers::partner_account::suspension::{RunStrategy, SuspendedBy, effective_power};

/// Why a decision could not be made (not a refusal: the cluster could not
/// be read or written, or the partner's quota could not be).
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("reading the partner's servers: {0}")]
    List(#[source] kube::Error),
    #[error("recording the admission: {0}")]
    Record(#[source] kube::Error),
    #[error("the partner's quota: {0}")]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The partner and client whose quota a server counts against.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub partner: String,
    pub spec: PartnerAccountSpec,
    pub client: String,
    pub client_suspended: bool,
    /// Every client namespace of the partner, for the ledger.
    pub namespaces: Vec<ClientNamespace>,
}

/// The tenant of a server in `namespace`, from the namespace's labels and
/// the PartnerAccount they name; `None` when the server is nobody's.
pub fn tenant(namespace: &str, observed: &Observed) -> Option<Tenant> {
    let labels = &observed.namespace_labels;
    if labels.get(ORPHANED_LABEL).map(String::as_str) == Some(ORPHANED) {
        return None;
    }
    let partner_name = labels.get(labels::PARTNER)?;
    let client_name = labels.get(labels::CLIENT)?;
    let partner = observed
        .partner
        .as_ref()
        .filter(|p| &p.name_any() == partner_name)?;
    let client = partner
        .spec
        .clients
        .iter()
        .find(|c| &c.name == client_name)?;
    let namespaces: Vec<ClientNamespace> = partner
        .spec
        .clients
        .iter()
        .filter_map(|c| {
            naming::client_namespace(partner_name, c)
                .ok()
                .map(|namespace| ClientNamespace {
                    client: c.name.clone(),
                    namespace,
                })
        })
        .collect();
    let ours = namespaces
        .iter()
        .any(|n| n.client == client.name && n.namespace == namespace);
    ours.then(|| Tenant {
        partner: partner_name.clone(),
        spec: partner.spec.clone(),
        client: client.name.clone(),
        client_suspended: client.suspended,
        namespaces,
    })
}

/// Whether the server's namespace was let go by its partner account (the
/// client removed, or the account deleted, under `deletionPolicy: Retain`).
/// Its servers are nobody's to pay for: they are halted and none is built
/// or grown — nothing is deleted — until an account takes the namespace
/// back. Otherwise deleting a suspended partner's account would start its
/// servers, and servers its quota refused would be built with no quota.
pub fn orphaned(observed: &Observed) -> bool {
    observed
        .namespace_labels
        .get(ORPHANED_LABEL)
        .map(String::as_str)
        == Some(ORPHANED)
}

/// Why a server in an orphaned namespace is halted and not built.
pub fn orphaned_refusal(namespace: &str) -> Blocked {
    Blocked::new(
        reason::ORPHANED,
        format!(
            "namespace {namespace} no longer belongs to a partner account (its client was removed, or the account deleted): its servers are halted and none is built or grown, and nothing is deleted; adding the client to a partner account again resumes them"
        ),
    )
}

/// A server's effective power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Power {
    /// What the VirtualMachine is built with.
    pub state: PowerState,
    /// Set while a suspension holds the server halted.
    pub suspended_by: Option<SuspendedBy>,
}

/// The server's own `powerState`, unless its client or partner is
/// suspended, or its namespace orphaned (then it is halted).
pub fn power(own: PowerState, tenant: Option<&Tenant>, orphaned: bool) -> Power {
    if orphaned {
        return Power {
            state: PowerState::Stopped,
            suspended_by: None,
        };
    }
    let (client, partner) = tenant
        .map(|t| (t.client_suspended, t.spec.suspended))
        .unwrap_or((false, false));
    let effective = effective_power(own, client, partner);
    Power {
        state: match effective.run_strategy {
            RunStrategy::Always => PowerState::Running,
            RunStrategy::Halted => PowerState::Stopped,
        },
        suspended_by: effective.suspended_by,
    }
}

/// What the server asks for, in guest terms: the plan's cores and memory
/// (template defaults applied) and the sum of its disk sizes, detached
/// disks included (they still take storage).
pub fn requested(plan: &Plan) -> Resources {
    Resources {
        servers: 1,
        cores: u64::from(plan.cores),
        memory: plan.memory_bytes,
        storage: plan
            .disks
            .iter()
            .fold(plan.detached_bytes, |sum, d| sum.saturating_add(d.bytes)),
    }
}

/// Whether a recorded admission already covers `wanted` exactly.
pub fn covers(record: Option<&AdmittedSize>, wanted: &Resources) -> bool {
    record.and_then(|r| from_status(r).ok()).as_ref() == Some(wanted)
}

/// Decides `key` at `wanted` against the tenant's ledger built from
/// `servers` (which may include `key` itself with what it holds).
pub fn decide(
    tenant: &Tenant,
    servers: &[CountedServer],
    key: &ServerKey,
    wanted: &Resources,
) -> Result<Admission, AdmissionError> {
    let mut ledger = servers::ledger(&tenant.spec, &tenant.namespaces, servers)?;
    Ok(ledger.decide(key, wanted)?)
}

/// A refusal as the reason the server is blocked.
pub fn refusal(admission: &Admission) -> Option<Blocked> {
    match admission {
        Admission::Admitted => None,
        Admission::Refused { .. } => Some(Blocked::new(
            reason::QUOTA_EXCEEDED,
            format!("not built: {admission}"),
        )),
        Admission::Suspended { .. } => Some(Blocked::new(
            reason::SUSPENDED,
            format!("not built: {admission}"),
        )),
    }
}

/// The outcome of the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What `status.admitted` says after this stage.
    pub admitted: Option<AdmittedSize>,
    /// Why the server must not be built, when refused.
    pub refused: Option<Blocked>,
}

/// Admits (and records) or refuses the server. See the module docs.
pub async fn admit(
    ctx: &Context,
    server: &VirtualServer,
    plan: &Plan,
    tenant: Option<&Tenant>,
) -> Result<Verdict, AdmissionError> {
    let previous = server.status.as_ref().and_then(|s| s.admitted.clone());
    let wanted = requested(plan);
    let Some(tenant) = tenant else {
        return Ok(Verdict {
            admitted: previous,
            refused: None,
        });
    };
    if covers(previous.as_ref(), &wanted) {
        return Ok(Verdict {
            admitted: previous,
            refused: None,
        });
    }

    let lock = ctx.partner_locks.of(&tenant.partner);
    let _turn = lock.lock().await;
    let labelled = servers::labelled_namespaces(&ctx.client, &tenant.partner)
        .await
        .map_err(AdmissionError::List)?;
    let counted = servers::counted_namespaces(&tenant.partner, &tenant.namespaces, &labelled);
    let listed = servers::list(&ctx.client, &counted)
        .await
        .map_err(AdmissionError::List)?;
    let ns = server.namespace().unwrap_or_default();
    let key = ServerKey::new(ns.clone(), server.name_any());
    // What the server holds now, read fresh: the cached object may not show
    // a record written by the previous pass yet.
    let held = listed
        .iter()
        .find(|s| s.key == key)
        .and_then(|s| s.admitted.clone());
    let admission = decide(tenant, &listed, &key, &wanted)?;
    if let Some(blocked) = refusal(&admission) {
        tracing::info!(server = %format!("{ns}/{}", key.name), %admission, "not admitted");
        return Ok(Verdict {
            admitted: held,
            refused: Some(blocked),
        });
    }
    let record = to_status(&wanted);
    if !covers(held.as_ref(), &wanted) {
        crate::controllers::writes::record(&crate::controllers::writes::key(
            "VirtualServer",
            &ns,
            &key.name,
        ));
        Api::<VirtualServer>::namespaced(ctx.client.clone(), &ns)
            .patch_status(
                &key.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "admitted": record } })),
            )
            .await
            .map_err(AdmissionError::Record)?;
    }
    Ok(Verdict {
        admitted: Some(record),
        refused: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PartnerAccount;
    use crate::controllers::partner_account::quota::test_support::{GI, server};
    use crate::controllers::virtual_server::plan::PlannedDisk;

    const PARTNER: &str = r#"
apiVersion: partnercloud.io/v1alpha1
kind: PartnerAccount
metadata: {name: alfa, uid: u-1}
spec:
  displayName: Alfa
  program: Consolidated
  quota: {servers: 3, cores: 8}
  clients:
    - name: bakery
      quota: {cores: 4}
    - name: shop
      suspended: true
    - name: legacy
      namespace: old-legacy
"#;

    fn partner() -> PartnerAccount {
        serde_saphyr::from_str(PARTNER).unwrap()
    }

    fn observed(labels: &[(&str, &str)], partner: Option<PartnerAccount>) -> Observed {
        Observed {
            namespace_labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partner,
            ..Observed::default()
        }
    }

    fn client_ns(client: &str) -> Observed {
        observed(
            &[(labels::PARTNER, "alfa"), (labels::CLIENT, client)],
            Some(partner()),
        )
    }

    fn plan(cores: u32, memory_gi: u64, disks_gi: &[u64]) -> Plan {
        let disks = disks_gi
            .iter()
            .enumerate()
            .map(|(i, gi)| PlannedDisk {
                spec: serde_saphyr::from_str(&format!("name: d{i}\nsize: {gi}Gi\n")).unwrap(),
                bytes: gi * GI,
                system: i == 0,
                content: None,
            })
            .collect();
        Plan {
            cores,
            memory_bytes: memory_gi * GI,
            disks,
            iso_url: None,
            clone_snapshot: None,
            template: None,
            partner: None,
            client: None,
            detached_bytes: 0,
        }
    }

    fn held(ns: &str, name: &str, size: Resources) -> CountedServer {
        CountedServer {
            key: ServerKey::new(ns, name),
            admitted: Some(to_status(&size)),
            deleting: false,
        }
    }

    #[test]
    fn a_client_namespace_of_a_listed_client_has_a_tenant() {
        let t = tenant("alfa-bakery", &client_ns("bakery")).unwrap();
        assert_eq!(t.partner, "alfa");
        assert_eq!(t.client, "bakery");
        assert!(!t.client_suspended);
        let namespaces: Vec<_> = t.namespaces.iter().map(|n| n.namespace.as_str()).collect();
        assert_eq!(namespaces, ["alfa-bakery", "alfa-shop", "old-legacy"]);
        assert!(tenant("old-legacy", &client_ns("legacy")).is_some());
    }

    #[test]
    fn servers_outside_partner_namespaces_are_nobodys() {
        assert_eq!(tenant("default", &observed(&[], None)), None);
        // Labelled, but the partner does not exist (any more).
        assert_eq!(
            tenant(
                "alfa-bakery",
                &observed(
                    &[(labels::PARTNER, "alfa"), (labels::CLIENT, "bakery")],
                    None
                )
            ),
            None
        );
        // A client no longer in the spec.
        assert_eq!(tenant("alfa-gone", &client_ns("gone")), None);
        // Labels that do not match the namespace the client derives.
        assert_eq!(tenant("somewhere-else", &client_ns("bakery")), None);
        // Orphaned.
        let orphaned = observed(
            &[
                (labels::PARTNER, "alfa"),
                (labels::CLIENT, "bakery"),
                (ORPHANED_LABEL, ORPHANED),
            ],
            Some(partner()),
        );
        assert_eq!(tenant("alfa-bakery", &orphaned), None);
        assert!(super::orphaned(&orphaned));
        assert!(!super::orphaned(&client_ns("shop")));
        // Whatever its own power state, a server there is halted.
        assert_eq!(
            power(PowerState::Running, None, true),
            Power {
                state: PowerState::Stopped,
                suspended_by: None
            }
        );
        let why = orphaned_refusal("alfa-bakery");
        assert_eq!(why.reason, reason::ORPHANED);
        assert!(
            why.message.contains("nothing is deleted"),
            "{}",
            why.message
        );
    }

    #[test]
    fn suspension_halts_and_resuming_restores_the_servers_own_power() {
        let shop = tenant("alfa-shop", &client_ns("shop")).unwrap();
        let p = power(PowerState::Running, Some(&shop), false);
        assert_eq!(p.state, PowerState::Stopped);
        assert_eq!(p.suspended_by, Some(SuspendedBy::Client));

        let mut resumed = shop.clone();
        resumed.client_suspended = false;
        assert_eq!(
            power(PowerState::Running, Some(&resumed), false),
            Power {
                state: PowerState::Running,
                suspended_by: None
            }
        );
        assert_eq!(
            power(PowerState::Stopped, Some(&resumed), false).state,
            PowerState::Stopped
        );

        let mut partner_suspended = resumed;
        partner_suspended.spec.suspended = true;
        assert_eq!(
            power(PowerState::Running, Some(&partner_suspended), false).suspended_by,
            Some(SuspendedBy::Partner)
        );
        assert_eq!(
            power(PowerState::Running, None, false).state,
            PowerState::Running
        );
    }

    #[test]
    fn requested_is_guest_cores_memory_and_the_sum_of_disks() {
        assert_eq!(requested(&plan(2, 4, &[20, 10])), server(2, 4, 30));
        // Detached disks still count.
        let mut detached = plan(2, 4, &[20]);
        detached.detached_bytes = 50 * GI;
        assert_eq!(requested(&detached), server(2, 4, 70));
    }

    #[test]
    fn a_new_server_is_refused_with_requested_used_and_limit() {
        let t = tenant("alfa-bakery", &client_ns("bakery")).unwrap();
        let listed = vec![held("alfa-bakery", "db", server(3, 4, 10))];
        let key = ServerKey::new("alfa-bakery", "app");
        let admission = decide(&t, &listed, &key, &server(2, 4, 30)).unwrap();
        let blocked = refusal(&admission).unwrap();
        assert_eq!(blocked.reason, reason::QUOTA_EXCEEDED);
        assert_eq!(
            blocked.message,
            "not built: cores requested 2, used 3, limit 4 (client quota)"
        );
    }

    #[test]
    fn the_pool_counts_servers_of_every_client() {
        let t = tenant("alfa-bakery", &client_ns("bakery")).unwrap();
        let listed = vec![
            held("alfa-shop", "a", server(1, 1, 1)),
            held("old-legacy", "b", server(1, 1, 1)),
            held("alfa-bakery", "c", server(1, 1, 1)),
        ];
        let admission = decide(
            &t,
            &listed,
            &ServerKey::new("alfa-bakery", "d"),
            &server(1, 1, 1),
        )
        .unwrap();
        assert_eq!(
            admission.to_string(),
            "servers requested 1, used 3, limit 3 (partner pool)"
        );
    }

    #[test]
    fn a_resize_is_decided_on_its_growth_and_a_repeat_counts_once() {
        let t = tenant("alfa-bakery", &client_ns("bakery")).unwrap();
        let key = ServerKey::new("alfa-bakery", "app");
        let listed = vec![held("alfa-bakery", "app", server(3, 4, 10))];
        // 3 → 4 cores: exactly the client's 4.
        assert!(
            decide(&t, &listed, &key, &server(4, 4, 10))
                .unwrap()
                .is_admitted()
        );
        // Deciding the held size again is admitted (no double counting).
        assert!(
            decide(&t, &listed, &key, &server(3, 4, 10))
                .unwrap()
                .is_admitted()
        );
        let refused = decide(&t, &listed, &key, &server(5, 4, 10)).unwrap();
        assert_eq!(
            refused.to_string(),
            "cores requested 2 more (resize from 3 to 5), used 3, limit 4 (client quota)"
        );
    }

    #[test]
    fn a_suspended_client_gets_no_new_server() {
        let t = tenant("alfa-shop", &client_ns("shop")).unwrap();
        let admission =
            decide(&t, &[], &ServerKey::new("alfa-shop", "x"), &server(1, 1, 1)).unwrap();
        let blocked = refusal(&admission).unwrap();
        assert_eq!(blocked.reason, reason::SUSPENDED);
        assert!(
            blocked.message.contains("client suspended"),
            "{}",
            blocked.message
        );
    }

    #[test]
    fn a_record_covers_only_exactly_its_size() {
        let record = to_status(&server(2, 4, 30));
        assert!(covers(Some(&record), &server(2, 4, 30)));
        assert!(!covers(Some(&record), &server(2, 4, 31)));
        assert!(!covers(None, &server(2, 4, 30)));
    }
}
