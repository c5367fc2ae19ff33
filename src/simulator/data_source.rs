//! Plays CDI's DataSource controller: Ready when the PVC it points at
//! exists and its DataVolume (if any) has succeeded.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::{Sim, SimError, patch_status};
use crate::kubevirt::{DataSource, DataVolume};

pub async fn run(sim: Arc<Sim>) {
    let api = Api::<DataSource>::all(sim.client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    let sources = controller.store();
    controller
        // The DataVolume behind a source finishing makes it ready.
        .watches(
            Api::<DataVolume>::all(sim.client.clone()),
            watcher::Config::default(),
            move |dv| {
                let (ns, name) = (dv.namespace().unwrap_or_default(), dv.name_any());
                sources
                    .state()
                    .into_iter()
                    .filter(|s| {
                        s.spec
                            .source
                            .pvc
                            .as_ref()
                            .is_some_and(|p| p.namespace == ns && p.name == name)
                    })
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            reconcile,
            |_, _, sim: Arc<Sim>| Action::requeue(sim.next_step()),
            sim,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile(source: Arc<DataSource>, sim: Arc<Sim>) -> Result<Action, SimError> {
    let ns = source.namespace().unwrap_or_default();
    let (ready, reason, message) = match &source.spec.source.pvc {
        None => (false, "NoSource", "no source PVC".to_string()),
        Some(pvc) => {
            let claim =
                Api::<PersistentVolumeClaim>::namespaced(sim.client.clone(), &pvc.namespace)
                    .get_opt(&pvc.name)
                    .await?;
            let dv = Api::<DataVolume>::namespaced(sim.client.clone(), &pvc.namespace)
                .get_opt(&pvc.name)
                .await?;
            let dv_done = dv
                .as_ref()
                .map(|d| d.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
                .unwrap_or(true);
            match (claim, dv_done) {
                (Some(_), true) => (
                    true,
                    "Ready",
                    format!("PVC {}/{} is ready", pvc.namespace, pvc.name),
                ),
                (Some(_), false) => (
                    false,
                    "NotReady",
                    format!(
                        "DataVolume {}/{} is still being populated",
                        pvc.namespace, pvc.name
                    ),
                ),
                (None, _) => (
                    false,
                    "NotFound",
                    format!("PVC {}/{} not found", pvc.namespace, pvc.name),
                ),
            }
        }
    };
    let current = source
        .status
        .as_ref()
        .and_then(|s| crate::kubevirt::condition(&s.conditions, "Ready"))
        .map(|c| (c.status.clone(), c.message.clone()));
    let wanted_status = if ready { "True" } else { "False" };
    if current != Some((wanted_status.to_string(), Some(message.clone()))) {
        let api = Api::<DataSource>::namespaced(sim.client.clone(), &ns);
        patch_status(&api, &source.name_any(), serde_json::json!({"conditions": [{"type": "Ready", "status": wanted_status, "reason": reason, "message": message}]})).await?;
    }
    Ok(if ready {
        Action::await_change()
    } else {
        Action::requeue(sim.waiting())
    })
}
