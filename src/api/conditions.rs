//! Status conditions, the way Kubernetes and Cluster API keep them.
//!
//! Rules implemented once here for every kind:
//! - every condition type a kind declares is present from the first visit
//!   (`Unknown` when nothing is known yet);
//! - `lastTransitionTime` moves only when `status` flips;
//! - each condition carries the `observedGeneration` it was computed from;
//! - two statuses are compared without timestamps, so a reconcile that
//!   learns nothing new writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// The summary condition every kind publishes (`kubectl wait --for=condition=Ready`).
pub const READY: &str = "Ready";

/// A condition as a reconciler decides it, before timestamps are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

impl Decided {
    pub fn new(
        type_: &'static str,
        status: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn yes(type_: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(type_, TRUE, reason, message)
    }

    pub fn no(type_: &'static str, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(type_, FALSE, reason, message)
    }

    pub fn unknown(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, UNKNOWN, reason, message)
    }

    pub fn is_true(&self) -> bool {
        self.status == TRUE
    }
}

/// Merges freshly decided conditions into the previous list.
///
/// A condition whose status did not change keeps its `lastTransitionTime`;
/// one that flipped (or is new) gets `now`. Conditions of types that are no
/// longer decided are dropped, so the list always matches what the kind
/// declares. The result is sorted by type, making comparisons stable.
pub fn merge(
    previous: &[Condition],
    decided: &[Decided],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = decided
        .iter()
        .map(|d| {
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == d.type_ && p.status == d.status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: d.type_.to_string(),
                status: d.status.to_string(),
                reason: d.reason.clone(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    merged.sort_by(|a, b| a.type_.cmp(&b.type_));
    merged
}

/// Whether two condition lists say the same thing, ignoring timestamps.
pub fn same(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    let mut left: Vec<_> = a.iter().map(key).collect();
    let mut right: Vec<_> = b.iter().map(key).collect();
    left.sort();
    right.sort();
    left == right
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of this type is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == TRUE)
}

/// The summary `Ready` condition from the other conditions: `True` when
/// all are `True`; otherwise it carries the reason and message of the first
/// condition (in the order given) that is not, so the summary says why.
pub fn summarize(parts: &[Decided], ready_reason: &str, ready_message: &str) -> Decided {
    match parts.iter().find(|d| !d.is_true()) {
        None => Decided::yes(READY, ready_reason, ready_message),
        Some(blocking) => Decided::new(
            READY,
            if blocking.status == UNKNOWN {
                UNKNOWN
            } else {
                FALSE
            },
            blocking.reason.clone(),
            format!("{}: {}", blocking.type_, blocking.message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-01T01:00:00Z");
        let first = merge(
            &[],
            &[Decided::no(READY, "Importing", "disk 10%")],
            Some(1),
            &t0,
        );
        assert_eq!(first[0].last_transition_time, t0);

        // Same status, new message: the time stays.
        let second = merge(
            &first,
            &[Decided::no(READY, "Importing", "disk 50%")],
            Some(1),
            &t1,
        );
        assert_eq!(second[0].last_transition_time, t0);
        assert_eq!(second[0].message, "disk 50%");

        // Flip: the time moves.
        let third = merge(
            &second,
            &[Decided::yes(READY, "Running", "up")],
            Some(2),
            &t1,
        );
        assert_eq!(third[0].last_transition_time, t1);
        assert_eq!(third[0].observed_generation, Some(2));
    }

    #[test]
    fn comparison_ignores_timestamps_and_order() {
        let a = merge(
            &[],
            &[Decided::yes("B", "R", "m"), Decided::no("A", "R", "m")],
            Some(1),
            &time("2026-01-01T00:00:00Z"),
        );
        let b = merge(
            &[],
            &[Decided::no("A", "R", "m"), Decided::yes("B", "R", "m")],
            Some(1),
            &time("2027-01-01T00:00:00Z"),
        );
        assert!(same(&a, &b));
        let c = merge(
            &[],
            &[Decided::no("A", "R", "other"), Decided::yes("B", "R", "m")],
            Some(1),
            &time("2026-01-01T00:00:00Z"),
        );
        assert!(!same(&a, &c));
        let d = merge(
            &[],
            &[Decided::no("A", "R", "m"), Decided::yes("B", "R", "m")],
            Some(2),
            &time("2026-01-01T00:00:00Z"),
        );
        assert!(!same(&a, &d), "a new observedGeneration is news");
    }

    #[test]
    fn conditions_no_longer_decided_are_dropped() {
        let t = time("2026-01-01T00:00:00Z");
        let before = merge(
            &[],
            &[Decided::yes("A", "R", "m"), Decided::yes("Old", "R", "m")],
            None,
            &t,
        );
        let after = merge(&before, &[Decided::yes("A", "R", "m")], None, &t);
        assert_eq!(after.len(), 1);
    }

    #[test]
    fn summary_names_the_first_blocking_condition() {
        let ready = summarize(
            &[
                Decided::yes("DisksReady", "Imported", ""),
                Decided::yes("Running", "Running", ""),
            ],
            "Running",
            "server is up",
        );
        assert!(ready.is_true());
        let blocked = summarize(
            &[
                Decided::no("DisksReady", "ImportFailed", "404 from https://x"),
                Decided::no("Running", "Stopped", ""),
            ],
            "Running",
            "",
        );
        assert_eq!(blocked.status, FALSE);
        assert_eq!(blocked.reason, "ImportFailed");
        assert!(blocked.message.contains("DisksReady: 404"));
        let unknown = summarize(
            &[Decided::unknown("DisksReady", "Pending", "")],
            "Running",
            "",
        );
        assert_eq!(unknown.status, UNKNOWN);
    }
}
