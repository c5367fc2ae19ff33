//! Plays CDI: moves DataVolumes through their phases and creates the PVC
//! each one populates, as CDI does.
//!
//! - `http`: the URL is really probed (HEAD). A 2xx starts an import that
//!   gains progress each step; anything else (and any host under
//!   `.invalid`) fails like CDI's importer does: the phase stays
//!   `ImportInProgress`, `restartCount` climbs, and the `Running` condition
//!   carries the error. CDI retries for ever; so does the simulator (every
//!   step, up to a restart count of 10) and an import that starts to work
//!   recovers.
//! - `blank`: succeeds at once.
//! - `sourceRef` (a DataSource) and `pvc`: a clone, once the source is ready.
//! - `snapshot`: a restore from a volume snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Failure, Sim, SimError, patch_status};
use crate::kubevirt::data_volume::DataVolumeStatus;
use crate::kubevirt::{DataSource, DataVolume, condition};

const MAX_RESTARTS: i32 = 10;

pub async fn run(sim: Arc<Sim>) {
    let api = Api::<DataVolume>::all(sim.client.clone());
    Controller::new(api, watcher::Config::default())
        .owns(
            Api::<PersistentVolumeClaim>::all(sim.client.clone()),
            watcher::Config::default(),
        )
        .run(
            reconcile,
            |_, _, sim: Arc<Sim>| Action::requeue(sim.next_step()),
            sim,
        )
        .for_each(|_| async {})
        .await;
}

/// What kind of population a DataVolume asks for.
enum Population {
    Import(String),
    Blank,
    CloneFrom {
        namespace: String,
        name: String,
        via_data_source: bool,
    },
    Restore,
}

fn population(dv: &DataVolume) -> Population {
    let ns = dv.namespace().unwrap_or_default();
    if let Some(r) = &dv.spec.source_ref {
        return Population::CloneFrom {
            namespace: r.namespace.clone().unwrap_or(ns),
            name: r.name.clone(),
            via_data_source: true,
        };
    }
    let source = dv.spec.source.clone().unwrap_or_default();
    if let Some(http) = source.http {
        Population::Import(http.url)
    } else if let Some(pvc) = source.pvc {
        Population::CloneFrom {
            namespace: pvc.namespace,
            name: pvc.name,
            via_data_source: false,
        }
    } else if source.snapshot.is_some() {
        Population::Restore
    } else {
        Population::Blank
    }
}

async fn reconcile(dv: Arc<DataVolume>, sim: Arc<Sim>) -> Result<Action, SimError> {
    if dv.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = dv.namespace().unwrap_or_default();
    let name = dv.name_any();
    let api = Api::<DataVolume>::namespaced(sim.client.clone(), &ns);
    let status = dv.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Ok(Action::await_change());
    }
    if let Err(refusal) = ensure_claim(&sim, &dv).await? {
        let next = json!({"phase": "Pending", "progress": "N/A", "conditions": [
            {"type": "Bound", "status": "False", "reason": "ClaimPending", "message": refusal},
            {"type": "Ready", "status": "False", "reason": "ClaimPending", "message": refusal},
        ]});
        patch_status(&api, &name, next).await?;
        return Ok(Action::requeue(sim.waiting()));
    }

    let next = match population(&dv) {
        Population::Blank => Some(succeeded()),
        Population::Import(url) => import_step(&sim, &dv, &status, &url).await,
        Population::Restore => progress_step(&sim, &status, "CloneInProgress"),
        Population::CloneFrom {
            namespace,
            name: source,
            via_data_source,
        } => {
            if clone_source_ready(&sim, &namespace, &source, via_data_source).await? {
                progress_step(&sim, &status, "CloneInProgress")
            } else if phase != "CloneScheduled" {
                Some(
                    json!({"phase": "CloneScheduled", "progress": "N/A", "conditions": [
                        {"type": "Running", "status": "False", "reason": "CloneScheduled", "message": format!("waiting for source {namespace}/{source}")}
                    ]}),
                )
            } else {
                None
            }
        }
    };
    match next {
        Some(next) => {
            patch_status(&api, &name, next).await?;
            Ok(Action::requeue(sim.next_step()))
        }
        None => Ok(Action::requeue(sim.waiting())),
    }
}

fn succeeded() -> serde_json::Value {
    json!({"phase": "Succeeded", "progress": "100.0%", "conditions": [
        {"type": "Bound", "status": "True", "reason": "Bound"},
        {"type": "Ready", "status": "True", "reason": "Completed"},
        {"type": "Running", "status": "False", "reason": "Completed"},
    ]})
}

fn percent(status: &DataVolumeStatus) -> u32 {
    status
        .progress
        .as_deref()
        .and_then(|p| p.trim_end_matches('%').parse::<f64>().ok())
        .map(|p| p as u32)
        .unwrap_or(0)
}

