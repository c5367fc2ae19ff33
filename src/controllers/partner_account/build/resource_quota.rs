//! The native ResourceQuota of a client namespace: a backstop for what
//! Kubernetes can count itself, not the quota a partner buys.
//!
//! The quota a partner buys is in guest terms — cores, memory, disk sizes,
//! servers as written in VirtualServer specs — and is decided by
//! [`crate::controllers::partner_account::quota`] before a server is built.
//! A native quota cannot express that:
//!
//! - **Cores and memory are left out.** KubeVirt runs each VM in a
//!   virt-launcher pod whose requests are the guest's plus overhead
//!   (virt-launcher, QEMU, page tables, video RAM — tens to hundreds of MiB
//!   and a fraction of a core, varying with the VM's devices). A
//!   `requests.cpu`/`requests.memory` quota equal to the guest quota would
//!   refuse the last servers the guest-terms decision admitted, while one
//!   with a guessed margin would be neither exact nor safe.
//! - **Storage gets headroom for the same reason.** CDI sizes a
//!   filesystem-mode claim above the disk (filesystem overhead, 5.5% by
//!   default) and an import may hold a scratch claim as large as the disk
//!   while it runs. `requests.storage` is therefore the guest storage limit
//!   times [`STORAGE_HEADROOM_NUM`]/[`STORAGE_HEADROOM_DEN`] (2.25: the disk
//!   and its scratch claim, each with up to 12.5% overhead).
//! - **Claims**: at most [`CLAIMS_PER_SERVER`] per server (16 disks and an
//!   ISO, each possibly with an import scratch claim).
//! - **VirtualMachines** are counted exactly: one per server
//!   (`count/virtualmachines.kubevirt.io`).
//!
//! Partner admins cannot create claims or VirtualMachines themselves (see
//! `manifests/rbac/`), so this quota only stops the operator itself — or a
//! path around it — from running away; it never decides a single server.
//! Each limit is the client's own when set, else the partner's pool (one
//! client can never use more than the whole pool), and the tighter of the two
//! when both are set.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Owner;
use crate::api::quantity::Bytes;
use crate::controllers::partner_account::naming::{self, ClientNamespace};
use crate::controllers::partner_account::quota::Limits;

/// Name of the ResourceQuota in each client namespace.
pub const NAME: &str = "partnercloud-client";

/// Most disks a VirtualServer may have (the CRD's `spec.disks` maxItems).
pub const MAX_DISKS_PER_SERVER: u64 = 16;
/// Claims one server may hold at once: each disk and the ISO, each with an
/// import scratch claim while importing.
pub const CLAIMS_PER_SERVER: u64 = 2 * (MAX_DISKS_PER_SERVER + 1);
/// Storage headroom factor, numerator.
pub const STORAGE_HEADROOM_NUM: u64 = 9;
/// Storage headroom factor, denominator.
pub const STORAGE_HEADROOM_DEN: u64 = 4;

/// Quota keys.
pub const REQUESTS_STORAGE: &str = "requests.storage";
pub const PERSISTENT_VOLUME_CLAIMS: &str = "persistentvolumeclaims";
pub const VIRTUAL_MACHINES: &str = "count/virtualmachines.kubevirt.io";

