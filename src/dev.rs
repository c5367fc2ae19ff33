//! The `dev` main job: a local control plane, the operator and the
//! simulator in one process, the examples applied, and a live table of
//! everything converging.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::api::conditions;
use crate::controllers::context::{Settings, SystemClock};
use crate::controllers::mirror::ImageMirror;
use crate::controlplane::{ControlPlane, ControlPlaneOptions, find_assets, kubevirt_crds};
use crate::image_server::ImageServer;
use crate::simulator::{self, SimConfig};

/// The host example manifests use for images; `dev` mirrors it to the root
/// of a local image server, so `https://images.partnercloud.example/images/x.qcow2`
/// is served (with [`crate::image_server::image_sha256`]`("/images/x.qcow2")`
/// as its digest) from `/images/x.qcow2`.
pub const EXAMPLE_IMAGE_HOST: &str = "https://images.partnercloud.example/";

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("control plane: {0}")]
    ControlPlane(#[from] crate::controlplane::Error),
    #[error("reading examples in {path}: {reason}")]
    Examples { path: PathBuf, reason: String },
    #[error("applying {what}: {source}")]
    Apply { what: String, source: kube::Error },
    #[error("image server: {0}")]
    ImageServer(std::io::Error),
    #[error("installing manifests/rbac: {0}")]
    Rbac(#[from] crate::controllers::partner_account::rbac::InstallError),
    #[error("not everything became Ready within {0:?}")]
    Timeout(Duration),
}

/// Options of the `dev` command.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub examples: PathBuf,
    pub until_ready: bool,
    pub timeout: Duration,
    pub step: Duration,
}

/// Every document of every `*.yaml` file in `dir`, in file-name order.
pub fn read_examples(dir: &Path) -> Result<Vec<Value>, DevError> {
    let err = |reason: String| DevError::Examples {
        path: dir.to_path_buf(),
        reason,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| err(format!("{}: {e}", file.display())))?;
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| err(format!("{}: {e}", file.display())))?;
        docs.extend(parsed.into_iter().filter(|d| !d.is_null()));
    }
    Ok(docs)
}

/// An applied example, to watch for readiness.
#[derive(Debug, Clone)]
struct Tracked {
    kind: String,
    namespace: Option<String>,
    name: String,
    api: Api<DynamicObject>,
}

/// Applies one document with server-side apply; waits for its namespace
/// to appear first (client namespaces are created by the operator).
async fn apply_doc(client: &Client, doc: &Value, deadline: Instant) -> Result<Tracked, DevError> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let what = format!("{kind} {name}");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (resource, caps) = pinned_kind(client, &gvk)
        .await
        .map_err(|source| DevError::Apply {
            what: what.clone(),
            source,
        })?;
    let namespace = (caps.scope == kube::discovery::Scope::Namespaced).then(|| {
        doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string()
    });
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    loop {
        match api
            .patch(
                &name,
                &PatchParams::apply("partnercloud-dev").force(),
                &Patch::Apply(doc),
            )
            .await
        {
            Ok(_) => {
                return Ok(Tracked {
                    kind,
                    namespace,
                    name,
                    api,
                });
            }
            // The namespace is made by a PartnerAccount applied just before.
            Err(kube::Error::Api(s)) if s.code == 404 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await
            }
            Err(source) => return Err(DevError::Apply { what, source }),
        }
    }
}

/// One row of the live table.
fn row(object: &DynamicObject, kind: &str) -> (bool, String) {
    let status = object.data.get("status").cloned().unwrap_or(Value::Null);
    let conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> =
        serde_json::from_value(
            status
                .get("conditions")
                .cloned()
                .unwrap_or(Value::Array(vec![])),
        )
        .unwrap_or_default();
    let ready = conditions::find(&conditions, conditions::READY);
    let is_ready = ready.is_some_and(|c| c.status == conditions::TRUE);
    let phase = status.get("phase").and_then(Value::as_str).unwrap_or("-");
    let address = status
        .pointer("/addresses/0/ip")
        .and_then(Value::as_str)
        .unwrap_or("");
    let detail = ready
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_else(|| "waiting for the operator".into());
    let ns = object.namespace().unwrap_or_default();
    let mut detail = detail;
    // On a character boundary: messages may carry Cyrillic names.
    detail = detail.chars().take(160).collect();
    (
        is_ready,
        format!(
            "{kind:<15} {:<38} {phase:<12} {:<6} {address:<15} {detail}",
            format!("{ns}/{}", object.name_any()).trim_start_matches('/'),
            if is_ready { "True" } else { "False" }
        ),
    )
}

