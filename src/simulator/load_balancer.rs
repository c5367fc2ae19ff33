//! Plays a cloud load-balancer controller: every LoadBalancer Service gets
//! an address from 198.51.100.0/24 (TEST-NET-2, never routed), derived
//! from the Service's uid so it is stable.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::{Sim, SimError, hash_bytes, patch_status};

pub async fn run(sim: Arc<Sim>) {
    let api = Api::<Service>::all(sim.client.clone());
    Controller::new(api, watcher::Config::default())
        .run(
            reconcile,
            |_, _, sim: Arc<Sim>| Action::requeue(sim.next_step()),
            sim,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile(service: Arc<Service>, sim: Arc<Sim>) -> Result<Action, SimError> {
    let spec = service.spec.clone().unwrap_or_default();
    let has_address = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_some_and(|i| !i.is_empty());
    if spec.type_.as_deref() != Some("LoadBalancer")
        || has_address
        || service.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::await_change());
    }
    let h = hash_bytes(&service.uid().unwrap_or_default());
    let ip = format!("198.51.100.{}", 1 + h[0] % 250);
    let api =
        Api::<Service>::namespaced(sim.client.clone(), &service.namespace().unwrap_or_default());
    patch_status(
        &api,
        &service.name_any(),
        serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}),
    )
    .await?;
    Ok(Action::await_change())
}
