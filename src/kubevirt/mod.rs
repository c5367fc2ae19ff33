//! Hand-written subsets of the KubeVirt and CDI kinds partnercloud writes
//! and reads. No KubeVirt crate exists for Rust; these types name the
//! fields we use, and every struct we might read-modify-write keeps unknown
//! fields in `other` so that a round trip never drops what KubeVirt added.
//!
//! Controllers only ever server-side apply these with the fields they own,
//! so KubeVirt's own fields are never overwritten either way.

pub mod data_source;
pub mod data_volume;
pub mod snapshot;
pub mod virtual_machine;
pub mod virtual_machine_instance;

pub use data_source::DataSource;
pub use data_volume::DataVolume;
pub use snapshot::{VirtualMachineSnapshot, VirtualMachineSnapshotContent};
pub use virtual_machine::VirtualMachine;
pub use virtual_machine_instance::VirtualMachineInstance;

use std::collections::BTreeMap;

/// Fields we do not model, kept verbatim.
pub type Other = BTreeMap<String, serde_json::Value>;

/// A KubeVirt/CDI style condition (they predate `metav1.Condition`).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KvCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// Finds a condition by type.
pub fn condition<'a>(conditions: &'a [KvCondition], type_: &str) -> Option<&'a KvCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}
