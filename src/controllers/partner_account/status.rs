//! The PartnerAccount's status: each client's usage, the partner's totals,
//! and the conditions `Ready` and `QuotaPressure`.
//!
//! Usage is what the ledger holds — admitted servers at their admitted
//! sizes — so status, decisions and (later) billing all read one account.
//! Limits stay in the spec and are not copied into status; billing adds its
//! own fields beside `clients[].usage` and `totals` without reshaping them.
//!
//! `QuotaPressure` is a warning, not a failure: it never makes `Ready`
//! false. All arithmetic is on integers: "past 90%" is `used * 10 > limit
//! * 9`, computed in `u128` so no size can overflow it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::PartnerAccount;
use crate::api::conditions::{self, Decided, READY};
use crate::api::partner_account::{ClientStatus, PartnerAccountSpec, PartnerAccountStatus, Usage};
use crate::controllers::partner_account::naming::ClientNamespace;
use crate::controllers::partner_account::quota::{
    Limits, PoolLedger, QuotaError, Resource, Resources, usage,
};
use crate::controllers::partner_account::servers::{self, CountedServer};

/// Condition type: some usage is past 90% of its limit.
pub const QUOTA_PRESSURE: &str = "QuotaPressure";

/// `Ready` reasons.
pub const RECONCILED: &str = "Reconciled";
/// `QuotaPressure` reasons.
pub const NEAR_LIMIT: &str = "NearLimit";
pub const OVER_LIMIT: &str = "OverLimit";
pub const WITHIN_LIMITS: &str = "WithinLimits";

/// How many limits a `QuotaPressure` message names before summarising.
pub const MAX_NAMED_LIMITS: usize = 5;

/// What the driver learned about one client this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientReport {
    pub name: String,
    pub namespace: String,
    /// The client's own `suspended`.
    pub suspended: bool,
    pub limit: Limits,
    /// What its admitted servers hold.
    pub usage: Resources,
}

/// Each client's report, in spec order, from the spec and the pass's
/// ledger (after its decisions). A client whose namespace is not in
/// `namespaces` is skipped: naming failed for it and the build reported why.
pub fn client_reports(
    spec: &PartnerAccountSpec,
    namespaces: &[ClientNamespace],
    ledger: &PoolLedger,
) -> Result<Vec<ClientReport>, QuotaError> {
    let mut reports = Vec::with_capacity(spec.clients.len());
    for client in &spec.clients {
        let Some(target) = namespaces.iter().find(|n| n.client == client.name) else {
            continue;
        };
        reports.push(ClientReport {
            name: client.name.clone(),
            namespace: target.namespace.clone(),
            suspended: client.suspended,
            limit: Limits::from_spec(
                client.quota.as_ref(),
                &format!("spec.clients[{}].quota", client.name),
            )?,
            usage: ledger
                .client_usage(&target.namespace)
                .copied()
                .unwrap_or_default(),
        });
    }
    Ok(reports)
}

/// How the apply step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every child was applied.
    Applied,
    /// A stage failed; `reason` is its stable error variant name.
    Failed { reason: String, message: String },
}

/// The status as decided, before condition timestamps are attached.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredStatus {
    pub clients: Vec<ClientStatus>,
    pub totals: Usage,
    /// `QuotaPressure` and `Ready`.
    pub conditions: Vec<Decided>,
}

impl DesiredStatus {
    /// The status to write: conditions merged with the previous ones so a
    /// condition's `lastTransitionTime` moves only when it flips. `now` is
    /// injected; nothing here reads a clock.
    pub fn into_status(
        self,
        previous: Option<&PartnerAccountStatus>,
        generation: Option<i64>,
        now: &Time,
    ) -> PartnerAccountStatus {
        let previous_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
        PartnerAccountStatus {
            observed_generation: generation,
            client_count: i32::try_from(self.clients.len()).unwrap_or(i32::MAX),
            clients: self.clients,
            totals: Some(self.totals),
            conditions: conditions::merge(previous_conditions, &self.conditions, generation, now),
        }
    }
}

/// The status of one pass: usage from the recorded admissions of the
/// counted `servers` (the same ledger the admission decisions use), for the
/// clients whose namespaces are in `targets`; `Ready` from `outcome`.
/// Limits that cannot be read count as none here — the build reports them.
pub fn compute(
    partner: &PartnerAccount,
    targets: &[ClientNamespace],
    servers: &[CountedServer],
    outcome: &Outcome,
    now: &Time,
) -> PartnerAccountStatus {
    let spec = &partner.spec;
    let pool = Limits::from_spec(spec.quota.as_ref(), "spec.quota").unwrap_or_default();
    let reports = servers::ledger(spec, targets, servers)
        .and_then(|ledger| client_reports(spec, targets, &ledger))
        .unwrap_or_default();
    desired_status(&pool, spec.suspended, &reports, outcome).into_status(
        partner.status.as_ref(),
        partner.metadata.generation,
        now,
    )
}