/// One tick of an import or clone: progress grows until done.
fn progress_step(
    sim: &Sim,
    status: &DataVolumeStatus,
    in_progress: &str,
) -> Option<serde_json::Value> {
    let current = if status.phase.as_deref() == Some(in_progress) {
        percent(status)
    } else {
        0
    };
    let next = current + sim.config.import_percent_per_step.max(1);
    if next >= 100 {
        return Some(succeeded());
    }
    Some(
        json!({"phase": in_progress, "progress": format!("{next}.00%"), "restartCount": status.restart_count.unwrap_or(0), "conditions": [
            {"type": "Bound", "status": "True", "reason": "Bound"},
            {"type": "Ready", "status": "False", "reason": "TransferRunning"},
            {"type": "Running", "status": "True", "reason": "Pod is running"},
        ]}),
    )
}

async fn import_step(
    sim: &Sim,
    dv: &DataVolume,
    status: &DataVolumeStatus,
    url: &str,
) -> Option<serde_json::Value> {
    let already_running = status.phase.as_deref() == Some("ImportInProgress")
        && status.restart_count.unwrap_or(0) == 0
        && percent(status) > 0;
    if already_running {
        return progress_step(sim, status, "ImportInProgress");
    }
    if status.phase.is_none() {
        return Some(json!({"phase": "ImportScheduled", "progress": "N/A", "restartCount": 0}));
    }
    let ns = dv.namespace().unwrap_or_default();
    let injected = sim.config.failures.applies(
        &ns,
        &dv.name_any(),
        dv.meta().annotations.as_ref(),
        Failure::Import404,
    );
    match probe(sim, url, injected).await {
        Ok(()) => progress_step(
            sim,
            &DataVolumeStatus {
                phase: Some("ImportInProgress".into()),
                progress: Some("0%".into()),
                restart_count: Some(0),
                ..Default::default()
            },
            "ImportInProgress",
        ),
        Err(message) => {
            let restarts = status.restart_count.unwrap_or(0);
            let unchanged = restarts >= MAX_RESTARTS
                && condition(&status.conditions, "Running").and_then(|c| c.message.as_deref())
                    == Some(message.as_str());
            (!unchanged).then(|| {
                json!({"phase": "ImportInProgress", "progress": "N/A", "restartCount": (restarts + 1).min(MAX_RESTARTS), "conditions": [
                    {"type": "Bound", "status": "True", "reason": "Bound"},
                    {"type": "Ready", "status": "False", "reason": "Error"},
                    {"type": "Running", "status": "False", "reason": "Error", "message": message},
                ]})
            })
        }
    }
}

/// Probes the URL as CDI's importer would, with its error wording.
async fn probe(sim: &Sim, url: &str, injected: bool) -> Result<(), String> {
    let not_found = || {
        "Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found".to_string()
    };
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .unwrap_or_default();
    if injected || host.ends_with(".invalid") {
        return Err(not_found());
    }
    match sim.http.probe(url, Duration::from_secs(10)).await {
        Ok(p) if (200..300).contains(&p.status) => Ok(()),
        Ok(p) if p.status == 404 => Err(not_found()),
        Ok(p) => Err(format!(
            "Unable to connect to http data source: expected status code 200, got {}",
            p.status
        )),
        Err(e) => Err(format!("Unable to connect to http data source: {e}")),
    }
}

async fn clone_source_ready(
    sim: &Sim,
    namespace: &str,
    name: &str,
    via_data_source: bool,
) -> Result<bool, SimError> {
    if via_data_source {
        let source = Api::<DataSource>::namespaced(sim.client.clone(), namespace)
            .get_opt(name)
            .await?;
        return Ok(source.and_then(|s| s.status).is_some_and(|s| {
            condition(&s.conditions, "Ready").is_some_and(|c| c.status == "True")
        }));
    }
    Ok(
        Api::<PersistentVolumeClaim>::namespaced(sim.client.clone(), namespace)
            .get_opt(name)
            .await?
            .is_some(),
    )
}

/// Creates the PVC a DataVolume populates (same name, owned by it). A
/// ResourceQuota refusal is returned as the reason the DataVolume waits.
async fn ensure_claim(sim: &Sim, dv: &DataVolume) -> Result<Result<(), String>, SimError> {
    let ns = dv.namespace().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(sim.client.clone(), &ns);
    if claims.get_opt(&dv.name_any()).await?.is_some() {
        return Ok(Ok(()));
    }
    let storage = dv.spec.storage.as_ref();
    let size = storage
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage").cloned())
        .unwrap_or_else(|| "1Gi".into());
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(dv.name_any()),
            namespace: Some(ns.clone()),
            labels: Some(BTreeMap::from([(
                "app".to_string(),
                "containerized-data-importer".to_string(),
            )])),
            owner_references: dv.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.and_then(|s| s.storage_class_name.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    match claims.create(&PostParams::default(), &claim).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Ok(())),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(Err(s.message)),
        Err(e) => Err(e.into()),
    }
}
