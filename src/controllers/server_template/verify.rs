//! The operator's own SHA-256 check of a template image (CDI has no
//! checksum field).
//!
//! Downloads never run inside a reconcile: a reconcile asks the
//! [`Verifier`] for the state of the check for its template's current
//! (URL, digest) and gets an answer at once, while the download itself runs
//! in a spawned task keyed by template and digest. At most
//! `Settings::checksum_concurrency` downloads run at once (a semaphore);
//! each is bounded by `Settings::checksum_timeout`. When one finishes, the
//! template is reconciled again through the controller's trigger channel;
//! while it runs, the controller requeues to surface progress.
//!
//! The result is remembered in the template's `status.checksum`, so a
//! verified (or mismatched) image is never downloaded again for the same URL
//! and digest; only a failed download (unreachable, timed out) is retried,
//! after `RETRY_AFTER`. Jobs live in memory: after a restart an unfinished
//! check simply starts over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::api::ServerTemplate;
use crate::api::server_template::ChecksumStatus;
use crate::controllers::mirror::{ImageMirror, rewrite};
use crate::http_fetch::HttpClient;

/// How long a failed download is reported before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long a finished job is kept for a reconcile to pick up.
const KEEP_FINISHED: Duration = Duration::from_secs(600);

/// What a reconcile learns about the checksum of its template's image.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The template gives no `sha256`.
    NotRequested,
    /// The digest was read (it may or may not match `expected`).
    Known(ChecksumStatus),
    /// Waiting for a download slot.
    Queued,
    /// Downloading: bytes read so far and the announced length.
    Running { read: u64, total: Option<u64> },
    /// The download failed; it is tried again after [`RETRY_AFTER`].
    Unavailable(String),
}

impl Check {
    /// Percent done while running, when the length is known.
    pub fn percent(&self) -> Option<f64> {
        match self {
            Self::Running {
                read,
                total: Some(total),
            } if *total > 0 => Some((*read as f64 * 100.0 / *total as f64).min(100.0)),
            _ => None,
        }
    }
}

/// One template's image and the digest it should have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct JobKey {
    namespace: String,
    template: String,
    url: String,
    expected: String,
}

enum JobState {
    Queued,
    Running {
        read: u64,
        total: Option<u64>,
    },
    Done {
        result: Result<String, String>,
        at: Instant,
    },
}

struct Job {
    state: Arc<Mutex<JobState>>,
    abort: AbortHandle,
}