/// Runs the dev job. Returns when interrupted, or with `until_ready` once
/// everything is Ready (or the timeout passes).
pub async fn run(options: DevOptions) -> Result<(), DevError> {
    let started = Instant::now();
    let assets = find_assets()?;
    let mut crds = crate::crdgen::all();
    crds.extend(kubevirt_crds());
    eprintln!("starting the local control plane ...");
    let cluster = ControlPlane::start(ControlPlaneOptions {
        assets_dir: assets,
        crds,
        controller_manager: true,
    })
    .await?;
    eprintln!(
        "control plane up in {:.1}s; kubeconfig: {}",
        started.elapsed().as_secs_f64(),
        cluster.admin_kubeconfig().display()
    );
    let client = cluster.admin_client().await?;
    // What an installer applies before the operator starts: the roles
    // partner admins are bound to.
    crate::controllers::partner_account::rbac::install(&client).await?;

    let images = ImageServer::start().await.map_err(DevError::ImageServer)?;
    let mirror = ImageMirror {
        from: EXAMPLE_IMAGE_HOST.into(),
        to: format!("{}/", images.base_url()),
    };
    let settings = Settings {
        image_mirrors: vec![mirror],
        requeue_waiting: Duration::from_secs(15),
        ..Settings::default()
    };
    let sim_config = SimConfig {
        step: options.step,
        ..SimConfig::default()
    };
    let sim_client = client.clone();
    let simulator = tokio::spawn(async move {
        if let Err(e) = simulator::run(sim_client, sim_config).await {
            eprintln!("simulator stopped: {e}");
        }
    });
    let op_client = client.clone();
    let operator = tokio::spawn(async move {
        crate::controllers::run_all(op_client, Arc::new(SystemClock), settings).await
    });

    let deadline = Instant::now() + options.timeout;
    let docs = read_examples(&options.examples)?;
    let mut tracked = Vec::new();
    for doc in &docs {
        tracked.push(apply_doc(&client, doc, deadline).await?);
    }
    eprintln!(
        "applied {} example objects from {}",
        tracked.len(),
        options.examples.display()
    );
    let outcome = watch_table(&tracked, &options, deadline, started).await;
    // Stop our clients before the control plane goes, so nothing logs
    // about a vanished API server.
    operator.abort();
    simulator.abort();
    let _ = operator.await;
    let _ = simulator.await;
    drop(cluster);
    outcome
}

async fn watch_table(
    tracked: &[Tracked],
    options: &DevOptions,
    deadline: Instant,
    started: Instant,
) -> Result<(), DevError> {
    let ours: Vec<&Tracked> = tracked
        .iter()
        .filter(|t| {
            [
                "VirtualServer",
                "ServerTemplate",
                "BackupPolicy",
                "PartnerAccount",
            ]
            .contains(&t.kind.as_str())
        })
        .collect();
    let mut last = String::new();
    loop {
        let mut lines = Vec::new();
        let mut all_ready = true;
        let mut blocking = BTreeMap::new();
        for t in &ours {
            match t.api.get_opt(&t.name).await {
                Ok(Some(object)) => {
                    let (ready, line) = row(&object, &t.kind);
                    all_ready &= ready;
                    if !ready {
                        blocking.insert(
                            format!(
                                "{} {}/{}",
                                t.kind,
                                t.namespace.clone().unwrap_or_default(),
                                t.name
                            ),
                            line.clone(),
                        );
                    }
                    lines.push(line);
                }
                _ => {
                    all_ready = false;
                    lines.push(format!("{:<15} {} (not found)", t.kind, t.name));
                }
            }
        }
        let table = format!(
            "{:<15} {:<38} {:<12} {:<6} {:<15} {}\n{}",
            "KIND",
            "NAME",
            "PHASE",
            "READY",
            "ADDRESS",
            "REASON",
            lines.join("\n")
        );
        if table != last {
            println!("\n[{:>5.1}s]\n{table}", started.elapsed().as_secs_f64());
            last = table;
        }
        if options.until_ready && all_ready {
            println!(
                "\nall {} example objects are Ready after {:.1}s",
                ours.len(),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if options.until_ready && Instant::now() > deadline {
            eprintln!("\nnot Ready after {:?}:", options.timeout);
            for (what, line) in blocking {
                eprintln!("  {what}: {line}");
            }
            return Err(DevError::Timeout(options.timeout));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_server::image_sha256;

    /// The examples carry real digests of what `dev` serves, so they
    /// cannot drift from the image server.
    #[test]
    fn example_template_digests_match_what_dev_serves() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples");
        let docs = read_examples(&dir).unwrap();
        let images: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ServerTemplate")
            .map(|d| &d["spec"]["source"]["image"])
            .filter(|i| !i.is_null())
            .collect();
        assert!(images.len() >= 2, "the examples import templates");
        for image in images {
            let url = image["url"].as_str().unwrap();
            let path = url
                .strip_prefix(EXAMPLE_IMAGE_HOST)
                .unwrap_or_else(|| panic!("{url} is not under {EXAMPLE_IMAGE_HOST}"));
            assert!(
                path.starts_with("images/"),
                "{url}: only /images/ is served"
            );
            assert_eq!(
                image["sha256"].as_str(),
                Some(image_sha256(&format!("/{path}")).as_str()),
                "{url}"
            );
        }
    }
}
