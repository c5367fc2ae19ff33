//! The decision to admit one server, or one resize, against a client's
//! quota and the partner's pool.

use std::fmt;

use super::{Limits, Resource, Resources};
use crate::controllers::partner_account::suspension::SuspendedBy;

/// Condition reason on a refused server.
pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
/// Condition reason on a server refused because its client or partner is
/// suspended.
pub const SUSPENDED: &str = "Suspended";

/// What a server asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerRequest {
    /// Its effective size now (template defaults already applied), with
    /// `servers: 1`.
    pub wanted: Resources,
    /// What it already holds from an earlier admission: zero for a new
    /// server, its admitted size for a resize.
    pub held: Resources,
}

impl ServerRequest {
    /// A server not admitted before.
    pub fn new_server(wanted: Resources) -> Self {
        Self {
            wanted,
            held: Resources::default(),
        }
    }

    /// What admitting it adds, per resource (a shrink adds nothing).
    pub fn growth(&self) -> Resources {
        self.wanted.minus(&self.held)
    }
}

/// Whose limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client's own `spec.clients[].quota`.
    Client,
    /// The partner's pool, `spec.quota`.
    Partner,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Client => "client quota",
            Scope::Partner => "partner pool",
        })
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Admitting would take `resource` past a limit. The server is not built
    /// (or, for a resize, keeps its admitted size).
    Refused {
        resource: Resource,
        /// What the request adds (for a resize, the growth).
        requested: u64,
        /// What the server already held of it (0 for a new server).
        held: u64,
        /// What the scope holds now, this server's `held` included.
        used: u64,
        limit: u64,
        scope: Scope,
    },
    /// The client or partner is suspended: nothing new is admitted.
    Suspended {
        by: SuspendedBy,
    },
}

impl Admission {
    pub fn is_admitted(&self) -> bool {
        matches!(self, Admission::Admitted)
    }

    /// The condition reason for a refusal.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Admission::Admitted => None,
            Admission::Refused { .. } => Some(QUOTA_EXCEEDED),
            Admission::Suspended { .. } => Some(SUSPENDED),
        }
    }
}

/// `cores requested 8, used 60, limit 64 (partner pool)`; for a resize,
/// `cores requested 8 more (resize from 4 to 12), used 60, limit 64 (client
/// quota)`. The condition's reason says `QuotaExceeded`; `{:#}` prefixes it,
/// for an event note or a log line.
impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate()
            && let Some(reason) = self.reason()
        {
            write!(f, "{reason}: ")?;
        }
        match self {
            Admission::Admitted => f.write_str("admitted"),
            Admission::Refused {
                resource,
                requested,
                held,
                used,
                limit,
                scope,
            } => {
                let r = *resource;
                write!(f, "{r} requested {}", r.render(*requested))?;
                if *held > 0 {
                    write!(
                        f,
                        " more (resize from {} to {})",
                        r.render(*held),
                        r.render(held.saturating_add(*requested))
                    )?;
                }
                write!(
                    f,
                    ", used {}, limit {} ({scope})",
                    r.render(*used),
                    r.render(*limit)
                )
            }
            Admission::Suspended { by } => {
                write!(f, "{by} suspended; no new servers or growth until resumed")
            }
        }
    }
}

