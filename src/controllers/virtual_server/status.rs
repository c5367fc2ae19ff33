//! Status from the plan (or why it is blocked) and the observed children.
//! Pure: the caller supplies the time and writes the result only when it
//! changed.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::build::{exposure, names};
use super::fetch::Observed;
use super::plan::{Blocked, Plan, reason};
use crate::api::VirtualServer;
use crate::api::conditions::{self, Decided};
use crate::api::quantity::Bytes;
use crate::api::virtual_server::{
    AdmittedSize, DiskStatus, EndpointStatus, NetworkMode, PowerState, ServerAddress, ServerPhase,
    VirtualServerStatus,
};
use crate::controllers::partner_account::suspension::SuspendedBy;
use crate::kubevirt::{DataVolume, KvCondition, condition};

pub const DISKS_READY: &str = "DisksReady";
pub const RUNNING: &str = "Running";
pub const EXPOSED: &str = "Exposed";

/// KubeVirt's printable statuses that mean the VM cannot start.
const START_FAILURES: [&str; 6] = [
    "CrashLoopBackOff",
    "ErrorUnschedulable",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrorPvcNotFound",
    "DataVolumeError",
];

/// Inputs that are not the server itself.
pub struct StatusInput<'a> {
    pub observed: &'a Observed,
    pub plan: Result<&'a Plan, &'a Blocked>,
    /// The effective power state (the server's own, or `Stopped` while a
    /// suspension holds it).
    pub power: PowerState,
    /// Set while the client or partner is suspended.
    pub suspended_by: Option<SuspendedBy>,
    /// The admission record to publish (from the admission stage).
    pub admitted: Option<&'a AdmittedSize>,
    pub import_retry_limit: i32,
    pub now: &'a Time,
}

pub fn compute(server: &VirtualServer, input: &StatusInput<'_>) -> VirtualServerStatus {
    let previous = server.status.clone().unwrap_or_default();
    let disks = disks_condition(server, input);
    let running = running_condition(input);
    let exposed = exposed_condition(server, input.observed);
    let restart_required = input
        .observed
        .vm
        .as_ref()
        .and_then(|vm| vm.status.as_ref())
        .and_then(|s| condition(&s.conditions, "RestartRequired"))
        .is_some_and(|c| c.status == "True");
    let ready = ready_condition(server, input, &disks, &running, &exposed, restart_required);
    let phase = phase(server, input, &disks, restart_required);
    let decided = [ready, disks, running, exposed];

    VirtualServerStatus {
        observed_generation: server.metadata.generation,
        phase: Some(phase),
        conditions: conditions::merge(
            &previous.conditions,
            &decided,
            server.metadata.generation,
            input.now,
        ),
        addresses: addresses(input.observed),
        disks: disk_statuses(server, input.observed),
        endpoints: endpoints(server, input.observed),
        last_backup: previous.last_backup,
        admitted: input.admitted.cloned(),
    }
}

/// Whether a new status says anything the old one did not (timestamps aside).
pub fn changed(old: Option<&VirtualServerStatus>, new: &VirtualServerStatus) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &VirtualServerStatus| VirtualServerStatus {
        conditions: Vec::new(),
        ..s.clone()
    };
    strip(old) != strip(new) || !conditions::same(&old.conditions, &new.conditions)
}

