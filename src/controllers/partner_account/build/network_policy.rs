//! The default NetworkPolicy of a client namespace: clients cannot reach
//! each other's servers.
//!
//! It selects every pod in the namespace (KubeVirt runs each server in a
//! virt-launcher pod there) for both directions:
//!
//! - **Ingress only from the same namespace.** A client's servers talk to
//!   each other (1C application server ↔ database ↔ file server); nothing
//!   else gets in by default. Ingress from anywhere is deliberately *not*
//!   opened here: NetworkPolicies are additive, so each server exposure gets
//!   its own policy (built by the VirtualServer controller) that admits the
//!   exposure's `allowFrom` sources to that server's port. A server's own
//!   exposures therefore work, and only they.
//! - **Egress anywhere except other clients' namespaces.** Servers need
//!   DNS, updates, licence servers and the client's own offices; what they
//!   must not reach is another client. A NetworkPolicy cannot deny, so this
//!   is written as the union of what is allowed: pods in this namespace;
//!   pods in every namespace *without* the `partnercloud.io/client` label
//!   (cluster DNS, the partner's own namespace, shared services); and
//!   addresses outside the cluster (`0.0.0.0/0`, `::/0`) minus the pod
//!   CIDRs when the operator is told them ([`ClusterNetwork`]). Selecting on
//!   the label rather than on a list of namespaces keeps the policy the same
//!   size and correct as partners and clients come and go — including
//!   clients of other partners and orphaned namespaces, which keep the label.
//!
//! One consequence for whoever adds traffic *into* a client namespace from
//! elsewhere — for example CDI's host-assisted clone of a template kept in
//! another namespace, whose source pod connects to an upload pod in the
//! target namespace — is that it needs its own additive policy, exactly like
//! an exposure; CSI (smart) clones and snapshots move no traffic and need
//! none.
//!
//! Isolation never rests on egress alone: the receiving namespace's ingress
//! rule refuses other clients too, so a CNI that also matches `ipBlock`
//! against pod addresses (when no pod CIDRs are configured) weakens only the
//! second wall, not the first.
//!
//! Unlike the quota and the binding, this policy follows the namespace's
//! ownership (owned only with `deletionPolicy: Delete`): a kept namespace
//! still holds a client's running servers and data, and removing the client
//! from the account must not open them to the rest of the cluster.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

use super::{ClusterNetwork, Owner};
use crate::controllers::partner_account::naming::{self, CLIENT_LABEL, ClientNamespace};

/// Name of the default policy in each client namespace.
pub const NAME: &str = "partnercloud-client-isolation";

/// The default isolation policy for one client namespace.
pub fn network_policy(
    owner: &Owner,
    target: &ClientNamespace,
    network: &ClusterNetwork,
) -> NetworkPolicy {
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    let non_client_namespaces = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: CLIENT_LABEL.to_string(),
                operator: "DoesNotExist".to_string(),
                values: None,
            }]),
            match_labels: None,
        }),
        ..NetworkPolicyPeer::default()
    };
    let outside = |cidr: &str| NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_string(),
            except: {
                let family: Vec<String> = network
                    .pod_cidrs
                    .iter()
                    .filter(|pod| pod.contains(':') == cidr.contains(':'))
                    .cloned()
                    .collect();
                (!family.is_empty()).then_some(family)
            },
        }),
        ..NetworkPolicyPeer::default()
    };

    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(NAME.to_string()),
            namespace: Some(target.namespace.clone()),
            labels: Some(naming::labels(&owner.partner, Some(&target.client))),
            owner_references: owner.owned_if_delete_policy(),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![same_namespace.clone()]),
                ports: None,
            }]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![
                    same_namespace,
                    non_client_namespaces,
                    outside("0.0.0.0/0"),
                    outside("::/0"),
                ]),
                ports: None,
            }]),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::build::build;
    use crate::controllers::partner_account::fixtures::{
        CONSOLIDATED_DELETE, WHITE_LABEL, partner,
    };

    /// The whole policy for the white-label fixture's first client, with the
    /// pod CIDRs of a dual-stack cluster.
    const EXPECTED_BAKERY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: partnercloud-client-isolation
  namespace: alfa-soft-bakery
  labels:
    app.kubernetes.io/managed-by: partnercloud
    partnercloud.io/client: bakery
    partnercloud.io/partner: alfa-soft
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - podSelector: {}
  egress:
    - to:
        - podSelector: {}
        - namespaceSelector:
            matchExpressions:
              - key: partnercloud.io/client
                operator: DoesNotExist
        - ipBlock:
            cidr: 0.0.0.0/0
            except: [10.244.0.0/16]
        - ipBlock:
            cidr: ::/0
            except: ["fd00:10:244::/56"]
