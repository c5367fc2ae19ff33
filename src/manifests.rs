//! The deployment manifests in `manifests/deploy/`, compiled in so that
//! tests prove they parse as the objects they claim to be and that the
//! operator's ClusterRole grants what the controllers do — and nothing
//! that would let it escalate.

/// The operator's namespace.
pub const NAMESPACE: &str = include_str!("../manifests/deploy/00-namespace.yaml");
/// The operator's ServiceAccount.
pub const SERVICE_ACCOUNT: &str = include_str!("../manifests/deploy/10-serviceaccount.yaml");
/// The operator's ClusterRole.
pub const CLUSTER_ROLE: &str = include_str!("../manifests/deploy/20-clusterrole.yaml");
/// The binding of the ServiceAccount to the ClusterRole.
pub const CLUSTER_ROLE_BINDING: &str =
    include_str!("../manifests/deploy/30-clusterrolebinding.yaml");
/// The operator's Deployment (`partnercloud run`).
pub const DEPLOYMENT: &str = include_str!("../manifests/deploy/40-deployment.yaml");

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};

    use super::*;
    use crate::controllers::partner_account::rbac::CLIENT_ADMIN_CLUSTER_ROLE;

    fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        serde_saphyr::from_str(yaml).expect("manifest parses")
    }

    fn rules() -> Vec<PolicyRule> {
        parse::<ClusterRole>(CLUSTER_ROLE).rules.unwrap_or_default()
    }

    fn allows(group: &str, resource: &str, verb: &str) -> bool {
        rules().iter().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
                && r.resource_names.is_none()
        })
    }

    #[test]
    fn every_deploy_manifest_parses_as_its_kind() {
        let ns: Namespace = parse(NAMESPACE);
        let sa: ServiceAccount = parse(SERVICE_ACCOUNT);
        let role: ClusterRole = parse(CLUSTER_ROLE);
        let binding: ClusterRoleBinding = parse(CLUSTER_ROLE_BINDING);
        let deployment: Deployment = parse(DEPLOYMENT);
        let ns = ns.metadata.name.unwrap();
        assert_eq!(sa.metadata.namespace.as_deref(), Some(ns.as_str()));
        assert_eq!(deployment.metadata.namespace.as_deref(), Some(ns.as_str()));
        assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
        let subjects = binding.subjects.unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(Some(&subjects[0].name), sa.metadata.name.as_ref());
        assert_eq!(subjects[0].namespace.as_deref(), Some(ns.as_str()));
    }

    #[test]
    fn the_deployment_runs_one_operator_as_the_service_account() {
        let deployment: Deployment = parse(DEPLOYMENT);
        let spec = deployment.spec.unwrap();
        assert_eq!(spec.replicas, Some(1), "quota locks are in-process");
        assert_eq!(
            spec.strategy.unwrap().type_.as_deref(),
            Some("Recreate"),
            "never two replicas at once, not even during a rollout"
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("partnercloud"));
        assert_eq!(pod.containers[0].args, Some(vec!["run".to_string()]));
    }

    /// What the controllers call, by API group, resource and verb.
    #[test]
    fn the_operator_role_grants_what_the_controllers_do() {
        let read = ["get", "list", "watch"];
        let manage = ["get", "list", "watch", "create", "patch", "delete"];
        let mut needed: Vec<(&str, &str, &str)> = Vec::new();
        for r in ["virtualservers", "servertemplates", "partneraccounts"] {
            needed.extend(read.iter().map(|v| ("partnercloud.io", r, *v)));
        }
        needed.push(("partnercloud.io", "partneraccounts", "patch"));
        needed.push(("partnercloud.io", "virtualservers/status", "patch"));
        needed.push(("partnercloud.io", "partneraccounts/status", "patch"));
        needed.push(("partnercloud.io", "partneraccounts/finalizers", "update"));
        for (g, r) in [
            ("kubevirt.io", "virtualmachines"),
            ("cdi.kubevirt.io", "datavolumes"),
            ("snapshot.kubevirt.io", "virtualmachinesnapshots"),
            ("", "services"),
            ("networking.k8s.io", "networkpolicies"),
            ("", "namespaces"),
            ("", "resourcequotas"),
            ("", "configmaps"),
            ("rbac.authorization.k8s.io", "rolebindings"),
        ] {
            needed.extend(manage.iter().map(|v| (g, r, *v)));
        }
        needed.extend(
            read.iter()
                .map(|v| ("kubevirt.io", "virtualmachineinstances", *v)),
        );
        needed.push((
            "snapshot.kubevirt.io",
            "virtualmachinesnapshotcontents",
            "get",
        ));
        needed.push(("events.k8s.io", "events", "create"));
        needed.push(("events.k8s.io", "events", "patch"));
        for (g, r, v) in needed {
            assert!(allows(g, r, v), "{v} {g}/{r} is not granted");
        }
    }

    #[test]
    fn the_operator_can_bind_only_the_client_admin_role_and_never_escalate() {
        let binds: Vec<_> = rules()
            .into_iter()
            .filter(|r| r.verbs.iter().any(|v| v == "bind"))
            .collect();
        assert_eq!(binds.len(), 1);
        assert_eq!(binds[0].verbs, ["bind"]);
        assert_eq!(
            binds[0].resource_names.as_deref(),
            Some(&[CLIENT_ADMIN_CLUSTER_ROLE.to_string()][..])
        );
        for rule in rules() {
            for list in [&rule.api_groups, &rule.resources] {
                assert!(!list.iter().flatten().any(|x| x == "*"), "{rule:?}");
            }
            for verb in &rule.verbs {
                assert!(
                    !["*", "escalate", "impersonate", "deletecollection"].contains(&verb.as_str()),
                    "{verb} in {rule:?}"
                );
            }
            assert!(rule.non_resource_urls.is_none());
        }
        for verb in ["get", "list", "create", "patch", "update"] {
            assert!(
                !allows("", "secrets", verb),
                "the operator never touches Secrets"
            );
            assert!(!allows("rbac.authorization.k8s.io", "clusterroles", verb));
            assert!(!allows(
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                verb
            ));
            assert!(!allows("rbac.authorization.k8s.io", "roles", verb));
        }
        assert!(!allows("partnercloud.io", "partneraccounts", "delete"));
        assert!(!allows("partnercloud.io", "virtualservers", "patch"));
    }
}