fn dv_phase(dv: &DataVolume) -> &str {
    dv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Why a DataVolume will not finish: CDI's `Failed` phase, or an importer
/// that restarted `limit` times (CDI itself retries for ever). Shared with
/// the ServerTemplate controller's golden images.
pub fn dv_failure(dv: &DataVolume, limit: i32) -> Option<String> {
    let status = dv.status.as_ref()?;
    let running = condition(&status.conditions, "Running");
    let why = running
        .and_then(|c: &KvCondition| c.message.clone())
        .filter(|m| !m.is_empty());
    if status.phase.as_deref() == Some("Failed") {
        return Some(why.unwrap_or_else(|| "the import failed".into()));
    }
    let restarts = status.restart_count.unwrap_or(0);
    (restarts >= limit && status.phase.as_deref() != Some("Succeeded")).then(|| {
        format!(
            "gave up after {restarts} attempts: {}",
            why.unwrap_or_else(|| "the importer keeps failing".into())
        )
    })
}

fn describe_source(dv: &DataVolume) -> String {
    dv.spec
        .source
        .as_ref()
        .and_then(|s| s.http.as_ref())
        .map(|h| format!(" from {}", h.url))
        .unwrap_or_default()
}

fn disks_condition(server: &VirtualServer, input: &StatusInput<'_>) -> Decided {
    let plan = match input.plan {
        Err(blocked) => return Decided::no(DISKS_READY, blocked.reason, blocked.message.clone()),
        Ok(plan) => plan,
    };
    let name = server.name_any();
    let mut wanted: Vec<String> = server
        .spec
        .disks
        .iter()
        .map(|d| names::disk(&name, &d.name))
        .collect();
    if plan.iso_url.is_some() {
        wanted.push(names::iso(&name));
    }
    let mut importing = Vec::new();
    let mut cloning = Vec::new();
    let mut pending = Vec::new();
    for dv_name in &wanted {
        let Some(dv) = input.observed.data_volume(dv_name) else {
            if !plan.disks_known() {
                return Decided::no(
                    DISKS_READY,
                    reason::SNAPSHOT_NOT_READY,
                    "waiting for the source snapshot to become ready",
                );
            }
            pending.push(dv_name.clone());
            continue;
        };
        if let Some(failure) = dv_failure(dv, input.import_retry_limit) {
            return Decided::no(
                DISKS_READY,
                reason::IMPORT_FAILED,
                format!("disk {dv_name}{}: {failure}", describe_source(dv)),
            );
        }
        let progress = dv
            .status
            .as_ref()
            .and_then(|s| s.progress.clone())
            .filter(|p| p != "N/A");
        let with_progress = |n: &str| {
            progress
                .as_ref()
                .map(|p| format!("{n} {p}"))
                .unwrap_or_else(|| n.to_string())
        };
        match dv_phase(dv) {
            "Succeeded" => {}
            "ImportScheduled" | "ImportInProgress" => importing.push(with_progress(dv_name)),
            p if p.contains("Clone") || p.contains("Snapshot") || p.contains("Restore") => {
                cloning.push(with_progress(dv_name))
            }
            other => pending.push(format!("{dv_name} ({other})")),
        }
    }
    if !importing.is_empty() {
        return Decided::no(
            DISKS_READY,
            reason::IMPORTING,
            format!("importing {}", importing.join(", ")),
        );
    }
    if !cloning.is_empty() {
        return Decided::no(
            DISKS_READY,
            reason::CLONING,
            format!("copying {}", cloning.join(", ")),
        );
    }
    if !pending.is_empty() {
        return Decided::no(
            DISKS_READY,
            reason::PROVISIONING,
            format!("provisioning {}", pending.join(", ")),
        );
    }
    Decided::yes(
        DISKS_READY,
        reason::DISKS_READY,
        format!("{} disk(s) ready", wanted.len()),
    )
}

fn running_condition(input: &StatusInput<'_>) -> Decided {
    // A blocked server that was built before (a refused resize, say) keeps
    // running as it was: report its VM.
    if let (Err(blocked), None) = (input.plan, &input.observed.vm) {
        return Decided::no(RUNNING, blocked.reason, "the server is not built yet");
    }
    let Some(vm) = input.observed.vm.as_ref() else {
        return Decided::no(
            RUNNING,
            reason::PROVISIONING,
            "the virtual machine is not created yet",
        );
    };
    let status = vm.status.clone().unwrap_or_default();
    let printable = status.printable_status.unwrap_or_else(|| "Unknown".into());
    let failure = condition(&status.conditions, "Failure")
        .filter(|c| c.status == "True")
        .and_then(|c| c.message.clone());
    match (input.power, printable.as_str()) {
        (PowerState::Stopped, "Stopped") => match input.suspended_by {
            Some(by) => Decided::no(
                RUNNING,
                reason::STOPPED,
                format!("halted while the {by} is suspended"),
            ),
            None if matches!(input.plan, Err(b) if b.reason == reason::ORPHANED) => Decided::no(
                RUNNING,
                reason::STOPPED,
                "halted: its namespace no longer belongs to a partner account",
            ),
            None => Decided::no(RUNNING, reason::STOPPED, "stopped as requested"),
        },
        (PowerState::Stopped, other) => {
            Decided::no(RUNNING, reason::STOPPING, format!("stopping ({other})"))
        }
        (PowerState::Running, "Running") if status.ready == Some(true) => {
            Decided::yes(RUNNING, reason::RUNNING, "the server is running")
        }
        (PowerState::Running, p) if START_FAILURES.contains(&p) => Decided::no(
            RUNNING,
            reason::START_FAILED,
            failure.unwrap_or_else(|| format!("the virtual machine reports {printable}")),
        ),
        (PowerState::Running, other) => {
            Decided::no(RUNNING, reason::STARTING, format!("starting ({other})"))
        }
    }
}

fn exposed_condition(server: &VirtualServer, observed: &Observed) -> Decided {
    if server.spec.expose.is_empty() {
        return Decided::yes(EXPOSED, reason::NO_EXPOSURES, "nothing is exposed");
    }
    let name = server.name_any();
    let waiting: Vec<String> = server
        .spec
        .expose
        .iter()
        .filter(|e| {
            observed
                .service(&names::exposure(&name, &e.name))
                .and_then(lb_address)
                .is_none()
        })
        .map(|e| e.name.clone())
        .collect();
    if waiting.is_empty() {
        Decided::yes(
            EXPOSED,
            reason::EXPOSED,
            format!("{} exposure(s) reachable", server.spec.expose.len()),
        )
    } else {
        Decided::no(
            EXPOSED,
            reason::WAITING_FOR_ADDRESS,
            format!(
                "waiting for a load balancer address for {}",
                waiting.join(", ")
            ),
        )
    }
}

fn ready_condition(
    server: &VirtualServer,
    input: &StatusInput<'_>,
    disks: &Decided,
    running: &Decided,
    exposed: &Decided,
    restart_required: bool,
) -> Decided {
    if server.metadata.deletion_timestamp.is_some() {
        return Decided::no(
            conditions::READY,
            reason::TERMINATING,
            "the server is being deleted",
        );
    }
    if let Err(blocked) = input.plan {
        return Decided::no(conditions::READY, blocked.reason, blocked.message.clone());
    }
    if let Some(by) = input.suspended_by {
        return Decided::no(
            conditions::READY,
            reason::SUSPENDED,
            format!(
                "the {by} is suspended: the server is halted and nothing is deleted; it returns to powerState {:?} when resumed",
                server.spec.power_state
            ),
        );
    }
    if restart_required {
        return Decided::no(
            conditions::READY,
            reason::RESTART_REQUIRED,
            "cores or memory changed: the new size takes effect after a restart (set powerState: Stopped, then Running)",
        );
    }
    match input.power {
        PowerState::Running => conditions::summarize(
            &[disks.clone(), running.clone(), exposed.clone()],
            reason::RUNNING,
            match server.spec.network {
                NetworkMode::Pod => "the server is running and reachable",
                NetworkMode::Isolated => {
                    "the server is running, with no network interface (spec.network Isolated)"
                }
            },
        ),
        PowerState::Stopped if running.reason == reason::STOPPED => conditions::summarize(
            std::slice::from_ref(disks),
            reason::STOPPED,
            "the server is stopped as requested; its disks are kept",
        ),
        PowerState::Stopped => Decided::no(
            conditions::READY,
            running.reason.clone(),
            running.message.clone(),
        ),
    }
}

fn phase(
    server: &VirtualServer,
    input: &StatusInput<'_>,
    disks: &Decided,
    restart_required: bool,
) -> ServerPhase {
    if server.metadata.deletion_timestamp.is_some() {
        return ServerPhase::Terminating;
    }
    if input.plan.is_err() && input.observed.vm.is_none() {
        return ServerPhase::Pending;
    }
    if disks.reason == reason::IMPORT_FAILED {
        return ServerPhase::Failed;
    }
    let printable = input
        .observed
        .vm
        .as_ref()
        .and_then(|vm| vm.status.as_ref())
        .and_then(|s| s.printable_status.clone());
    match (input.power, printable.as_deref()) {
        _ if !disks.is_true() && input.plan.is_ok() => ServerPhase::Provisioning,
        (PowerState::Running, Some("Running")) => ServerPhase::Running,
        (PowerState::Running, Some(p)) if START_FAILURES.contains(&p) && !restart_required => {
            ServerPhase::Failed
        }
        (PowerState::Running, _) => ServerPhase::Starting,
        (PowerState::Stopped, Some("Stopped")) => ServerPhase::Stopped,
        (PowerState::Stopped, _) => ServerPhase::Stopping,
    }
}

fn addresses(observed: &Observed) -> Vec<ServerAddress> {
    let Some(status) = observed.vmi.as_ref().and_then(|v| v.status.as_ref()) else {
        return Vec::new();
    };
    if status.phase.as_deref() != Some("Running") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for interface in &status.interfaces {
        let ips = if interface.ip_addresses.is_empty() {
            interface.ip_address.iter().cloned().collect()
        } else {
            interface.ip_addresses.clone()
        };
        for ip in ips {
            out.push(ServerAddress {
                ip,
                interface: interface.name.clone(),
            });
        }
    }
    out
}

fn disk_statuses(server: &VirtualServer, observed: &Observed) -> Vec<DiskStatus> {
    let name = server.name_any();
    server
        .spec
        .disks
        .iter()
        .map(|d| {
            let dv = observed.data_volume(&names::disk(&name, &d.name));
            DiskStatus {
                name: d.name.clone(),
                phase: dv.map(|dv| dv_phase(dv).to_string()),
                progress: dv
                    .and_then(|dv| dv.status.as_ref())
                    .and_then(|s| s.progress.clone()),
                // What the disk really has: an existing disk keeps the size
                // it was created with (growing one is not applied yet).
                size: crate::api::quantity::parse_bytes(
                    &dv.and_then(|dv| dv.spec.storage.as_ref())
                        .and_then(|s| s.resources.as_ref())
                        .and_then(|r| r.requests.get("storage").cloned())
                        .unwrap_or_else(|| d.size.0.clone()),
                )
                .ok()
                .map(|b| Bytes(b).to_string()),
            }
        })
        .collect()
}

fn lb_address(service: &Service) -> Option<String> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    ingress.ip.clone().or_else(|| ingress.hostname.clone())
}

fn endpoints(server: &VirtualServer, observed: &Observed) -> Vec<EndpointStatus> {
    let name = server.name_any();
    server
        .spec
        .expose
        .iter()
        .map(|e| {
            let main = &exposure::ports(e)[0];
            EndpointStatus {
                name: e.name.clone(),
                address: observed
                    .service(&names::exposure(&name, &e.name))
                    .and_then(lb_address),
                port: main.port,
                protocol: main.protocol,
            }
        })
        .collect()
}
