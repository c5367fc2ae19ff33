//! `usedBy`: how many VirtualServers name a template as their source.
//! Counted from the controller's in-memory store of servers, so it costs
//! no API call.

use std::sync::Arc;

use kube::ResourceExt;

use crate::api::{ServerTemplate, VirtualServer};

/// Whether `server` deploys from the template `namespace/name`
/// (`spec.source.template.namespace` defaults to the server's own).
pub fn deploys_from(server: &VirtualServer, namespace: &str, name: &str) -> bool {
    server.spec.source.template.as_ref().is_some_and(|t| {
        t.name == name
            && t.namespace
                .clone()
                .unwrap_or_else(|| server.namespace().unwrap_or_default())
                == namespace
    })
}

/// Servers, in any namespace, that name the template and are not being deleted.
pub fn used_by(template: &ServerTemplate, servers: &[Arc<VirtualServer>]) -> i32 {
    let (ns, name) = (
        template.namespace().unwrap_or_default(),
        template.name_any(),
    );
    let count = servers
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none() && deploys_from(s, &ns, &name))
        .count();
    i32::try_from(count).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(ns: &str, name: &str, template: serde_json::Value) -> Arc<VirtualServer> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "partnercloud.io/v1alpha1", "kind": "VirtualServer",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"disks": [{"name": "system", "size": "100Gi"}], "source": {"template": template}}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn counts_servers_in_any_namespace_that_name_the_template() {
        let template: ServerTemplate = serde_json::from_value(serde_json::json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "ServerTemplate",
            "metadata": {"name": "win", "namespace": "partner"},
            "spec": {"os": {"type": "windows", "name": "W"}, "diskSize": "60Gi", "source": {"image": {"url": "https://x/y"}}}
        }))
        .unwrap();
        let servers = vec![
            server("partner", "a", serde_json::json!({"name": "win"})),
            server(
                "client",
                "b",
                serde_json::json!({"name": "win", "namespace": "partner"}),
            ),
            server("client", "c", serde_json::json!({"name": "win"})),
            server("partner", "d", serde_json::json!({"name": "linux"})),
        ];
        assert_eq!(used_by(&template, &servers), 2);
        let mut leaving = (*servers[0]).clone();
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-01-01T00:00:00Z".parse().unwrap(),
            ));
        assert_eq!(
            used_by(&template, &[Arc::new(leaving), servers[1].clone()]),
            1
        );
    }
}