/// The ResourceQuota for one client namespace, or `None` when neither the
/// client's quota nor the pool limits storage or servers.
///
/// Always owned by the PartnerAccount: a kept (orphaned) namespace has no
/// partner whose limits it could enforce.
pub fn resource_quota(
    owner: &Owner,
    target: &ClientNamespace,
    client: &Limits,
    pool: &Limits,
) -> Option<ResourceQuota> {
    let effective = client.tightest(pool);
    let mut hard = BTreeMap::new();
    if let Some(storage) = effective.storage {
        let with_headroom = u128::from(storage) * u128::from(STORAGE_HEADROOM_NUM)
            / u128::from(STORAGE_HEADROOM_DEN);
        let bytes = u64::try_from(with_headroom).unwrap_or(u64::MAX);
        hard.insert(
            REQUESTS_STORAGE.to_string(),
            Quantity(Bytes(bytes).to_string()),
        );
    }
    if let Some(servers) = effective.servers {
        hard.insert(
            PERSISTENT_VOLUME_CLAIMS.to_string(),
            Quantity(servers.saturating_mul(CLAIMS_PER_SERVER).to_string()),
        );
        hard.insert(VIRTUAL_MACHINES.to_string(), Quantity(servers.to_string()));
    }
    if hard.is_empty() {
        return None;
    }
    Some(ResourceQuota {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            namespace: Some(target.namespace.clone()),
            labels: Some(naming::labels(&owner.partner, Some(&target.client))),
            owner_references: owner.owned(),
            ..ObjectMeta::default()
        },
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PartnerAccount;
    use crate::controllers::partner_account::build::{ClusterNetwork, build};
    use crate::controllers::partner_account::fixtures::{
        CONSOLIDATED_DELETE, WHITE_LABEL, partner,
    };

    fn hard(q: &ResourceQuota) -> BTreeMap<String, String> {
        q.spec
            .as_ref()
            .unwrap()
            .hard
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    }

    fn quota_of(p: &PartnerAccount, client: &str) -> Option<ResourceQuota> {
        build(p, &ClusterNetwork::default())
            .unwrap()
            .clients
            .into_iter()
            .find(|c| c.client == client)
            .unwrap()
            .resource_quota
    }

    #[test]
    fn client_quota_becomes_storage_claims_and_vm_count() {
        // bakery: storage 2Ti, servers 4 (pool: 10Ti, 20).
        let q = quota_of(&partner(WHITE_LABEL), "bakery").unwrap();
        assert_eq!(
            hard(&q),
            BTreeMap::from([
                ("count/virtualmachines.kubevirt.io".into(), "4".into()),
                ("persistentvolumeclaims".into(), "136".into()),
                ("requests.storage".into(), "4608Gi".into()),
            ])
        );
    }

    #[test]
    fn cores_and_memory_are_never_in_the_native_quota() {
        let q = quota_of(&partner(WHITE_LABEL), "bakery").unwrap();
        let keys = hard(&q);
        assert!(
            keys.keys()
                .all(|k| !k.contains("cpu") && !k.contains("memory"))
        );
    }

    #[test]
    fn client_without_quota_is_bounded_by_the_pool() {
        // autoparts has no quota; the pool is 10Ti and 20 servers.
        let q = quota_of(&partner(WHITE_LABEL), "autoparts").unwrap();
        assert_eq!(hard(&q)["requests.storage"], "23040Gi");
        assert_eq!(hard(&q)["count/virtualmachines.kubevirt.io"], "20");
    }

    #[test]
    fn the_tighter_of_client_and_pool_applies() {
        let mut p = partner(WHITE_LABEL);
        p.spec.clients[0].quota.as_mut().unwrap().servers = Some(50);
        let q = quota_of(&p, "bakery").unwrap();
        assert_eq!(hard(&q)["count/virtualmachines.kubevirt.io"], "20");
    }

    #[test]
    fn only_what_is_limited_is_listed() {
        // shop: storage only, and no pool.
        let q = quota_of(&partner(CONSOLIDATED_DELETE), "shop").unwrap();
        assert_eq!(
            hard(&q),
            BTreeMap::from([("requests.storage".into(), "1125Gi".into())])
        );
    }

    #[test]
    fn nothing_limited_means_no_quota_object() {
        // school: no quota, and no pool.
        assert!(quota_of(&partner(CONSOLIDATED_DELETE), "school").is_none());
    }

    #[test]
    fn quota_is_owned_even_under_retain() {
        let q = quota_of(&partner(WHITE_LABEL), "bakery").unwrap();
        let refs = q.metadata.owner_references.unwrap();
        assert_eq!(refs[0].name, "alfa-soft");
        assert_eq!(q.metadata.name.as_deref(), Some(NAME));
        let labels = q.metadata.labels.unwrap();
        assert_eq!(labels[naming::CLIENT_LABEL], "bakery");
    }

    #[test]
    fn zero_limits_are_kept_as_zero_not_dropped() {
        let mut p = partner(WHITE_LABEL);
        let quota = p.spec.clients[0].quota.as_mut().unwrap();
        quota.servers = Some(0);
        quota.storage = Some(Quantity("0".into()));
        let q = quota_of(&p, "bakery").unwrap();
        assert_eq!(hard(&q)["requests.storage"], "0");
        assert_eq!(hard(&q)["count/virtualmachines.kubevirt.io"], "0");
        assert_eq!(hard(&q)["persistentvolumeclaims"], "0");
    }
}
