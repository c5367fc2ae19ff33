//! The ClusterRole partner admins are bound to in client namespaces, as
//! shipped in `manifests/rbac/client-admin-clusterrole.yaml`.
//!
//! The manifest is compiled in, so the operator, the tests that prove it
//! statically here, and the integration tests that apply it to a real API
//! server all use the same bytes.
//!
//! Aggregation is done by kube-controller-manager's `clusterrole-aggregation`
//! controller; a control plane without it leaves the aggregated role empty.
//!
//! Beside it, `manifests/rbac/aggregate-to-view.yaml` adds read access to
//! our kinds to Kubernetes' built-in `view` role, for people a provider binds
//! read-only in a client namespace.

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

/// The aggregated ClusterRole every client-namespace RoleBinding refers to.
pub const CLIENT_ADMIN_CLUSTER_ROLE: &str = "partnercloud-client-admin";

/// The label that aggregates a ClusterRole into [`CLIENT_ADMIN_CLUSTER_ROLE`].
pub const AGGREGATE_TO_CLIENT_ADMIN_LABEL: &str = "partnercloud.io/aggregate-to-client-admin";

/// The manifest, verbatim.
pub const CLIENT_ADMIN_MANIFEST: &str =
    include_str!("../../../manifests/rbac/client-admin-clusterrole.yaml");

/// The manifest that aggregates read access to our kinds into `view`.
pub const VIEW_MANIFEST: &str = include_str!("../../../manifests/rbac/aggregate-to-view.yaml");

/// The ClusterRoles of the manifest: the aggregated role first, then its
/// components.
pub fn client_admin_cluster_roles() -> Result<Vec<ClusterRole>, serde_saphyr::Error> {
    serde_saphyr::from_multiple(CLIENT_ADMIN_MANIFEST)
}

/// Every ClusterRole in `manifests/rbac/`.
pub fn cluster_roles() -> Result<Vec<ClusterRole>, serde_saphyr::Error> {
    let mut roles = client_admin_cluster_roles()?;
    roles.extend(serde_saphyr::from_multiple::<ClusterRole>(VIEW_MANIFEST)?);
    Ok(roles)
}

/// Why installing the roles failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("manifests/rbac does not parse: {0}")]
    Parse(#[from] serde_saphyr::Error),
    #[error("applying ClusterRole {name}: {source}")]
    Apply { name: String, source: kube::Error },
}

