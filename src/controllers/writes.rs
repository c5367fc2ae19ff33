//! Counting the API writes each object's reconciles cause, so tests can
//! prove what a server costs and that converged objects cost nothing.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

static WRITES: LazyLock<Mutex<BTreeMap<String, u64>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// The ledger key of an object: `Kind/namespace/name`.
pub fn key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

/// Records one write request made on behalf of `owner`.
pub fn record(owner: &str) {
    *WRITES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(owner.to_string())
        .or_default() += 1;
}

/// Write requests made on behalf of `owner` so far in this process.
pub fn count(owner: &str) -> u64 {
    WRITES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(owner)
        .copied()
        .unwrap_or(0)
}
