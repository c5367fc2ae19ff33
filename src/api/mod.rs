// kube-derive takes one `printcolumn(...)` per column with the same keys;
// clippy reads the repeated keys as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

//! Our custom resources (group `partnercloud.io`, version `v1alpha1`),
//! re-exported once; controllers import from here.

pub mod backup_policy;
pub mod conditions;
pub mod partner_account;
pub mod quantity;
pub mod schema;
pub mod server_template;
pub mod virtual_server;

pub use backup_policy::{BackupPolicy, BackupPolicySpec, BackupPolicyStatus};
pub use partner_account::{PartnerAccount, PartnerAccountSpec, PartnerAccountStatus};
pub use server_template::{ServerTemplate, ServerTemplateSpec, ServerTemplateStatus};
pub use virtual_server::{VirtualServer, VirtualServerSpec, VirtualServerStatus};

/// The API group of our kinds.
pub const GROUP: &str = "partnercloud.io";
