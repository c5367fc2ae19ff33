//! Waiting for a started component to answer its readiness probe.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::instrument::WithSubscriber;
use tracing::subscriber::NoSubscriber;

use super::Error;
use super::process::Process;

/// How long one probe attempt may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between probe attempts.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Probes until `probe` succeeds, `process` exits, or `timeout` passes; returns the time taken.
///
/// A probe returns the reason it failed as text, which ends up in the error when the component
/// never becomes ready.
pub(crate) async fn wait_ready<F, Fut>(
    process: &mut Process,
    timeout: Duration,
    mut probe: F,
) -> Result<Duration, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let mut last_failure = String::from("no probe answered yet");
    loop {
        if let Some(status) = process.exit_status() {
            return Err(
                process.not_ready(format!("exited with {status} (last probe: {last_failure})"))
            );
        }
        match tokio::time::timeout(PROBE_TIMEOUT, probe()).await {
            Ok(Ok(())) => return Ok(started.elapsed()),
            Ok(Err(failure)) => last_failure = failure,
            Err(_) => last_failure = format!("probe took longer than {PROBE_TIMEOUT:?}"),
        }
        if started.elapsed() >= timeout {
            return Err(process.not_ready(format!(
                "not ready after {timeout:?} (last probe: {last_failure})"
            )));
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// GETs `path` (without the leading slash) from a kube client's server and expects a 2xx.
///
/// kube's client logs every failed request at ERROR level; failures are expected while a
/// component starts, so the request runs without a tracing subscriber and the reason is
/// returned instead. `kube` does not re-export the `http` crate; its request builder makes the
/// GET request without adding that dependency.
pub(crate) async fn get_ok(client: &kube::Client, path: &str) -> Result<(), String> {
    let request = kube::core::Request::new("")
        .get(path, &kube::api::GetParams::default())
        .map_err(|err| err.to_string())?;
    client
        .request_text(request)
        .with_subscriber(NoSubscriber::default())
        .await
        .map(drop)
        .map_err(|err| error_chain(&err))
}

/// An error and its sources on one line, skipping causes whose text is already included (some
/// errors repeat their source in their own message).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|layer| layer as _)
        }
    }

    #[test]
    fn chain_joins_causes_once() {
        let err = Layer(
            "request failed: connect",
            Some(Box::new(Layer(
                "connect",
                Some(Box::new(Layer("connection refused", None))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "request failed: connect: connection refused"
        );
    }
}