/// Whether `next` says anything `previous` did not, ignoring condition
/// timestamps — write status only then.
pub fn changed(previous: Option<&PartnerAccountStatus>, next: &PartnerAccountStatus) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    previous.observed_generation != next.observed_generation
        || previous.client_count != next.client_count
        || previous.clients != next.clients
        || previous.totals != next.totals
        || !conditions::same(&previous.conditions, &next.conditions)
}

/// A usage as status shows it: counts, and sizes in canonical form.
pub fn usage_view(r: &Resources) -> Usage {
    Usage {
        servers: u32::try_from(r.servers).unwrap_or(u32::MAX),
        cores: u32::try_from(r.cores).unwrap_or(u32::MAX),
        memory: Resource::Memory.render(r.memory),
        storage: Resource::Storage.render(r.storage),
    }
}

/// One client's status; suspended when it or the whole partner is.
pub fn client_status(report: &ClientReport, partner_suspended: bool) -> ClientStatus {
    ClientStatus {
        name: report.name.clone(),
        namespace: report.namespace.clone(),
        suspended: report.suspended || partner_suspended,
        usage: usage_view(&report.usage),
    }
}

/// The whole status, from the pool's limits, each client's report (in spec
/// order) and how this pass went.
pub fn desired_status(
    pool: &Limits,
    partner_suspended: bool,
    clients: &[ClientReport],
    outcome: &Outcome,
) -> DesiredStatus {
    let totals = usage(clients.iter().map(|c| &c.usage));
    DesiredStatus {
        clients: clients
            .iter()
            .map(|c| client_status(c, partner_suspended))
            .collect(),
        totals: usage_view(&totals),
        conditions: vec![
            quota_pressure(pool, &totals, clients),
            ready(outcome, clients.len(), partner_suspended),
        ],
    }
}

/// `Ready`: true once every child was applied; otherwise the failing
/// stage's reason and message.
pub fn ready(outcome: &Outcome, client_count: usize, partner_suspended: bool) -> Decided {
    match outcome {
        Outcome::Applied => {
            let mut message = match client_count {
                1 => "1 client namespace set up".to_string(),
                n => format!("{n} client namespaces set up"),
            };
            if partner_suspended {
                message.push_str("; partner suspended: all servers halted");
            }
            Decided::yes(READY, RECONCILED, message)
        }
        Outcome::Failed { reason, message } => Decided::no(READY, reason.clone(), message.clone()),
    }
}

/// One limit past 90%.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pressure {
    scope: String,
    resource: Resource,
    used: u64,
    limit: u64,
}

impl Pressure {
    fn over(&self) -> bool {
        self.used > self.limit
    }

    fn describe(&self) -> String {
        let r = self.resource;
        let percent = u128::from(self.used) * 100 / u128::from(self.limit.max(1));
        format!(
            "{} {r} {}/{} ({percent}%{})",
            self.scope,
            r.render(self.used),
            r.render(self.limit),
            if self.over() { ", over limit" } else { "" }
        )
    }
}

/// Whether `used` is past 90% of `limit`, in integers only.
pub fn past_ninety_percent(used: u64, limit: u64) -> bool {
    u128::from(used) * 10 > u128::from(limit) * 9
}

fn pressures(scope: &str, used: &Resources, limit: &Limits) -> Vec<Pressure> {
    Resource::ALL
        .into_iter()
        .filter_map(|r| {
            let limit = limit.get(r)?;
            let used = used.get(r);
            past_ninety_percent(used, limit).then(|| Pressure {
                scope: scope.to_string(),
                resource: r,
                used,
                limit,
            })
        })
        .collect()
}

