//! The shared control plane and helpers for talking to it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use partnercloud::controlplane::{ControlPlane, ControlPlaneOptions, find_assets, kubevirt_crds};
use serde_json::Value;

static CLUSTER: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane for this test binary, started on first use.
///
/// It is started on a thread of its own with its own runtime, because each
/// `#[tokio::test]` has a runtime that ends with the test; the control plane's
/// processes belong to the harness, not to any runtime.
pub fn cluster() -> &'static ControlPlane {
    CLUSTER.get_or_init(|| {
        std::thread::spawn(|| {
            let assets = find_assets().unwrap_or_else(|e| panic!("{e}"));
            let mut crds = partnercloud::crdgen::all();
            crds.extend(kubevirt_crds());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime
                .block_on(ControlPlane::start(ControlPlaneOptions {
                    assets_dir: assets,
                    crds,
                    controller_manager: true,
                }))
                .unwrap_or_else(|e| panic!("control plane did not start: {e}: {e:?}"))
        })
        .join()
        .expect("control plane start panicked")
    })
}

/// A client with cluster-admin rights.
pub async fn admin() -> Client {
    cluster().admin_client().await.expect("admin client")
}

/// Creates a namespace with a unique name starting with `prefix`.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// The API resource for one of our kinds or the KubeVirt test kinds.
pub fn resource_of(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let crds = partnercloud::crdgen::all()
        .into_iter()
        .chain(kubevirt_crds());
    let crd = crds
        .into_iter()
        .find(|c| c.spec.group == group && c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {api_version} {kind}"));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        &crd.spec.names.plural,
    )
}

/// A dynamic API for the object's kind, in `namespace` unless cluster-scoped.
pub fn api_for(client: &Client, object: &Value, namespace: &str) -> Api<DynamicObject> {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let resource = resource_of(api_version, kind);
    if kind == "PartnerAccount" {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

/// Creates an object given as JSON; returns the API server's answer.
pub async fn create(
    client: &Client,
    object: &Value,
    namespace: &str,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let api = api_for(client, object, namespace);
    let dynamic: DynamicObject = serde_json::from_value(object.clone()).expect("object shape");
    api.create(
        &PostParams {
            dry_run,
            ..Default::default()
        },
        &dynamic,
    )
    .await
}

/// Reads a YAML fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// RFC 7386 JSON merge patch: objects merge, `null` deletes, anything else replaces.
pub fn merged(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            let mut out = b.clone();
            for (key, value) in p {
                if value.is_null() {
                    out.remove(key);
                } else {
                    let next = merged(out.get(key).unwrap_or(&Value::Null), value);
                    out.insert(key.clone(), next);
                }
            }
            Value::Object(out)
        }
        (_, p) => p.clone(),
    }
}

/// Polls `check` until it returns true, or panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