"#;

    fn dual_stack() -> ClusterNetwork {
        ClusterNetwork {
            pod_cidrs: vec!["10.244.0.0/16".into(), "fd00:10:244::/56".into()],
        }
    }

    fn policy_of(yaml: &str, client: &str, network: &ClusterNetwork) -> NetworkPolicy {
        build(&partner(yaml), network)
            .unwrap()
            .clients
            .into_iter()
            .find(|c| c.client == client)
            .unwrap()
            .network_policy
    }

    #[test]
    fn isolation_policy_matches_the_reviewed_shape() {
        let expected: NetworkPolicy = serde_saphyr::from_str(EXPECTED_BAKERY).unwrap();
        assert_eq!(policy_of(WHITE_LABEL, "bakery", &dual_stack()), expected);
    }

    #[test]
    fn ingress_admits_only_pods_of_the_same_namespace() {
        let p = policy_of(WHITE_LABEL, "bakery", &dual_stack());
        let spec = p.spec.unwrap();
        let ingress = spec.ingress.unwrap();
        assert_eq!(ingress.len(), 1);
        let from = ingress[0].from.as_ref().unwrap();
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].pod_selector, Some(LabelSelector::default()));
        assert_eq!(from[0].namespace_selector, None, "no other namespace");
        assert_eq!(from[0].ip_block, None, "no address outside");
    }

    #[test]
    fn egress_never_selects_client_namespaces() {
        let p = policy_of(WHITE_LABEL, "bakery", &dual_stack());
        for rule in p.spec.unwrap().egress.unwrap() {
            for peer in rule.to.unwrap() {
                if let Some(selector) = peer.namespace_selector {
                    assert_eq!(selector.match_labels, None);
                    let exprs = selector.match_expressions.unwrap();
                    assert!(
                        exprs
                            .iter()
                            .any(|e| e.key == CLIENT_LABEL && e.operator == "DoesNotExist"),
                        "a namespace selector must exclude client namespaces"
                    );
                }
            }
        }
    }

    #[test]
    fn without_known_pod_cidrs_outside_rules_have_no_exceptions() {
        let p = policy_of(WHITE_LABEL, "bakery", &ClusterNetwork::default());
        let blocks: Vec<_> = p.spec.unwrap().egress.unwrap()[0]
            .to
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|peer| peer.ip_block)
            .collect();
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|b| b.except.is_none()));
    }

    #[test]
    fn pod_cidrs_are_cut_out_of_their_own_address_family_only() {
        let v4_only = ClusterNetwork {
            pod_cidrs: vec!["10.244.0.0/16".into()],
        };
        let p = policy_of(WHITE_LABEL, "bakery", &v4_only);
        let blocks: Vec<_> = p.spec.unwrap().egress.unwrap()[0]
            .to
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|peer| peer.ip_block)
            .collect();
        assert_eq!(blocks[0].cidr, "0.0.0.0/0");
        assert_eq!(blocks[0].except, Some(vec!["10.244.0.0/16".to_string()]));
        assert_eq!(blocks[1].cidr, "::/0");
        assert_eq!(blocks[1].except, None);
    }

    #[test]
    fn policy_follows_the_namespace_ownership() {
        let retained = policy_of(WHITE_LABEL, "bakery", &ClusterNetwork::default());
        assert_eq!(retained.metadata.owner_references, None);
        let deleted = policy_of(CONSOLIDATED_DELETE, "shop", &ClusterNetwork::default());
        assert_eq!(deleted.metadata.owner_references.map(|r| r.len()), Some(1));
    }

    #[test]
    fn every_client_gets_its_own_policy_in_its_own_namespace() {
        let children = build(&partner(CONSOLIDATED_DELETE), &ClusterNetwork::default()).unwrap();
        let namespaces: Vec<_> = children
            .clients
            .iter()
            .map(|c| c.network_policy.metadata.namespace.clone().unwrap())
            .collect();
        assert_eq!(namespaces, ["legacy-shop", "beta-school"]);
    }
}