/// Decides one request against the client's quota, then the partner's pool.
///
/// Usages include everything already admitted, this server's `held` too, so
/// only the growth is checked: `used + growth <= limit`. A request that adds
/// nothing (a re-decision, a shrink) is always admitted, even where usage is
/// already over a limit that was lowered since. Checks run in a fixed order —
/// client before partner, then servers, cores, memory, storage — and the
/// first limit exceeded is the one reported.
pub fn decide(
    request: &ServerRequest,
    client_usage: &Resources,
    client_limit: &Limits,
    partner_usage: &Resources,
    partner_limit: &Limits,
) -> Admission {
    let growth = request.growth();
    for (scope, used, limits) in [
        (Scope::Client, client_usage, client_limit),
        (Scope::Partner, partner_usage, partner_limit),
    ] {
        for resource in Resource::ALL {
            let requested = growth.get(resource);
            let Some(limit) = limits.get(resource) else {
                continue;
            };
            let used = used.get(resource);
            if requested > 0 && used.saturating_add(requested) > limit {
                return Admission::Refused {
                    resource,
                    requested,
                    held: request.held.get(resource),
                    used,
                    limit,
                    scope,
                };
            }
        }
    }
    Admission::Admitted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::quota::test_support::{GI, server};

    fn limits(servers: u64, cores: u64, memory_gi: u64, storage_gi: u64) -> Limits {
        Limits {
            servers: Some(servers),
            cores: Some(cores),
            memory: Some(memory_gi * GI),
            storage: Some(storage_gi * GI),
        }
    }

    #[test]
    fn a_server_that_fits_both_scopes_is_admitted() {
        let a = decide(
            &ServerRequest::new_server(server(4, 8, 100)),
            &server(4, 8, 100),
            &limits(4, 16, 64, 2048),
            &server(4, 8, 100),
            &limits(20, 64, 256, 10240),
        );
        assert_eq!(a, Admission::Admitted);
    }

    #[test]
    fn partner_pool_refusal_reports_requested_used_and_limit() {
        let a = decide(
            &ServerRequest::new_server(server(8, 8, 100)),
            &Resources::default(),
            &Limits::default(),
            &Resources {
                servers: 10,
                cores: 60,
                memory: 100 * GI,
                storage: 1000 * GI,
            },
            &limits(20, 64, 256, 10240),
        );
        assert_eq!(
            a,
            Admission::Refused {
                resource: Resource::Cores,
                requested: 8,
                held: 0,
                used: 60,
                limit: 64,
                scope: Scope::Partner,
            }
        );
        assert_eq!(
            a.to_string(),
            "cores requested 8, used 60, limit 64 (partner pool)"
        );
        assert_eq!(
            format!("{a:#}"),
            "QuotaExceeded: cores requested 8, used 60, limit 64 (partner pool)"
        );
        assert_eq!(a.reason(), Some(QUOTA_EXCEEDED));
    }

    #[test]
    fn client_quota_is_checked_before_the_pool() {
        // Both would refuse; the client's limit is the one reported.
        let a = decide(
            &ServerRequest::new_server(server(8, 8, 100)),
            &server(12, 8, 100),
            &limits(4, 16, 64, 2048),
            &server(60, 8, 100),
            &limits(20, 64, 256, 10240),
        );
        assert!(matches!(
            a,
            Admission::Refused {
                scope: Scope::Client,
                resource: Resource::Cores,
                ..
            }
        ));
    }

    #[test]
    fn memory_and_storage_refusals_render_as_quantities() {
        let a = decide(
            &ServerRequest::new_server(server(1, 16, 10)),
            &server(1, 56, 10),
            &limits(4, 16, 64, 2048),
            &Resources::default(),
            &Limits::default(),
        );
        assert_eq!(
            a.to_string(),
            "memory requested 16Gi, used 56Gi, limit 64Gi (client quota)"
        );
    }

    #[test]
    fn exactly_reaching_a_limit_is_admitted_one_more_is_not() {
        let pool = limits(20, 64, 256, 10240);
        let used = Resources {
            servers: 1,
            cores: 56,
            memory: 0,
            storage: 0,
        };
        let fits = decide(
            &ServerRequest::new_server(server(8, 1, 1)),
            &Resources::default(),
            &Limits::default(),
            &used,
            &pool,
        );
        assert_eq!(fits, Admission::Admitted);
        let over = decide(
            &ServerRequest::new_server(server(9, 1, 1)),
            &Resources::default(),
            &Limits::default(),
            &used,
            &pool,
        );
        assert!(!over.is_admitted());
    }

    #[test]
    fn server_count_is_checked_first() {
        let a = decide(
            &ServerRequest::new_server(server(1, 1, 1)),
            &Resources {
                servers: 4,
                ..Resources::default()
            },
            &limits(4, 16, 64, 2048),
            &Resources::default(),
            &Limits::default(),
        );
        assert_eq!(
            a.to_string(),
            "servers requested 1, used 4, limit 4 (client quota)"
        );
    }

    #[test]
    fn resize_is_decided_on_the_growth_only() {
        // The server holds 4 cores of the 60 used; growing to 8 adds 4 → 64.
        let held = server(4, 8, 100);
        let request = ServerRequest {
            wanted: server(8, 8, 100),
            held,
        };
        let used = Resources {
            servers: 10,
            cores: 60,
            memory: 80 * GI,
            storage: 1000 * GI,
        };
        let pool = limits(20, 64, 256, 10240);
        assert_eq!(
            decide(&request, &used, &Limits::default(), &used, &pool),
            Admission::Admitted,
            "a full pool of servers (10 of 20) does not refuse a resize"
        );
        let bigger = ServerRequest {
            wanted: server(12, 8, 100),
            held,
        };
        let refused = decide(&bigger, &used, &Limits::default(), &used, &pool);
        assert_eq!(
            refused.to_string(),
            "cores requested 8 more (resize from 4 to 12), used 60, limit 64 (partner pool)"
        );
    }

    #[test]
    fn a_shrink_is_admitted_even_over_a_lowered_limit() {
        let request = ServerRequest {
            wanted: server(2, 8, 100),
            held: server(8, 8, 100),
        };
        let used = server(100, 500, 99999);
        assert_eq!(
            decide(
                &request,
                &used,
                &limits(1, 1, 1, 1),
                &used,
                &limits(1, 1, 1, 1)
            ),
            Admission::Admitted
        );
    }

    #[test]
    fn growing_one_resource_while_shrinking_another_checks_only_the_growth() {
        let request = ServerRequest {
            wanted: server(2, 16, 100),
            held: server(8, 8, 100),
        };
        let used = server(8, 60, 100);
        let refused = decide(
            &request,
            &used,
            &limits(4, 16, 64, 2048),
            &used,
            &Limits::default(),
        );
        assert!(matches!(
            refused,
            Admission::Refused {
                resource: Resource::Memory,
                requested,
                ..
            } if requested == 8 * GI
        ));
    }

    #[test]
    fn no_limits_admit_anything() {
        let a = decide(
            &ServerRequest::new_server(server(128, 1024, 65536)),
            &server(1000, 1000, 1000),
            &Limits::default(),
            &server(1000, 1000, 1000),
            &Limits::default(),
        );
        assert_eq!(a, Admission::Admitted);
    }

    #[test]
    fn a_zero_limit_refuses_any_growth() {
        let zero = Limits {
            servers: Some(0),
            ..Limits::default()
        };
        let a = decide(
            &ServerRequest::new_server(server(1, 1, 1)),
            &Resources::default(),
            &zero,
            &Resources::default(),
            &Limits::default(),
        );
        assert_eq!(
            a.to_string(),
            "servers requested 1, used 0, limit 0 (client quota)"
        );
    }

    #[test]
    fn suspended_message_names_who_is_suspended() {
        let a = Admission::Suspended {
            by: SuspendedBy::Partner,
        };
        assert_eq!(a.reason(), Some(SUSPENDED));
        assert_eq!(
            format!("{a:#}"),
            "Suspended: partner suspended; no new servers or growth until resumed"
        );
    }
}
