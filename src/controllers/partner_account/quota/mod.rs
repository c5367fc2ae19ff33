//! Quota in guest terms: what servers hold, what a client and a partner may
//! hold, and the decision to admit a server.
//!
//! Everything is counted from VirtualServer specs — guest cores, guest
//! memory, the sum of disk sizes, and the number of servers — never from
//! what the cluster's pods request (see the native ResourceQuota's docs for
//! why). Sizes are whole bytes and counts are integers; nothing here rounds.
//!
//! **Stopped servers count in full** — cores and memory as well as storage.
//! The quota is an allocation, decided once when a server is created or
//! resized, not a meter of what happens to run right now:
//! - starting a stopped server is a power action, and must never fail with
//!   `QuotaExceeded` because another server took its cores meanwhile;
//! - suspension stops every server of a client; resuming must bring every
//!   one of them back, which is only certain if stopped servers kept their
//!   share;
//! - the "stopped servers still hold their disks' storage" is then
//!   the special case that needs no special rule.
//!
//! A shrink (smaller size, or a deleted server) frees its share at once,
//! even though a running guest keeps its old size until it restarts: the
//! spec is the account, as the issue asks.

pub mod admission;
pub mod ledger;
pub mod record;

pub use admission::{Admission, QUOTA_EXCEEDED, Scope, ServerRequest, decide};
pub use ledger::{LedgerError, Pending, PoolLedger, ServerKey};
pub use record::{RecordError, from_status, to_status};

use std::fmt;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::api::partner_account::ResourceLimits;
use crate::api::quantity::{Bytes, QuantityError, parse_bytes};
use crate::api::server_template::TemplateDefaults;
use crate::api::virtual_server::VirtualServerSpec;

/// Why limits or a server's size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("{field}: {source}")]
    Quantity {
        field: String,
        #[source]
        source: QuantityError,
    },
    #[error("the server's {0} is not set and its template gives no default; it cannot be counted")]
    Unresolved(Resource),
}

/// One countable resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Servers,
    Cores,
    Memory,
    Storage,
}

impl Resource {
    /// Every resource, in the order decisions check and messages list them.
    pub const ALL: [Resource; 4] = [
        Resource::Servers,
        Resource::Cores,
        Resource::Memory,
        Resource::Storage,
    ];

    /// The name used in messages and in `spec.quota`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Servers => "servers",
            Resource::Cores => "cores",
            Resource::Memory => "memory",
            Resource::Storage => "storage",
        }
    }

    /// An amount of this resource as a person reads it: counts as numbers,
    /// bytes in canonical quantity form (`64Gi`).
    pub fn render(self, amount: u64) -> String {
        match self {
            Resource::Servers | Resource::Cores => amount.to_string(),
            Resource::Memory | Resource::Storage => Bytes(amount).to_string(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Amounts of every resource: one server's size (with `servers: 1`), or a
/// sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub servers: u64,
    pub cores: u64,
    /// Bytes of guest memory.
    pub memory: u64,
    /// Bytes of disk.
    pub storage: u64,
}

impl Resources {
    pub fn get(&self, r: Resource) -> u64 {
        match r {
            Resource::Servers => self.servers,
            Resource::Cores => self.cores,
            Resource::Memory => self.memory,
            Resource::Storage => self.storage,
        }
    }

    fn zip(&self, other: &Self, f: impl Fn(u64, u64) -> u64) -> Self {
        Self {
            servers: f(self.servers, other.servers),
            cores: f(self.cores, other.cores),
            memory: f(self.memory, other.memory),
            storage: f(self.storage, other.storage),
        }
    }

    /// The sum, saturating (sums of real sizes never come near `u64::MAX`).
    pub fn plus(&self, other: &Self) -> Self {
        self.zip(other, u64::saturating_add)
    }

    /// The difference, floored at zero per resource.
    pub fn minus(&self, other: &Self) -> Self {
        self.zip(other, u64::saturating_sub)
    }

    /// Whether every resource is at most `other`'s.
    pub fn fits_within(&self, other: &Self) -> bool {
        Resource::ALL.iter().all(|r| self.get(*r) <= other.get(*r))
    }
}

/// The sum of some servers' sizes.
pub fn usage<'a>(servers: impl IntoIterator<Item = &'a Resources>) -> Resources {
    servers
        .into_iter()
        .fold(Resources::default(), |sum, s| sum.plus(s))
}

/// What a client or a partner may hold; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub servers: Option<u64>,
    pub cores: Option<u64>,
    pub memory: Option<u64>,
    pub storage: Option<u64>,
}

