//! The one place every reconcile result is reported: a log line with the
//! object's key, and a Warning event with the error chain on failure.

use std::error::Error as StdError;

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

/// The error and its causes, joined, for an event note.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
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

/// Logs a failed reconcile and posts a Warning event on the object.
/// `reason` is the error variant's stable name.
pub async fn report_failure<K>(
    recorder: &Recorder,
    object: &K,
    reason: &str,
    error: &(dyn StdError + Send + Sync + 'static),
) where
    K: Resource<DynamicType = ()>,
{
    let key = format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or(""),
        object.meta().name.as_deref().unwrap_or("")
    );
    let note = chain(error);
    tracing::warn!(kind = %K::kind(&()), object = %key, reason, error = %note, "reconcile failed");
    // Events hold at most 1 kB; cut on a character boundary.
    let mut note = note;
    while note.len() > 1000 {
        note.pop();
    }
    let event = Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(object = %key, error = %e, "could not publish event");
    }
}

/// The error policy every controller shares: report the failure once
/// (log + Warning event, in the background so the queue is not held up)
/// and retry in a few seconds.
pub fn failed<K>(
    recorder: &Recorder,
    object: std::sync::Arc<K>,
    reason: &'static str,
    error: &(dyn StdError + 'static),
) -> kube::runtime::controller::Action
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
{
    let recorder = recorder.clone();
    let note = chain(error);
    tokio::spawn(async move {
        report_failure(&recorder, &*object, reason, &Rendered(note)).await;
    });
    kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(5))
}

/// An already-rendered error chain.
#[derive(Debug)]
struct Rendered(String);

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Rendered {}

/// Posts an event (Normal or Warning) about something the reconcile decided.
pub async fn report_event<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner cause")]
    struct Inner;

    #[test]
    fn chain_joins_causes_once() {
        assert_eq!(chain(&Outer(Inner)), "outer: inner cause");
    }
}
