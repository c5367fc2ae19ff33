//! Desired children of a VirtualServer, as pure functions of the server
//! and its plan. No client, no clock, no randomness.

pub mod clone_snapshot;
pub mod data_volume;
pub mod exposure;
pub mod identity;
pub mod names;
pub mod virtual_machine;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::plan::Plan;
use crate::api::VirtualServer;
use crate::api::virtual_server::PowerState;
use crate::controllers::ownership::OwnershipError;
use crate::kubevirt::{DataVolume, VirtualMachine, VirtualMachineSnapshot};

/// Everything one pass wants to exist. The apply step destructures it
/// without `..`, so a child kind that is built but never applied does not
/// compile.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    /// Absent while a disk's content is not known yet.
    pub vm: Option<VirtualMachine>,
    pub disks: Vec<DataVolume>,
    pub iso: Option<DataVolume>,
    pub clone_snapshot: Option<VirtualMachineSnapshot>,
    pub services: Vec<Service>,
    pub network_policies: Vec<NetworkPolicy>,
}

/// Builds the children. `power` is the effective power state (the
/// server's own, or `Stopped` while its client is suspended).
pub fn build(
    server: &VirtualServer,
    plan: &Plan,
    power: PowerState,
) -> Result<Children, OwnershipError> {
    let vm = if plan.disks_known() {
        Some(virtual_machine::build(server, plan, power)?)
    } else {
        None
    };
    let mut services = Vec::new();
    let mut network_policies = Vec::new();
    for exposure in &server.spec.expose {
        services.push(exposure::service(server, plan, exposure)?);
        network_policies.push(exposure::network_policy(server, plan, exposure)?);
    }
    Ok(Children {
        vm,
        disks: data_volume::build_disks(server, plan)?,
        iso: data_volume::build_iso(server, plan)?,
        clone_snapshot: plan
            .clone_snapshot
            .as_ref()
            .map(|c| clone_snapshot::build(server, plan, c))
            .transpose()?,
        services,
        network_policies,
    })
}
