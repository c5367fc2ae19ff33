//! Owner references that are legal by construction.
//!
//! Kubernetes garbage collection only honours an owner reference from a
//! namespaced object to an owner in the same namespace, or to a
//! cluster-scoped owner. A namespaced owner of a cluster-scoped or
//! other-namespace child is silently broken (the child is deleted as having
//! a missing owner, or never collected). Builders get owner references only
//! through here, which refuses the illegal cases.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    /// Owner and child as `Kind namespace/name`.
    #[error("{0} is namespaced and cannot own the cluster-scoped {1}")]
    ClusterScopedChild(String, String),
    #[error("{0} cannot own {1}: owner references do not cross namespaces")]
    OtherNamespace(String, String),
    #[error("{0} has no uid yet")]
    NoUid(String),
}

/// The controller owner reference of `owner` for a child of `child_kind`
/// named `child` in `child_namespace` (`None` for a cluster-scoped child).
pub fn controller_ref<O>(
    owner: &O,
    child_kind: &str,
    child: &str,
    child_namespace: Option<&str>,
) -> Result<OwnerReference, OwnershipError>
where
    O: Resource<DynamicType = ()>,
{
    let owner_namespace = owner.meta().namespace.as_deref();
    let owner_name = format!(
        "{} {}/{}",
        O::kind(&()),
        owner_namespace.unwrap_or(""),
        owner.meta().name.as_deref().unwrap_or("")
    );
    let child_name = format!("{child_kind} {}/{child}", child_namespace.unwrap_or(""));
    if let Some(owner_namespace) = owner_namespace {
        match child_namespace {
            None => return Err(OwnershipError::ClusterScopedChild(owner_name, child_name)),
            Some(ns) if ns != owner_namespace => {
                return Err(OwnershipError::OtherNamespace(owner_name, child_name));
            }
            Some(_) => {}
        }
    }
    owner
        .controller_owner_ref(&())
        .ok_or(OwnershipError::NoUid(owner_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{PartnerAccount, VirtualServer};

    fn server() -> VirtualServer {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "VirtualServer",
            "metadata": {"name": "app", "namespace": "client-a", "uid": "u-1"},
            "spec": {"cores": 2, "memory": "4Gi", "disks": [{"name": "system", "size": "20Gi"}], "source": {"blank": {}}}
        }))
        .unwrap()
    }

    #[test]
    fn same_namespace_child_gets_a_controller_reference() {
        let r = controller_ref(&server(), "DataVolume", "app-system", Some("client-a")).unwrap();
        assert_eq!(r.uid, "u-1");
        assert_eq!(r.controller, Some(true));
    }

    #[test]
    fn namespaced_owner_cannot_own_cluster_scoped_or_foreign_children() {
        assert!(matches!(
            controller_ref(&server(), "Namespace", "x", None),
            Err(OwnershipError::ClusterScopedChild(..))
        ));
        assert!(matches!(
            controller_ref(&server(), "Service", "x", Some("client-b")),
            Err(OwnershipError::OtherNamespace(..))
        ));
    }

    #[test]
    fn cluster_scoped_owner_may_own_namespaced_children() {
        let partner: PartnerAccount = serde_json::from_value(serde_json::json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "PartnerAccount",
            "metadata": {"name": "alfa", "uid": "p-1"},
            "spec": {"displayName": "Alfa", "program": "Consolidated"}
        }))
        .unwrap();
        assert!(controller_ref(&partner, "ResourceQuota", "quota", Some("alfa-bakery")).is_ok());
        assert!(controller_ref(&partner, "Namespace", "alfa-bakery", None).is_ok());
    }
}
