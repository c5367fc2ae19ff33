//! Fixtures for the pure tests: a policy and a provisioned server, read
//! from YAML beside this file.

use kube::api::ObjectMeta;

use crate::api::{BackupPolicy, VirtualServer};

/// `fixtures/policy.yaml`: `nightly` in `client-a`, daily at 02:00 UTC,
/// `keepLast: 2`, `maxConsecutiveFailures: 2`, selecting `backup: nightly`.
pub fn policy() -> BackupPolicy {
    serde_saphyr::from_str(include_str!("fixtures/policy.yaml")).expect("policy fixture")
}

/// `fixtures/server.yaml` renamed: a Running server with two disks,
/// labelled `backup: nightly`.
pub fn server(name: &str) -> VirtualServer {
    let mut server: VirtualServer =
        serde_saphyr::from_str(include_str!("fixtures/server.yaml")).expect("server fixture");
    server.metadata = ObjectMeta {
        name: Some(name.to_string()),
        uid: Some(format!("server-uid-{name}")),
        ..server.metadata
    };
    server
}
