//! What every reconcile gets: the client, an injected clock, one shared
//! event recorder per controller, and explicit settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

/// The time source. Reconcilers never read the system clock directly, so
/// schedules, deadlines and metering are tested without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to, for tests.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    pub fn set(&self, to: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let span = k8s_openapi::jiff::SignedDuration::try_from(by)
            .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
        *now = now.saturating_add(span).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Controller settings, chosen explicitly rather than left at library defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Reconciles running at once per controller. Each one does a handful
    /// of API calls, so a small number keeps the API server's load and our
    /// memory bounded; 4 keeps a 2-core operator busy without queueing.
    pub concurrency: u16,
    /// Importer restarts after which an import that keeps failing is
    /// reported as `ImportFailed` (CDI itself retries forever).
    pub import_retry_limit: i32,
    /// How soon to look again while waiting on something outside our
    /// watches (a template becoming ready, a load balancer address).
    pub requeue_waiting: Duration,
    /// How often a converged object is looked at again anyway.
    pub resync: Duration,
    /// Image URL prefixes to rewrite before fetching.
    pub image_mirrors: Vec<super::mirror::ImageMirror>,
    /// The cluster's pod CIDRs, cut out of the client isolation policy's
    /// "outside the cluster" egress rule (see
    /// `partner_account::build::network_policy`).
    pub cluster_network: super::partner_account::build::ClusterNetwork,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            import_retry_limit: 3,
            requeue_waiting: Duration::from_secs(10),
            resync: Duration::from_secs(300),
            image_mirrors: Vec::new(),
            cluster_network: Default::default(),
        }
    }
}

/// Shared by all reconciles of one controller.
pub struct Context {
    pub client: Client,
    pub clock: Arc<dyn Clock>,
    pub recorder: Recorder,
    pub settings: Settings,
    /// One lock per partner, serialising its quota decisions.
    pub partner_locks: PartnerLocks,
}

/// One async lock per partner: quota decisions for servers of the same
/// partner run one at a time, so servers created at the same instant in
/// different client namespaces cannot together exceed the pool.
///
/// The locks are in-process. That is enough because the operator runs as
/// one active replica (the Deployment has `replicas: 1` and the `Recreate`
/// strategy); a second active replica would need a lock in the cluster (a
/// Lease per partner) instead. Entries are never removed: one small mutex
/// per partner ever seen.
#[derive(Default)]
pub struct PartnerLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl PartnerLocks {
    /// The lock of `partner`, created on first use.
    pub fn of(&self, partner: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(partner.to_string()).or_default().clone()
    }
}

impl Context {
    pub fn new(
        client: Client,
        clock: Arc<dyn Clock>,
        controller: &str,
        settings: Settings,
    ) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            clock,
            recorder,
            settings,
            partner_locks: PartnerLocks::default(),
        }
    }

    /// Now, as a Kubernetes timestamp.
    pub fn now(&self) -> Time {
        Time(self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_lock_per_partner() {
        let locks = PartnerLocks::default();
        let a = locks.of("alfa");
        assert!(Arc::ptr_eq(&a, &locks.of("alfa")));
        assert!(!Arc::ptr_eq(&a, &locks.of("beta")));
        let _held = a.lock().await;
        assert!(locks.of("alfa").try_lock().is_err(), "same partner waits");
        assert!(locks.of("beta").try_lock().is_ok(), "other partners do not");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start: Timestamp = "2026-03-29T00:30:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(clock.now().to_string(), "2026-03-29T01:30:00Z");
    }
}
