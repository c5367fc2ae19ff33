//! What every reconcile gets: the client, an injected clock, one shared
//! event recorder per controller, and explicit settings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The real clock plus an offset that only ever grows: time runs as usual
/// and can also jump ahead, never back. Integration tests share one
/// operator for the whole test binary; with this clock a test makes a
/// schedule's slot, a run deadline or a drill timeout arrive without
/// waiting for it, while everything else keeps seeing time move forward.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicU64,
}

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// How far ahead of the system clock this clock is.
    pub fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let offset = k8s_openapi::jiff::SignedDuration::try_from(self.offset())
            .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
        let now = Timestamp::now();
        now.saturating_add(offset).unwrap_or(now)
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
    /// Reconciles running at once per controller. A reconcile mostly waits
    /// on the API server, so a few in flight keep throughput up; a bound
    /// keeps the API server's load and our memory predictable.
    pub concurrency: u16,
    /// Importer restarts after which an import that keeps failing is
    /// reported as `ImportFailed` (CDI itself retries forever).
    pub import_retry_limit: i32,
    /// How soon to look again at an object that is not Ready yet. Every
    /// child and referenced object is watched, so this is only a backstop;
    /// short values make hundreds of waiting objects starve the queue.
    pub requeue_waiting: Duration,
    /// How often a converged object is looked at again anyway.
    pub resync: Duration,
    /// Image URL prefixes to rewrite before fetching.
    pub image_mirrors: Vec<super::mirror::ImageMirror>,
    /// Template images whose SHA-256 the operator streams at once. Each
    /// download holds a connection and a core's worth of hashing; two keep
    /// a 2-core operator responsive while golden images are verified.
    pub checksum_concurrency: usize,
    /// How long one checksum download may take before it is abandoned
    /// (and retried later). A 40 GiB image at 50 MB/s needs ~15 minutes.
    pub checksum_timeout: Duration,
    /// The cluster's pod CIDRs, cut out of the client isolation policy's
    /// "outside the cluster" egress rule (see
    /// `partner_account::build::network_policy`).
    pub cluster_network: super::partner_account::build::ClusterNetwork,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            import_retry_limit: 3,
            requeue_waiting: Duration::from_secs(30),
            resync: Duration::from_secs(300),
            image_mirrors: Vec::new(),
            checksum_concurrency: 2,
            checksum_timeout: Duration::from_secs(30 * 60),
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

    #[test]
    fn offset_clock_runs_with_the_system_clock_and_jumps_ahead() {
        let clock = OffsetClock::new();
        let before = Timestamp::now();
        assert!(clock.now() >= before);
        clock.advance(Duration::from_secs(7200));
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.offset(), Duration::from_secs(7260));
        let ahead = clock.now().duration_since(Timestamp::now());
        assert!(
            ahead.as_secs() >= 7250 && ahead.as_secs() <= 7260,
            "{ahead:?}"
        );
    }
}
