//! Integration tests against a real control plane: kube-apiserver + etcd +
//! kube-controller-manager (garbage collector and namespace controllers),
//! built by `hack/controlplane.sh`. One control plane serves the whole
//! binary; each test works in namespaces of its own.
//!
//! These tests never skip: without control-plane binaries they fail with a
//! message that says how to get them (`make controlplane`).

mod admission;
mod backup_policy;
mod common;
mod crds;
mod expiry_proxy;
mod finalizer_races;
mod garbage_collection;
mod partner_account;
mod server_template;
mod virtual_server;
mod watch_expiry;
