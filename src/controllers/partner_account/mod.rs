//! The PartnerAccount controller: a partner's client namespaces with their
//! quota, admin binding and isolation, its white-label branding, pooled
//! guest-terms quota and suspension.
//!
//! This module holds the pure part — everything decided from the spec and
//! what the driver has already read, with no client, no I/O and no clock:
//!
//! - [`naming`]: namespace names and labels;
//! - [`build`]: the desired children, one file per kind, and the
//!   [`build::Children`] the apply step must consume whole;
//! - [`rbac`]: the ClusterRole the admins are bound to (shipped in
//!   `manifests/rbac/`);
//! - [`quota`]: server sizes, the admission decision and the per-partner
//!   ledger that keeps the pool atomic;
//! - [`suspension`]: the effective run strategy of a server;
//! - [`status`]: usage, totals and the conditions `Ready` and
//!   `QuotaPressure`.

pub mod build;
pub mod naming;
pub mod quota;
pub mod rbac;
pub mod status;
pub mod suspension;

/// PartnerAccounts for unit tests, read from YAML as the API server would
/// return them (with a uid and a generation).
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::api::PartnerAccount;

    /// White label, `deletionPolicy: Retain` (default), two clients.
    pub const WHITE_LABEL: &str = include_str!("fixtures/white_label.yaml");
    /// Consolidated, `deletionPolicy: Delete`, a migrated and suspended
    /// client, a service-account admin, no pool.
    pub const CONSOLIDATED_DELETE: &str = include_str!("fixtures/consolidated_delete.yaml");

    pub fn partner(yaml: &str) -> PartnerAccount {
        serde_saphyr::from_str(yaml).expect("fixture parses as a PartnerAccount")
    }
}
