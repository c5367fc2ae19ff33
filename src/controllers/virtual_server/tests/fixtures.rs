//! Loads the fixtures and runs the pure stages on them.

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::api::{ServerTemplate, VirtualServer, VirtualServerStatus};
use crate::controllers::virtual_server::build::{self, Children};
use crate::controllers::virtual_server::fetch::Observed;
use crate::controllers::virtual_server::plan::{Blocked, Plan};
use crate::controllers::virtual_server::status::{self, StatusInput};
use crate::controllers::virtual_server::validate;
use crate::kubevirt::{
    DataVolume, VirtualMachine, VirtualMachineInstance, VirtualMachineSnapshot,
    VirtualMachineSnapshotContent,
};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/virtual_server");

/// The import retry limit of the default settings.
pub const IMPORT_RETRY_LIMIT: i32 = 3;

/// When the tests' status is computed, unless a test moves the clock.
pub const NOW: &str = "2026-03-01T10:00:00Z";

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}"))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// The YAML documents of a file, split at `---` lines.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

fn parse<T: DeserializeOwned>(path: &str, doc: &str) -> T {
    serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A fixture file of exactly one document.
pub fn load<T: DeserializeOwned>(path: &str) -> T {
    let docs = documents(&read(path));
    assert_eq!(docs.len(), 1, "fixture {path} must hold one document");
    parse(path, &docs[0])
}

/// Every document of a fixture file, all of one kind.
pub fn load_all<T: DeserializeOwned>(path: &str) -> Vec<T> {
    documents(&read(path))
        .iter()
        .map(|doc| parse(path, doc))
        .collect()
}

pub fn server(name: &str) -> VirtualServer {
    load(&format!("servers/{name}.yaml"))
}

pub fn template(name: &str) -> ServerTemplate {
    load(&format!("templates/{name}.yaml"))
}

/// What `fetch` would observe, from fixture files of any kinds: the
/// namespace's labels, the referenced template, the server being copied, the
/// source snapshot and its content, and the server's own children.
pub fn cluster(paths: &[&str]) -> Observed {
    #[derive(Deserialize)]
    struct Head {
        kind: String,
    }
    let mut observed = Observed::default();
    for path in paths {
        for doc in documents(&read(path)) {
            let head: Head = parse(path, &doc);
            match head.kind.as_str() {
                "Namespace" => {
                    let namespace: Namespace = parse(path, &doc);
                    observed.namespace_labels = namespace.metadata.labels.unwrap_or_default();
                }
                "ServerTemplate" => observed.template = Some(parse(path, &doc)),
                "VirtualServer" => observed.clone_source = Some(parse(path, &doc)),
                "PartnerAccount" => observed.partner = Some(parse(path, &doc)),
                "VirtualMachineSnapshot" => {
                    observed.snapshot = Some(parse::<VirtualMachineSnapshot>(path, &doc))
                }
                "VirtualMachineSnapshotContent" => {
                    observed.snapshot_content =
                        Some(parse::<VirtualMachineSnapshotContent>(path, &doc))
                }
                "VirtualMachine" => observed.vm = Some(parse::<VirtualMachine>(path, &doc)),
                "VirtualMachineInstance" => {
                    observed.vmi = Some(parse::<VirtualMachineInstance>(path, &doc))
                }
                "DataVolume" => observed.data_volumes.push(parse::<DataVolume>(path, &doc)),
                "Service" => observed.services.push(parse::<Service>(path, &doc)),
                other => panic!("fixture {path}: no place in Observed for kind {other}"),
            }
        }
    }
    observed
}

pub fn time(text: &str) -> Time {
    Time(text.parse().expect("an RFC 3339 time"))
}

/// The plan, for a server that must not be blocked.
pub fn plan_of(server: &VirtualServer, observed: &Observed) -> Plan {
    validate::plan(server, observed, &[])
        .unwrap_or_else(|blocked| panic!("expected a plan, got {blocked:?}"))
}

/// Why a server is blocked, for one that must be.
pub fn blocked(server: &VirtualServer, observed: &Observed) -> Blocked {
    match validate::plan(server, observed, &[]) {
        Ok(plan) => panic!("expected the server to be blocked, got {plan:?}"),
        Err(blocked) => blocked,
    }
}

/// The children one pass would apply.
pub fn children(server: &VirtualServer, observed: &Observed) -> Children {
    build::build(server, &plan_of(server, observed), server.spec.power_state)
        .expect("children of a server with a uid in its own namespace")
}

/// The status one pass would write, as the reconciler computes it.
pub fn status_at(
    server: &VirtualServer,
    observed: &Observed,
    limit: i32,
    now: &str,
) -> VirtualServerStatus {
    let decision = validate::plan(server, observed, &[]);
    status::compute(
        server,
        &StatusInput {
            observed,
            plan: decision.as_ref(),
            power: server.spec.power_state,
            suspended_by: None,
            admitted: server.status.as_ref().and_then(|s| s.admitted.as_ref()),
            import_retry_limit: limit,
            now: &time(now),
        },
    )
}

/// The status at [`NOW`] with the default retry limit.
pub fn status_of(server: &VirtualServer, observed: &Observed) -> VirtualServerStatus {
    status_at(server, observed, IMPORT_RETRY_LIMIT, NOW)
}

pub fn condition<'a>(status: &'a VirtualServerStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", status.conditions))
}

/// `(status, reason, message)` of a condition, for one-line assertions.
pub fn said<'a>(status: &'a VirtualServerStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let c = condition(status, type_);
    (&c.status, &c.reason, &c.message)
}