/// Applies `manifests/rbac/` — what `kubectl apply -f manifests/rbac/`
/// does at install time — for the local control plane of `dev` and the
/// integration tests. The operator itself never calls this: writing
/// ClusterRoles is the installer's right, not the operator's.
pub async fn install(client: &Client) -> Result<(), InstallError> {
    let api = Api::<ClusterRole>::all(client.clone());
    for role in cluster_roles()? {
        let name = role.metadata.name.clone().unwrap_or_default();
        // The aggregation controller owns the aggregated roles' rules; apply
        // them without rules so a re-install never empties them.
        let mut role = role;
        if role.aggregation_rule.is_some() {
            role.rules = None;
        }
        api.patch(
            &name,
            &PatchParams::apply("partnercloud-install").force(),
            &Patch::Apply(&role),
        )
        .await
        .map_err(|source| InstallError::Apply { name, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_VERBS: [&str; 8] = [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    const READ: [&str; 3] = ["get", "list", "watch"];

    fn roles() -> Vec<ClusterRole> {
        client_admin_cluster_roles().expect("the manifest parses as ClusterRoles")
    }

    /// The rules the aggregated role ends up with: every component's.
    fn aggregated_rules() -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
        roles()
            .into_iter()
            .filter(|r| r.metadata.name.as_deref() != Some(CLIENT_ADMIN_CLUSTER_ROLE))
            .flat_map(|r| r.rules.unwrap_or_default())
            .collect()
    }

    /// Whether the aggregated role allows `verb` on `group`/`resource`, the
    /// way the RBAC authorizer reads rules (wildcards included).
    fn allows(group: &str, resource: &str, verb: &str) -> bool {
        let has = |list: &Option<Vec<String>>, want: &str| {
            list.as_ref()
                .is_some_and(|l| l.iter().any(|x| x == want || x == "*"))
        };
        aggregated_rules().iter().any(|rule| {
            has(&rule.api_groups, group)
                && has(&rule.resources, resource)
                && rule.verbs.iter().any(|v| v == verb || v == "*")
        })
    }

    #[test]
    fn aggregated_role_selects_components_by_label_and_has_no_rules_of_its_own() {
        let roles = roles();
        let main: Vec<_> = roles
            .iter()
            .filter(|r| r.metadata.name.as_deref() == Some(CLIENT_ADMIN_CLUSTER_ROLE))
            .collect();
        assert_eq!(main.len(), 1);
        let rule = main[0].aggregation_rule.as_ref().expect("aggregationRule");
        let selectors = rule.cluster_role_selectors.as_ref().unwrap();
        assert_eq!(selectors.len(), 1);
        let labels = selectors[0].match_labels.as_ref().unwrap();
        assert_eq!(labels[AGGREGATE_TO_CLIENT_ADMIN_LABEL], "true");
        assert!(main[0].rules.as_ref().is_none_or(Vec::is_empty));
    }

    #[test]
    fn every_component_is_labelled_for_aggregation_and_named_for_it() {
        let components: Vec<_> = roles()
            .into_iter()
            .filter(|r| r.metadata.name.as_deref() != Some(CLIENT_ADMIN_CLUSTER_ROLE))
            .collect();
        assert!(components.len() >= 3);
        for role in components {
            let name = role.metadata.name.clone().unwrap();
            assert!(name.starts_with("partnercloud-client-admin-"), "{name}");
            let labels = role.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels
                    .get(AGGREGATE_TO_CLIENT_ADMIN_LABEL)
                    .map(String::as_str),
                Some("true"),
                "{name} would not be aggregated"
            );
            assert!(role.aggregation_rule.is_none(), "{name}");
        }
    }

    #[test]
    fn our_namespaced_kinds_are_fully_manageable() {
        for kind in ["virtualservers", "servertemplates", "backuppolicies"] {
            for verb in ALL_VERBS {
                assert!(allows("partnercloud.io", kind, verb), "{verb} {kind}");
            }
        }
    }

    #[test]
    fn status_of_our_kinds_is_readable_but_only_the_operator_writes_it() {
        for kind in ["virtualservers", "servertemplates", "backuppolicies"] {
            let status = format!("{kind}/status");
            for verb in READ {
                assert!(allows("partnercloud.io", &status, verb), "{verb} {status}");
            }
            for verb in ["update", "patch", "create", "delete"] {
                assert!(!allows("partnercloud.io", &status, verb), "{verb} {status}");
            }
        }
    }

    #[test]
    fn kubevirt_cdi_snapshots_events_and_services_are_read_only() {
        for (group, resource) in [
            ("kubevirt.io", "virtualmachines"),
            ("kubevirt.io", "virtualmachineinstances"),
            ("cdi.kubevirt.io", "datavolumes"),
            ("snapshot.kubevirt.io", "virtualmachinesnapshots"),
            ("", "events"),
            ("events.k8s.io", "events"),
            ("", "services"),
        ] {
            for verb in READ {
                assert!(allows(group, resource, verb), "{verb} {group}/{resource}");
            }
            for verb in ["create", "update", "patch", "delete", "deletecollection"] {
                assert!(!allows(group, resource, verb), "{verb} {group}/{resource}");
            }
        }
    }

    #[test]
    fn secrets_for_user_data_can_be_written_but_not_watched_or_bulk_deleted() {
        for verb in ["create", "get", "list", "update", "patch", "delete"] {
            assert!(allows("", "secrets", verb), "{verb} secrets");
        }
        assert!(!allows("", "secrets", "watch"));
        assert!(!allows("", "secrets", "deletecollection"));
    }

    #[test]
    fn partner_accounts_are_out_of_reach() {
        for verb in ALL_VERBS {
            assert!(
                !allows("partnercloud.io", "partneraccounts", verb),
                "{verb}"
            );
            assert!(
                !allows("partnercloud.io", "partneraccounts/status", verb),
                "{verb}"
            );
        }
    }

    #[test]
    fn what_the_operator_owns_is_at_most_readable() {
        for (group, resource) in [
            ("", "resourcequotas"),
            ("networking.k8s.io", "networkpolicies"),
            ("rbac.authorization.k8s.io", "rolebindings"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"),
            ("", "namespaces"),
            ("", "persistentvolumeclaims"),
            ("", "pods"),
            ("", "configmaps"),
            ("", "serviceaccounts"),
        ] {
            for verb in ["create", "update", "patch", "delete", "deletecollection"] {
                assert!(!allows(group, resource, verb), "{verb} {group}/{resource}");
            }
        }
        assert!(!allows("rbac.authorization.k8s.io", "rolebindings", "get"));
    }

    #[test]
    fn view_aggregation_adds_read_only_access_to_our_namespaced_kinds() {
        let view: Vec<ClusterRole> = serde_saphyr::from_multiple(VIEW_MANIFEST).unwrap();
        assert_eq!(view.len(), 1);
        let labels = view[0].metadata.labels.clone().unwrap();
        assert_eq!(
            labels["rbac.authorization.k8s.io/aggregate-to-view"],
            "true"
        );
        for rule in view[0].rules.clone().unwrap() {
            assert_eq!(rule.verbs, READ);
            assert_eq!(rule.api_groups, Some(vec!["partnercloud.io".to_string()]));
            assert!(
                !rule
                    .resources
                    .iter()
                    .flatten()
                    .any(|r| r.starts_with("partneraccounts"))
            );
        }
        assert_eq!(cluster_roles().unwrap().len(), roles().len() + 1);
    }

    #[test]
    fn no_wildcards_no_escalation_verbs_no_urls() {
        for rule in aggregated_rules() {
            for list in [&rule.api_groups, &rule.resources] {
                assert!(
                    !list.iter().flatten().any(|x| x == "*"),
                    "wildcard in {rule:?}"
                );
            }
            for verb in &rule.verbs {
                assert!(
                    !["*", "escalate", "bind", "impersonate", "approve", "sign"]
                        .contains(&verb.as_str()),
                    "{verb} in {rule:?}"
                );
            }
            assert!(rule.non_resource_urls.is_none(), "{rule:?}");
            assert!(rule.resource_names.is_none(), "{rule:?}");
        }
    }
}
