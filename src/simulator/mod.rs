//! The virtualization simulator: plays KubeVirt's and CDI's part for the
//! kinds partnercloud writes, in the spirit of KWOK. It watches
//! VirtualMachines, DataVolumes, VirtualMachineSnapshots and DataSources
//! (and LoadBalancer Services, as a cloud would) and moves their status the
//! way the real controllers do: imports with progress (really probing the
//! URL, so a local HTTP server in a test decides success; hosts under
//! `.invalid` answer 404), clones and snapshot restores, VMs starting and
//! stopping with an address, restart-required on resize, snapshots with
//! their content and restore sizes, DataSource readiness.
//!
//! It is a test and demo tool: the operator never links it into its
//! reconcile path and cannot tell it from KubeVirt. It never touches our
//! own kinds.

pub mod data_source;
pub mod data_volume;
pub mod failures;
pub mod load_balancer;
pub mod snapshot;
pub mod virtual_machine;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use failures::{Failure, FailurePlan};

use crate::http_fetch::HttpClient;

/// How the simulator behaves.
#[derive(Clone)]
pub struct SimConfig {
    /// Latency of each step (an import's progress tick, a VM boot stage).
    /// Zero in most tests.
    pub step: Duration,
    /// Import progress gained per step, in percent.
    pub import_percent_per_step: u32,
    /// Failures to inject.
    pub failures: Arc<FailurePlan>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            step: Duration::ZERO,
            import_percent_per_step: 25,
            failures: Arc::new(FailurePlan::default()),
        }
    }
}

/// Shared by the simulator's loops.
pub struct Sim {
    pub client: Client,
    pub config: SimConfig,
    pub http: HttpClient,
}

impl Sim {
    /// When to look at an unfinished object again. Never a busy loop, even
    /// with zero latency: status writes wake the loops anyway.
    pub fn next_step(&self) -> Duration {
        self.config.step.max(Duration::from_millis(100))
    }

    /// When to look again at an object waiting on another one. Watches
    /// bring the real news; this is only a backstop, kept long so that
    /// hundreds of waiting objects do not flood the API server.
    pub fn waiting(&self) -> Duration {
        self.config.step.max(Duration::from_secs(3))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("simulator setup failed: {0}")]
    Setup(String),
}

/// Runs every simulated controller until they all stop.
pub async fn run(client: Client, config: SimConfig) -> Result<(), SimError> {
    let http = HttpClient::new().map_err(|e| SimError::Setup(e.to_string()))?;
    let sim = Arc::new(Sim {
        client,
        config,
        http,
    });
    tokio::join!(
        data_volume::run(sim.clone()),
        virtual_machine::run(sim.clone()),
        snapshot::run(sim.clone()),
        data_source::run(sim.clone()),
        load_balancer::run(sim.clone()),
    );
    Ok(())
}

/// Merge-patches an object's status subresource.
pub async fn patch_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({ "status": status })),
    )
    .await
    .map(|_| ())
}

/// Stable pseudo-random bytes for an object, for addresses.
pub fn hash_bytes(seed: &str) -> [u8; 32] {
    Sha256::digest(seed.as_bytes()).into()
}

/// `now` in RFC 3339, as KubeVirt writes times.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Treats NotFound as "nothing to do".
pub fn ignore_not_found(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}
