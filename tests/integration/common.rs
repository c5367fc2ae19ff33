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

/// The shared control plane's directory (PKI with the test CA's key, etcd
/// data, logs). A static is never dropped, so the harness's own cleanup
/// never runs for it; this is removed when the test binary exits instead
/// (its processes die with it, by PR_SET_PDEATHSIG).
static CLUSTER_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

extern "C" fn remove_cluster_dir() {
    if let Some(dir) = CLUSTER_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

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
            runtime.block_on(async {
                let plane = ControlPlane::start(ControlPlaneOptions {
                    assets_dir: assets,
                    crds,
                    controller_manager: true,
                })
                .await
                .unwrap_or_else(|e| panic!("control plane did not start: {e}: {e:?}"));
                // What an installer applies with the CRDs: the roles partner
                // admins are bound to (manifests/rbac/).
                let client = plane.admin_client().await.expect("admin client");
                partnercloud::controllers::partner_account::rbac::install(&client)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                if CLUSTER_DIR.set(plane.dir().to_path_buf()).is_ok() {
                    // SAFETY: registers a plain function with no arguments,
                    // which only reads a static.
                    unsafe { libc::atexit(remove_cluster_dir) };
                }
                plane
            })
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

/// The operator and the simulator, running in-process against the shared
/// control plane on a runtime of their own, plus a loopback image server.
pub struct Operator {
    /// Failures the tests inject into the simulator.
    pub failures: std::sync::Arc<partnercloud::simulator::FailurePlan>,
    /// The operator's clock: the system clock plus an offset that only
    /// grows. A test that moves it must hold [`clock_lock`] for its whole
    /// run, and so must any test that depends on time not jumping (a run
    /// deadline, a schedule); other tests only see condition timestamps
    /// move ahead.
    pub clock: std::sync::Arc<partnercloud::controllers::context::OffsetClock>,
    /// `http://127.0.0.1:<port>`; serves deterministic bytes under `/images/`.
    pub images: String,
    /// The operator reaches the API server through this proxy, which can
    /// make its VirtualServer watches expire (410 Gone). The simulator
    /// talks to the API server directly.
    pub proxy: crate::expiry_proxy::ExpiryProxy,
}

static OPERATOR: OnceLock<Operator> = OnceLock::new();

/// Starts (once) the operator's controllers and the simulator.
pub fn operator() -> &'static Operator {
    OPERATOR.get_or_init(|| {
        let cluster = cluster();
        let kubeconfig = cluster.admin_kubeconfig().to_path_buf();
        let failures = std::sync::Arc::new(partnercloud::simulator::FailurePlan::default());
        let plan = failures.clone();
        let clock = std::sync::Arc::new(partnercloud::controllers::context::OffsetClock::new());
        let operator_clock = clock.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let images = partnercloud::image_server::ImageServer::start()
                    .await
                    .expect("image server");
                let direct = client_from(&kubeconfig).await;
                let proxy =
                    crate::expiry_proxy::ExpiryProxy::start(direct.clone(), "virtualservers").await;
                let client = proxy.client();
                let settings = partnercloud::controllers::context::Settings {
                    requeue_waiting: Duration::from_secs(15),
                    // Short, so tests see several resyncs of converged objects.
                    resync: Duration::from_secs(2),
                    ..Default::default()
                };
                let sim = partnercloud::simulator::SimConfig {
                    failures: plan,
                    ..Default::default()
                };
                tokio::spawn(async move { partnercloud::simulator::run(direct, sim).await });
                tokio::spawn(partnercloud::controllers::run_all(
                    client,
                    operator_clock,
                    settings,
                ));
                tx.send((images.base_url(), proxy))
                    .expect("report image server and proxy");
                let _keep = images;
                futures::future::pending::<()>().await;
            });
        });
        let (images, proxy) = rx.recv().expect("operator thread started");
        Operator {
            failures,
            images,
            clock,
            proxy,
        }
    })
}

/// Serialises the tests that move the operator's clock or depend on it
/// not jumping. A tokio mutex: it is held across awaits, from the
/// runtimes of different tests, and a failed test does not poison it.
pub async fn clock_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

async fn client_from(kubeconfig: &std::path::Path) -> Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("client config");
    Client::try_from(config).expect("client")
}

/// Waits until an object's `Ready` condition has `status` and, when given,
/// `reason`; returns the object. Panics with its conditions on timeout.
pub async fn wait_ready<K>(
    api: &Api<K>,
    name: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = Value::Null;
    loop {
        if let Ok(Some(object)) = api.get_opt(name).await {
            let value = serde_json::to_value(&object).unwrap();
            let conditions = value
                .pointer("/status/conditions")
                .cloned()
                .unwrap_or(Value::Null);
            let ready = conditions
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .cloned();
            if let Some(ready) = &ready
                && ready["status"] == status
                && reason.is_none_or(|r| ready["reason"] == r)
            {
                return object;
            }
            last = value.get("status").cloned().unwrap_or(Value::Null);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: Ready={status} reason={reason:?} not reached in {timeout:?}; last status: {last:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The message of the `Ready` condition among `conditions`; panics when
/// there is none.
pub fn ready_message(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .expect("a Ready condition")
}
