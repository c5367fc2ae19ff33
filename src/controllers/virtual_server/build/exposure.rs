//! A LoadBalancer Service and a NetworkPolicy per exposure.
//!
//! The Service's `loadBalancerSourceRanges` keeps other sources out at the
//! load balancer; the NetworkPolicy allows exactly those sources on exactly
//! those ports at the pod, so a misconfigured or ignored source-range
//! setting in the cloud still cannot open the port. `externalTrafficPolicy:
//! Local` keeps the client's address, without which the policy's `ipBlock`
//! could not match.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::names;
use super::virtual_machine::add_tenancy;
use crate::api::VirtualServer;
use crate::api::virtual_server::{Exposure, Preset, Protocol};
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::virtual_server::plan::Plan;

/// FTP passive-mode data ports opened beside port 21; the guest's FTP
/// server must be configured to use this range.
pub const FTP_PASSIVE: (u16, u16) = (30000, 30009);

/// One port an exposure opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// The ports of an exposure: the preset's (or `port`) and, for FTP, the
/// passive range.
pub fn ports(exposure: &Exposure) -> Vec<OpenPort> {
    let protocol = exposure.protocol.unwrap_or_default();
    let base = match exposure.preset {
        Preset::Rdp => 3389,
        Preset::Smb => 445,
        Preset::Ftp => 21,
        Preset::Sftp | Preset::Ssh => 22,
        Preset::Custom => 0,
    };
    let main = exposure.port.unwrap_or(base);
    let mut out = vec![OpenPort {
        name: exposure.name.clone(),
        port: main,
        protocol,
    }];
    if exposure.preset == Preset::Ftp {
        for (i, port) in (FTP_PASSIVE.0..=FTP_PASSIVE.1).enumerate() {
            out.push(OpenPort {
                name: format!("pasv{i}"),
                port,
                protocol: Protocol::Tcp,
            });
        }
    }
    out
}

fn protocol_name(p: Protocol) -> String {
    match p {
        Protocol::Tcp => "TCP".into(),
        Protocol::Udp => "UDP".into(),
    }
}

fn meta(
    server: &VirtualServer,
    plan: &Plan,
    exposure: &Exposure,
    kind: &str,
) -> Result<ObjectMeta, OwnershipError> {
    let server_name = server.metadata.name.clone().unwrap_or_default();
    let name = names::exposure(&server_name, &exposure.name);
    let mut labels = labels::server_labels(&server_name, "exposure");
    add_tenancy(&mut labels, plan);
    Ok(ObjectMeta {
        name: Some(name.clone()),
        namespace: server.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: Some(vec![controller_ref(
            server,
            kind,
            &name,
            server.metadata.namespace.as_deref(),
        )?]),
        ..Default::default()
    })
}

fn pod_selector(server: &VirtualServer) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::SERVER.to_string(),
            server.metadata.name.clone().unwrap_or_default(),
        ),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ])
}

pub fn service(
    server: &VirtualServer,
    plan: &Plan,
    exposure: &Exposure,
) -> Result<Service, OwnershipError> {
    let ports = ports(exposure)
        .into_iter()
        .map(|p| ServicePort {
            name: Some(p.name),
            port: i32::from(p.port),
            target_port: Some(IntOrString::Int(i32::from(p.port))),
            protocol: Some(protocol_name(p.protocol)),
            ..Default::default()
        })
        .collect();
    Ok(Service {
        metadata: meta(server, plan, exposure, "Service")?,
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            selector: Some(pod_selector(server)),
            ports: Some(ports),
            load_balancer_source_ranges: (!exposure.allow_from.is_empty())
                .then(|| exposure.allow_from.clone()),
            external_traffic_policy: Some("Local".into()),
            ..Default::default()
        }),
        status: None,
    })
}

pub fn network_policy(
    server: &VirtualServer,
    plan: &Plan,
    exposure: &Exposure,
) -> Result<NetworkPolicy, OwnershipError> {
    let sources: Vec<String> = if exposure.allow_from.is_empty() {
        vec!["0.0.0.0/0".into(), "::/0".into()]
    } else {
        exposure.allow_from.clone()
    };
    let from = sources
        .into_iter()
        .map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock { cidr, except: None }),
            ..Default::default()
        })
        .collect();
    let protocol = exposure.protocol.unwrap_or_default();
    let main = ports(exposure)[0].port;
    let mut policy_ports = vec![NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(main))),
        protocol: Some(protocol_name(protocol)),
        end_port: None,
    }];
    if exposure.preset == Preset::Ftp {
        policy_ports.push(NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(FTP_PASSIVE.0))),
            end_port: Some(i32::from(FTP_PASSIVE.1)),
            protocol: Some("TCP".into()),
        });
    }
    Ok(NetworkPolicy {
        metadata: meta(server, plan, exposure, "NetworkPolicy")?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pod_selector(server)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(policy_ports),
            }]),
            ..Default::default()
        }),
    })
}
