//! The RoleBinding that lets the partner's admins manage a client namespace.

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Owner;
use crate::api::partner_account::{AdminSubject, SubjectKind};
use crate::controllers::partner_account::naming::{self, ClientNamespace};
use crate::controllers::partner_account::rbac::CLIENT_ADMIN_CLUSTER_ROLE;

/// Name of the RoleBinding in each client namespace.
pub const NAME: &str = "partnercloud-client-admin";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Binds `spec.admins` to the aggregated ClusterRole
/// `partnercloud-client-admin` inside the client's namespace only.
///
/// Always owned by the PartnerAccount: when the account goes, or the client
/// is removed, the partner's staff lose access to the kept namespace. Built
/// even with no admins (an empty binding), so that removing the last admin
/// revokes access by an update rather than depending on the sweep.
pub fn role_binding(
    owner: &Owner,
    target: &ClientNamespace,
    admins: &[AdminSubject],
) -> RoleBinding {
    let subjects: Vec<Subject> = admins.iter().map(subject).collect();
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            namespace: Some(target.namespace.clone()),
            labels: Some(naming::labels(&owner.partner, Some(&target.client))),
            owner_references: owner.owned(),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: RBAC_GROUP.to_string(),
            kind: "ClusterRole".to_string(),
            name: CLIENT_ADMIN_CLUSTER_ROLE.to_string(),
        },
        subjects: (!subjects.is_empty()).then_some(subjects),
    }
}

/// One admin as an RBAC subject. Users and groups are in the RBAC API group;
/// service accounts are in the core group and carry their namespace.
fn subject(admin: &AdminSubject) -> Subject {
    let (kind, api_group) = match admin.kind {
        SubjectKind::User => ("User", RBAC_GROUP),
        SubjectKind::Group => ("Group", RBAC_GROUP),
        SubjectKind::ServiceAccount => ("ServiceAccount", ""),
    };
    Subject {
        api_group: Some(api_group.to_string()),
        kind: kind.to_string(),
        name: admin.name.clone(),
        namespace: match admin.kind {
            SubjectKind::ServiceAccount => admin.namespace.clone(),
            SubjectKind::User | SubjectKind::Group => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::build::{ClusterNetwork, build};
    use crate::controllers::partner_account::fixtures::{
        CONSOLIDATED_DELETE, WHITE_LABEL, partner,
    };

    /// The expected binding for the white-label fixture's first client.
    const EXPECTED_BAKERY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: partnercloud-client-admin
  namespace: alfa-soft-bakery
  labels:
    app.kubernetes.io/managed-by: partnercloud
    partnercloud.io/client: bakery
    partnercloud.io/partner: alfa-soft
  ownerReferences:
    - apiVersion: partnercloud.io/v1alpha1
      kind: PartnerAccount
      name: alfa-soft
      uid: 6f1c2a9e-3b1d-4c55-9a77-0d2f5e8b4a10
      controller: true
      blockOwnerDeletion: true
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: partnercloud-client-admin
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: ivan@alfa-soft.example
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: alfa-soft-admins
"#;

    fn binding_of(yaml: &str, client: &str) -> RoleBinding {
        build(&partner(yaml), &ClusterNetwork::default())
            .unwrap()
            .clients
            .into_iter()
            .find(|c| c.client == client)
            .unwrap()
            .role_binding
    }

    #[test]
    fn users_and_groups_are_bound_to_the_client_admin_role() {
        let expected: RoleBinding = serde_saphyr::from_str(EXPECTED_BAKERY).unwrap();
        assert_eq!(binding_of(WHITE_LABEL, "bakery"), expected);
    }

    #[test]
    fn service_account_subject_is_in_the_core_group_with_its_namespace() {
        let rb = binding_of(CONSOLIDATED_DELETE, "shop");
        let subjects = rb.subjects.unwrap();
        assert_eq!(
            subjects,
            vec![Subject {
                api_group: Some(String::new()),
                kind: "ServiceAccount".into(),
                name: "gitops".into(),
                namespace: Some("beta-ci".into()),
            }]
        );
        assert_eq!(rb.metadata.namespace.as_deref(), Some("legacy-shop"));
    }

    #[test]
    fn binding_is_owned_even_when_the_namespace_is_retained() {
        // White label uses Retain: the namespace is not owned, the binding is.
        let rb = binding_of(WHITE_LABEL, "autoparts");
        assert_eq!(rb.metadata.owner_references.map(|r| r.len()), Some(1));
    }

    #[test]
    fn no_admins_gives_an_empty_binding_not_a_missing_one() {
        let mut p = partner(WHITE_LABEL);
        p.spec.admins.clear();
        let children = build(&p, &ClusterNetwork::default()).unwrap();
        for c in children.clients {
            assert_eq!(c.role_binding.subjects, None);
            assert_eq!(c.role_binding.role_ref.name, CLIENT_ADMIN_CLUSTER_ROLE);
        }
    }

    #[test]
    fn binding_refers_to_a_role_the_shipped_manifest_defines() {
        let defined: Vec<String> =
            crate::controllers::partner_account::rbac::client_admin_cluster_roles()
                .unwrap()
                .into_iter()
                .filter_map(|r| r.metadata.name)
                .collect();
        let rb = binding_of(WHITE_LABEL, "bakery");
        assert!(defined.contains(&rb.role_ref.name), "{defined:?}");
    }

    #[test]
    fn binding_never_refers_to_a_role_other_than_client_admin() {
        for yaml in [WHITE_LABEL, CONSOLIDATED_DELETE] {
            for c in build(&partner(yaml), &ClusterNetwork::default())
                .unwrap()
                .clients
            {
                assert_eq!(c.role_binding.role_ref.kind, "ClusterRole");
                assert_eq!(c.role_binding.role_ref.name, "partnercloud-client-admin");
            }
        }
    }
}