/// Runs and remembers checksum downloads; shared by every reconcile of the
/// ServerTemplate controller.
pub struct Verifier {
    http: Result<HttpClient, String>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    jobs: Mutex<HashMap<JobKey, Job>>,
    wake: UnboundedSender<ObjectRef<ServerTemplate>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Verifier {
    pub fn new(
        concurrency: usize,
        timeout: Duration,
        wake: UnboundedSender<ObjectRef<ServerTemplate>>,
    ) -> Self {
        Self {
            http: HttpClient::new().map_err(|e| e.to_string()),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            timeout,
            jobs: Mutex::new(HashMap::new()),
            wake,
        }
    }

    /// The state of the check for the template's current image, starting a
    /// download when none is known or running. Never waits for the network.
    pub fn check(&self, template: &ServerTemplate, mirrors: &[ImageMirror]) -> Check {
        let Some(image) = &template.spec.source.image else {
            return Check::NotRequested;
        };
        let Some(expected) = &image.sha256 else {
            return Check::NotRequested;
        };
        if let Some(known) = template
            .status
            .as_ref()
            .and_then(|s| s.checksum.as_ref())
            .filter(|c| c.url == image.url && &c.expected == expected)
        {
            return Check::Known(known.clone());
        }
        let key = JobKey {
            namespace: template.namespace().unwrap_or_default(),
            template: template.name_any(),
            url: image.url.clone(),
            expected: expected.clone(),
        };
        let mut jobs = lock(&self.jobs);
        // A template's earlier source is of no interest any more, nor are
        // results nobody picked up.
        jobs.retain(|k, job| {
            let superseded =
                k.namespace == key.namespace && k.template == key.template && *k != key;
            let stale = matches!(&*lock(&job.state), JobState::Done { at, .. } if at.elapsed() > KEEP_FINISHED);
            if superseded {
                job.abort.abort();
            }
            !superseded && !stale
        });
        if let Some(job) = jobs.get(&key) {
            match &*lock(&job.state) {
                JobState::Queued => return Check::Queued,
                JobState::Running { read, total } => {
                    return Check::Running {
                        read: *read,
                        total: *total,
                    };
                }
                JobState::Done {
                    result: Ok(actual), ..
                } => {
                    return Check::Known(ChecksumStatus {
                        url: key.url.clone(),
                        expected: key.expected.clone(),
                        actual: actual.clone(),
                    });
                }
                JobState::Done {
                    result: Err(error),
                    at,
                } if at.elapsed() < RETRY_AFTER => return Check::Unavailable(error.clone()),
                JobState::Done { .. } => {}
            }
        }
        let job = self.start(
            &key,
            rewrite(mirrors, &image.url),
            ObjectRef::from_obj(template),
        );
        jobs.insert(key, job);
        Check::Queued
    }

    fn start(&self, key: &JobKey, url: String, template: ObjectRef<ServerTemplate>) -> Job {
        let state = Arc::new(Mutex::new(JobState::Queued));
        let shared = state.clone();
        let permits = self.permits.clone();
        let http = self.http.clone();
        let timeout = self.timeout;
        let wake = self.wake.clone();
        let what = format!("{}/{}", key.namespace, key.template);
        let task = tokio::spawn(async move {
            let result = match (permits.acquire_owned().await, http) {
                (Err(_), _) => Err("the verifier is shutting down".to_string()),
                (Ok(_permit), Err(e)) => Err(format!("no HTTP client: {e}")),
                (Ok(_permit), Ok(http)) => {
                    *lock(&shared) = JobState::Running {
                        read: 0,
                        total: None,
                    };
                    tracing::info!(template = %what, %url, "verifying the image's SHA-256");
                    http.sha256(&url, timeout, |read, total| {
                        *lock(&shared) = JobState::Running { read, total };
                    })
                    .await
                    .map(|d| d.sha256)
                    .map_err(|e| e.to_string())
                }
            };
            *lock(&shared) = JobState::Done {
                result,
                at: Instant::now(),
            };
            // The controller may be gone at shutdown; nothing to tell then.
            let _ = wake.unbounded_send(template);
        });
        Job {
            state,
            abort: task.abort_handle(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_server::{ImageServer, image_sha256};

    fn template(url: &str, sha256: &str) -> ServerTemplate {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "ServerTemplate",
            "metadata": {"name": "t", "namespace": "ns", "uid": "u"},
            "spec": {"os": {"type": "linux", "name": "Debian"}, "diskSize": "10Gi",
                     "source": {"image": {"url": url, "sha256": sha256}}}
        }))
        .unwrap()
    }

    async fn settle(verifier: &Verifier, t: &ServerTemplate) -> Check {
        for _ in 0..200 {
            match verifier.check(t, &[]) {
                Check::Queued | Check::Running { .. } => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                done => return done,
            }
        }
        panic!("the check did not finish");
    }

    #[tokio::test]
    async fn downloads_once_reports_the_digest_and_wakes_the_template() {
        let server = ImageServer::start().await.unwrap();
        let (tx, mut rx) = futures::channel::mpsc::unbounded();
        let verifier = Verifier::new(2, Duration::from_secs(10), tx);
        let url = format!("{}/images/a.qcow2", server.base_url());
        let right = image_sha256("/images/a.qcow2");
        let t = template(&url, &right);
        let Check::Known(known) = settle(&verifier, &t).await else {
            panic!("no digest")
        };
        assert_eq!(known.actual, right);
        assert_eq!(known.expected, right);
        assert_eq!(known.url, url);
        let requests = server.requests();
        assert!(matches!(verifier.check(&t, &[]), Check::Known(_)));
        assert_eq!(server.requests(), requests, "not downloaded again");
        let woken = futures::StreamExt::next(&mut rx).await.unwrap();
        assert_eq!(woken.name, "t");

        // A wrong digest is a known, different digest.
        let wrong = template(&url, &"0".repeat(64));
        let Check::Known(known) = settle(&verifier, &wrong).await else {
            panic!("no digest")
        };
        assert_eq!(known.actual, right);
        assert_ne!(known.actual, known.expected);
    }

    #[tokio::test]
    async fn a_remembered_result_needs_no_download_and_a_404_is_unavailable() {
        let (tx, _rx) = futures::channel::mpsc::unbounded();
        let verifier = Verifier::new(1, Duration::from_secs(10), tx);
        let mut t = template("https://nowhere.invalid/x.qcow2", &"a".repeat(64));
        t.status = Some(crate::api::ServerTemplateStatus {
            checksum: Some(ChecksumStatus {
                url: "https://nowhere.invalid/x.qcow2".into(),
                expected: "a".repeat(64),
                actual: "a".repeat(64),
            }),
            ..Default::default()
        });
        assert!(matches!(verifier.check(&t, &[]), Check::Known(_)));
        assert!(lock(&verifier.jobs).is_empty());

        let server = ImageServer::start().await.unwrap();
        let missing = template(&format!("{}/missing", server.base_url()), &"a".repeat(64));
        let Check::Unavailable(why) = settle(&verifier, &missing).await else {
            panic!("a 404 is not a digest")
        };
        assert!(why.contains("404"), "{why}");
    }

    #[test]
    fn percent_needs_a_length() {
        let running = Check::Running {
            read: 512,
            total: Some(2048),
        };
        assert_eq!(running.percent(), Some(25.0));
        assert_eq!(
            Check::Running {
                read: 1,
                total: None
            }
            .percent(),
            None
        );
    }
}