/// `QuotaPressure`: true when any usage — the pool's or a client's — is past
/// 90% of its limit, naming which (the pool first, then clients in spec
/// order, at most [`MAX_NAMED_LIMITS`]). Reason `OverLimit` when some usage
/// is beyond its limit (a limit lowered below what is already admitted),
/// `NearLimit` otherwise.
pub fn quota_pressure(pool: &Limits, totals: &Resources, clients: &[ClientReport]) -> Decided {
    let mut found = pressures("pool", totals, pool);
    for c in clients {
        found.extend(pressures(&format!("client {}", c.name), &c.usage, &c.limit));
    }
    if found.is_empty() {
        return Decided::no(
            QUOTA_PRESSURE,
            WITHIN_LIMITS,
            "no usage is past 90% of its limit",
        );
    }
    let reason = if found.iter().any(Pressure::over) {
        OVER_LIMIT
    } else {
        NEAR_LIMIT
    };
    let mut message = found
        .iter()
        .take(MAX_NAMED_LIMITS)
        .map(Pressure::describe)
        .collect::<Vec<_>>()
        .join("; ");
    if found.len() > MAX_NAMED_LIMITS {
        message.push_str(&format!("; and {} more", found.len() - MAX_NAMED_LIMITS));
    }
    Decided::yes(QUOTA_PRESSURE, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{FALSE, TRUE};
    use crate::controllers::partner_account::fixtures::{WHITE_LABEL, partner};
    use crate::controllers::partner_account::naming::client_namespaces;
    use crate::controllers::partner_account::quota::ServerKey;
    use crate::controllers::partner_account::quota::test_support::{GI, server};

    fn pool() -> Limits {
        Limits {
            servers: Some(20),
            cores: Some(64),
            memory: Some(256 * GI),
            storage: Some(10240 * GI),
        }
    }

    fn report(name: &str, limit: Limits, usage: Resources) -> ClientReport {
        ClientReport {
            name: name.into(),
            namespace: format!("alfa-soft-{name}"),
            suspended: false,
            limit,
            usage,
        }
    }

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn condition<'a>(d: &'a DesiredStatus, type_: &str) -> &'a Decided {
        d.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn reports_read_limits_from_the_spec_and_usage_from_the_ledger() {
        let p = partner(WHITE_LABEL);
        let namespaces = client_namespaces("alfa-soft", &p.spec.clients, None).unwrap();
        let mut ledger = PoolLedger::from_spec(&p.spec, &namespaces).unwrap();
        ledger
            .record(ServerKey::new("alfa-soft-bakery", "db"), server(4, 16, 620))
            .unwrap();
        let reports = client_reports(&p.spec, &namespaces, &ledger).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].name, "bakery");
        assert_eq!(reports[0].usage, server(4, 16, 620));
        assert_eq!(reports[0].limit.cores, Some(16));
        assert_eq!(reports[1].name, "autoparts");
        assert_eq!(reports[1].namespace, "alfa-soft-autoparts");
        assert_eq!(reports[1].usage, Resources::default());
        assert_eq!(reports[1].limit, Limits::default());
        let d = desired_status(
            &Limits::from_spec(p.spec.quota.as_ref(), "spec.quota").unwrap(),
            p.spec.suspended,
            &reports,
            &Outcome::Applied,
        );
        assert_eq!(d.totals.cores, 4);
        assert_eq!(d.totals.storage, "620Gi");
    }

    #[test]
    fn compute_counts_recorded_servers_of_the_given_namespaces_only() {
        use crate::controllers::partner_account::quota::to_status;
        let p = partner(WHITE_LABEL);
        let all = client_namespaces("alfa-soft", &p.spec.clients, None).unwrap();
        // autoparts' namespace was refused this pass: not reported.
        let counted: Vec<_> = all
            .iter()
            .filter(|t| t.client == "bakery")
            .cloned()
            .collect();
        let servers = vec![
            CountedServer {
                key: ServerKey::new("alfa-soft-bakery", "db"),
                admitted: Some(to_status(&server(15, 16, 100))),
                deleting: false,
            },
            CountedServer {
                key: ServerKey::new("alfa-soft-bakery", "refused"),
                admitted: None,
                deleting: false,
            },
        ];
        let now = time("2026-03-01T10:00:00Z");
        let status = compute(&p, &counted, &servers, &Outcome::Applied, &now);
        assert_eq!(status.client_count, 1);
        assert_eq!(status.clients[0].usage.cores, 15);
        assert_eq!(status.totals.as_ref().unwrap().servers, 1);
        assert_eq!(status.observed_generation, Some(3));
        let pressure = conditions::find(&status.conditions, QUOTA_PRESSURE).unwrap();
        assert_eq!(pressure.status, TRUE, "15 of bakery's 16 cores");
        assert!(
            pressure.message.contains("client bakery cores 15/16"),
            "{}",
            pressure.message
        );

        let failed = compute(
            &p,
            &counted,
            &servers,
            &Outcome::Failed {
                reason: "NamespaceTaken".into(),
                message: "client autoparts: ...".into(),
            },
            &now,
        );
        let ready = conditions::find(&failed.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (FALSE, "NamespaceTaken")
        );
        assert!(changed(Some(&status), &failed));
        assert!(!changed(
            Some(&status),
            &compute(&p, &counted, &servers, &Outcome::Applied, &now)
        ));
    }

    #[test]
    fn ninety_percent_exactly_is_not_pressure_one_more_is() {
        assert!(!past_ninety_percent(90, 100));
        assert!(past_ninety_percent(91, 100));
        assert!(!past_ninety_percent(57, 64), "57/64 is 89%");
        assert!(past_ninety_percent(58, 64), "58/64 is 90.6%");
        assert!(!past_ninety_percent(0, 0), "nothing used of nothing");
        assert!(past_ninety_percent(1, 0));
        assert!(
            past_ninety_percent(u64::MAX, u64::MAX - 1),
            "no overflow at the top"
        );
    }

    #[test]
    fn client_status_shows_usage_in_canonical_form() {
        let s = client_status(&report("bakery", pool(), server(4, 16, 620)), false);
        assert_eq!(
            s,
            ClientStatus {
                name: "bakery".into(),
                namespace: "alfa-soft-bakery".into(),
                suspended: false,
                usage: Usage {
                    servers: 1,
                    cores: 4,
                    memory: "16Gi".into(),
                    storage: "620Gi".into(),
                },
            }
        );
    }

    #[test]
    fn partner_suspension_shows_on_every_client() {
        let mut own = report("a", Limits::default(), Resources::default());
        assert!(!client_status(&own, false).suspended);
        assert!(client_status(&own, true).suspended);
        own.suspended = true;
        assert!(client_status(&own, false).suspended);
    }

    #[test]
    fn totals_are_the_sum_of_clients() {
        let d = desired_status(
            &pool(),
            false,
            &[
                report("a", Limits::default(), server(4, 16, 100)),
                report("b", Limits::default(), server(2, 8, 50)),
            ],
            &Outcome::Applied,
        );
        assert_eq!(
            d.totals,
            Usage {
                servers: 2,
                cores: 6,
                memory: "24Gi".into(),
                storage: "150Gi".into(),
            }
        );
        assert_eq!(d.clients.len(), 2);
    }

    #[test]
    fn no_pressure_below_ninety_percent() {
        let d = desired_status(
            &pool(),
            false,
            &[report("a", pool(), server(32, 128, 5000))],
            &Outcome::Applied,
        );
        let c = condition(&d, QUOTA_PRESSURE);
        assert_eq!(c.status, FALSE);
        assert_eq!(c.reason, WITHIN_LIMITS);
    }

    #[test]
    fn pool_pressure_names_the_resource_and_the_numbers() {
        let d = desired_status(
            &pool(),
            false,
            &[
                report("a", Limits::default(), server(40, 8, 100)),
                report("b", Limits::default(), server(20, 8, 100)),
            ],
            &Outcome::Applied,
        );
        let c = condition(&d, QUOTA_PRESSURE);
        assert_eq!(c.status, TRUE);
        assert_eq!(c.reason, NEAR_LIMIT);
        assert_eq!(c.message, "pool cores 60/64 (93%)");
    }

    #[test]
    fn client_pressure_names_the_client() {
        let bakery = Limits {
            memory: Some(64 * GI),
            ..Limits::default()
        };
        let d = desired_status(
            &pool(),
            false,
            &[report("bakery", bakery, server(2, 60, 100))],
            &Outcome::Applied,
        );
        assert_eq!(
            condition(&d, QUOTA_PRESSURE).message,
            "client bakery memory 60Gi/64Gi (93%)"
        );
    }

    #[test]
    fn usage_beyond_a_lowered_limit_is_over_limit() {
        let small = Limits {
            servers: Some(1),
            ..Limits::default()
        };
        let mut usage = server(1, 1, 1);
        usage.servers = 3;
        let d = desired_status(
            &Limits::default(),
            false,
            &[report("a", small, usage)],
            &Outcome::Applied,
        );
        let c = condition(&d, QUOTA_PRESSURE);
        assert_eq!(c.reason, OVER_LIMIT);
        assert_eq!(c.message, "client a servers 3/1 (300%, over limit)");
    }

    #[test]
    fn many_pressures_are_summarised() {
        let tight = Limits {
            servers: Some(1),
            cores: Some(1),
            memory: Some(GI),
            storage: Some(GI),
        };
        let clients: Vec<_> = (0..3)
            .map(|i| report(&format!("c{i}"), tight, server(1, 1, 1)))
            .collect();
        let d = desired_status(&Limits::default(), false, &clients, &Outcome::Applied);
        let message = &condition(&d, QUOTA_PRESSURE).message;
        assert!(
            message.starts_with("client c0 servers 1/1 (100%)"),
            "{message}"
        );
        assert!(message.ends_with("; and 7 more"), "{message}");
        assert_eq!(message.matches(';').count(), MAX_NAMED_LIMITS);
    }

    #[test]
    fn pressure_does_not_make_the_partner_unready() {
        let d = desired_status(
            &pool(),
            false,
            &[report("a", Limits::default(), server(64, 8, 100))],
            &Outcome::Applied,
        );
        assert!(condition(&d, QUOTA_PRESSURE).is_true());
        assert!(condition(&d, READY).is_true());
    }

    #[test]
    fn ready_reports_the_failing_stage() {
        let d = desired_status(
            &pool(),
            false,
            &[],
            &Outcome::Failed {
                reason: "Naming".into(),
                message: "partner name \"a.b\" is not a DNS label".into(),
            },
        );
        let c = condition(&d, READY);
        assert_eq!(c.status, FALSE);
        assert_eq!(c.reason, "Naming");
    }

    #[test]
    fn ready_message_counts_clients_and_says_when_suspended() {
        assert_eq!(
            ready(&Outcome::Applied, 2, false).message,
            "2 client namespaces set up"
        );
        assert_eq!(
            ready(&Outcome::Applied, 1, true).message,
            "1 client namespace set up; partner suspended: all servers halted"
        );
    }

    #[test]
    fn both_conditions_are_always_present() {
        let d = desired_status(&Limits::default(), false, &[], &Outcome::Applied);
        let mut types: Vec<_> = d.conditions.iter().map(|c| c.type_).collect();
        types.sort();
        assert_eq!(types, [QUOTA_PRESSURE, READY]);
    }

    #[test]
    fn status_carries_generation_and_client_count() {
        let d = desired_status(
            &pool(),
            false,
            &[report("a", Limits::default(), Resources::default())],
            &Outcome::Applied,
        );
        let s = d.into_status(None, Some(3), &time("2026-03-01T09:00:00Z"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.client_count, 1);
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
    }

    #[test]
    fn an_unchanged_pass_writes_nothing_even_at_a_later_time() {
        let decide = || {
            desired_status(
                &pool(),
                false,
                &[report("a", Limits::default(), server(4, 8, 100))],
                &Outcome::Applied,
            )
        };
        let first = decide().into_status(None, Some(1), &time("2026-03-01T09:00:00Z"));
        let second = decide().into_status(Some(&first), Some(1), &time("2026-03-01T10:00:00Z"));
        assert!(!changed(Some(&first), &second));
        assert_eq!(second, first, "timestamps kept too");
        assert!(changed(None, &first));
    }

    #[test]
    fn new_usage_is_a_change_worth_writing() {
        let at = time("2026-03-01T09:00:00Z");
        let first = desired_status(
            &pool(),
            false,
            &[report("a", Limits::default(), server(4, 8, 100))],
            &Outcome::Applied,
        )
        .into_status(None, Some(1), &at);
        let second = desired_status(
            &pool(),
            false,
            &[report("a", Limits::default(), server(8, 8, 100))],
            &Outcome::Applied,
        )
        .into_status(Some(&first), Some(1), &at);
        assert!(changed(Some(&first), &second));
    }

    #[test]
    fn pressure_flip_moves_only_its_own_transition_time() {
        let t0 = time("2026-03-01T09:00:00Z");
        let t1 = time("2026-03-01T10:00:00Z");
        let calm = desired_status(
            &pool(),
            false,
            &[report("a", Limits::default(), server(4, 8, 100))],
            &Outcome::Applied,
        )
        .into_status(None, Some(1), &t0);
        let busy = desired_status(
            &pool(),
            false,
            &[report("a", Limits::default(), server(60, 8, 100))],
            &Outcome::Applied,
        )
        .into_status(Some(&calm), Some(1), &t1);
        let by_type = |s: &PartnerAccountStatus, t: &str| {
            conditions::find(&s.conditions, t)
                .unwrap()
                .last_transition_time
                .clone()
        };
        assert_eq!(by_type(&busy, QUOTA_PRESSURE), t1);
        assert_eq!(by_type(&busy, READY), t0);
    }
}