impl Limits {
    /// Reads `spec.quota` or `spec.clients[].quota`; `field` names it in
    /// errors. No quota is no limit.
    pub fn from_spec(spec: Option<&ResourceLimits>, field: &str) -> Result<Self, QuotaError> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        let bytes = |q: Option<&Quantity>, name: &str| {
            q.map(|q| parse_bytes(&q.0))
                .transpose()
                .map_err(|source| QuotaError::Quantity {
                    field: format!("{field}.{name}"),
                    source,
                })
        };
        Ok(Self {
            servers: spec.servers.map(u64::from),
            cores: spec.cores.map(u64::from),
            memory: bytes(spec.memory.as_ref(), "memory")?,
            storage: bytes(spec.storage.as_ref(), "storage")?,
        })
    }

    pub fn get(&self, r: Resource) -> Option<u64> {
        match r {
            Resource::Servers => self.servers,
            Resource::Cores => self.cores,
            Resource::Memory => self.memory,
            Resource::Storage => self.storage,
        }
    }

    /// Per resource, the tighter of two limits (a limit beats none).
    pub fn tightest(&self, other: &Self) -> Self {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            servers: min(self.servers, other.servers),
            cores: min(self.cores, other.cores),
            memory: min(self.memory, other.memory),
            storage: min(self.storage, other.storage),
        }
    }
}

/// The size a server holds, in guest terms: its cores and memory — the
/// spec's, or its template's defaults when the spec leaves them out — and
/// the sum of its disk sizes; `servers` is 1.
///
/// `template_defaults` is the ServerTemplate's `spec.defaults`, fetched by
/// the caller when the server deploys from a template.
pub fn server_size(
    spec: &VirtualServerSpec,
    template_defaults: Option<&TemplateDefaults>,
) -> Result<Resources, QuotaError> {
    let cores = spec
        .cores
        .or_else(|| template_defaults.and_then(|d| d.cores))
        .ok_or(QuotaError::Unresolved(Resource::Cores))?;
    let memory = spec
        .memory
        .as_ref()
        .or_else(|| template_defaults.and_then(|d| d.memory.as_ref()))
        .ok_or(QuotaError::Unresolved(Resource::Memory))?;
    let memory = parse_bytes(&memory.0).map_err(|source| QuotaError::Quantity {
        field: "spec.memory".into(),
        source,
    })?;
    let mut storage = 0u64;
    for disk in &spec.disks {
        let size = parse_bytes(&disk.size.0).map_err(|source| QuotaError::Quantity {
            field: format!("spec.disks[{}].size", disk.name),
            source,
        })?;
        storage = storage.saturating_add(size);
    }
    Ok(Resources {
        servers: 1,
        cores: u64::from(cores),
        memory,
        storage,
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Resources;

    pub const GI: u64 = 1 << 30;

    /// One server of `cores` cores, `memory_gi` GiB and `storage_gi` GiB.
    pub fn server(cores: u64, memory_gi: u64, storage_gi: u64) -> Resources {
        Resources {
            servers: 1,
            cores,
            memory: memory_gi * GI,
            storage: storage_gi * GI,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{GI, server};
    use super::*;

    const SERVER: &str = include_str!("../../../../tests/fixtures/virtualserver.yaml");

    fn spec(yaml: &str) -> VirtualServerSpec {
        let vs: crate::api::VirtualServer = serde_saphyr::from_str(yaml).unwrap();
        vs.spec
    }

    #[test]
    fn server_size_sums_disks_and_takes_guest_cores_and_memory() {
        // 8 cores, 32Gi, disks 120Gi + 500Gi.
        assert_eq!(
            server_size(&spec(SERVER), None).unwrap(),
            Resources {
                servers: 1,
                cores: 8,
                memory: 32 * GI,
                storage: 620 * GI,
            }
        );
    }

    #[test]
    fn template_defaults_fill_in_omitted_cores_and_memory() {
        let mut s = spec(SERVER);
        s.cores = None;
        s.memory = None;
        let defaults: TemplateDefaults = serde_saphyr::from_str("cores: 4\nmemory: 8Gi\n").unwrap();
        let size = server_size(&s, Some(&defaults)).unwrap();
        assert_eq!((size.cores, size.memory), (4, 8 * GI));
    }

    #[test]
    fn the_servers_own_values_beat_template_defaults() {
        let defaults: TemplateDefaults = serde_saphyr::from_str("cores: 2\nmemory: 4Gi\n").unwrap();
        let size = server_size(&spec(SERVER), Some(&defaults)).unwrap();
        assert_eq!((size.cores, size.memory), (8, 32 * GI));
    }

    #[test]
    fn unresolvable_size_is_an_error_naming_what_is_missing() {
        let mut s = spec(SERVER);
        s.memory = None;
        let defaults: TemplateDefaults = serde_saphyr::from_str("cores: 2\n").unwrap();
        assert_eq!(
            server_size(&s, Some(&defaults)),
            Err(QuotaError::Unresolved(Resource::Memory))
        );
        s.cores = None;
        assert_eq!(
            server_size(&s, None),
            Err(QuotaError::Unresolved(Resource::Cores))
        );
    }

    #[test]
    fn same_size_in_any_notation_counts_the_same() {
        let mut s = spec(SERVER);
        s.memory = Some(Quantity("32768Mi".into()));
        s.disks[0].size = Quantity("128849018880".into());
        assert_eq!(
            server_size(&s, None).unwrap(),
            server_size(&spec(SERVER), None).unwrap()
        );
    }

    #[test]
    fn unreadable_disk_size_names_the_disk() {
        let mut s = spec(SERVER);
        s.disks[1].size = Quantity("0.5".into());
        let err = server_size(&s, None).unwrap_err();
        assert!(
            err.to_string().contains("spec.disks[database].size"),
            "{err}"
        );
    }

    #[test]
    fn usage_is_the_sum_of_server_sizes() {
        let total = usage(&[server(2, 4, 100), server(4, 8, 50)]);
        assert_eq!(
            total,
            Resources {
                servers: 2,
                cores: 6,
                memory: 12 * GI,
                storage: 150 * GI,
            }
        );
        assert_eq!(usage(&[]), Resources::default());
    }

    #[test]
    fn limits_from_spec_parse_quantities_to_bytes() {
        let spec: ResourceLimits =
            serde_saphyr::from_str("cores: 64\nmemory: 256Gi\nstorage: 10Ti\nservers: 20\n")
                .unwrap();
        assert_eq!(
            Limits::from_spec(Some(&spec), "spec.quota").unwrap(),
            Limits {
                servers: Some(20),
                cores: Some(64),
                memory: Some(256 * GI),
                storage: Some(10 * 1024 * GI),
            }
        );
        assert_eq!(
            Limits::from_spec(None, "spec.quota").unwrap(),
            Limits::default()
        );
    }

    #[test]
    fn unreadable_limit_names_its_field() {
        let spec: ResourceLimits = serde_saphyr::from_str("storage: 1.5\n").unwrap();
        let err = Limits::from_spec(Some(&spec), "spec.quota").unwrap_err();
        assert!(err.to_string().starts_with("spec.quota.storage:"), "{err}");
    }

    #[test]
    fn tightest_takes_the_smaller_limit_and_any_limit_over_none() {
        let a = Limits {
            servers: Some(5),
            cores: None,
            memory: Some(10),
            storage: None,
        };
        let b = Limits {
            servers: Some(3),
            cores: Some(8),
            memory: None,
            storage: None,
        };
        assert_eq!(
            a.tightest(&b),
            Limits {
                servers: Some(3),
                cores: Some(8),
                memory: Some(10),
                storage: None,
            }
        );
    }

    #[test]
    fn arithmetic_never_underflows() {
        let small = server(1, 1, 1);
        let big = server(4, 4, 4);
        assert_eq!(small.minus(&big), Resources::default());
        assert!(small.fits_within(&big));
        assert!(!big.fits_within(&small));
    }

    #[test]
    fn amounts_render_as_people_read_them() {
        assert_eq!(Resource::Cores.render(8), "8");
        assert_eq!(Resource::Memory.render(64 * GI), "64Gi");
        assert_eq!(Resource::Storage.render(1536 * (1 << 20)), "1536Mi");
    }
}
