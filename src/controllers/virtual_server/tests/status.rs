//! status::compute and status::changed: every condition reason, the phase,
//! addresses, endpoints, disks, and no churn on a converged server.

use kube::core::Status;

use super::fixtures::{
    IMPORT_RETRY_LIMIT, NOW, cluster, condition, said, server, status_at, status_of, time,
};
use crate::api::VirtualServerStatus;
use crate::api::virtual_server::{
    DiskStatus, EndpointStatus, LastBackup, PowerState, Protocol, ServerAddress, ServerPhase,
};
use crate::controllers::apply::ApplyError;
use crate::controllers::virtual_server::plan::reason;
use crate::controllers::virtual_server::quota_refusal;
use crate::controllers::virtual_server::status::{self, StatusInput, changed};

const NS: &str = "namespace.yaml";
const TEMPLATE: &str = "templates/win2022-1c83.yaml";
const WEB_IMAGE: &str = "https://images.example.com/ubuntu-24.04-server-cloudimg-amd64.img";
const NOT_FOUND_404: &str = "Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found";
const WEB_RUNNING: [&str; 4] = [
    NS,
    "cluster/web/disks-ready.yaml",
    "cluster/web/vm-running.yaml",
    "cluster/web/vmi-running.yaml",
];
const GATEWAY_RUNNING: [&str; 2] = [NS, "cluster/gateway/running.yaml"];

fn phase(status: &VirtualServerStatus) -> ServerPhase {
    status.phase.expect("a phase")
}

fn stopped_web() -> crate::api::VirtualServer {
    let mut web = server("web");
    web.spec.power_state = PowerState::Stopped;
    web
}

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

// --- Blocked ------------------------------------------------------------------

#[test]
fn blocked_server_is_pending_with_the_reason_on_ready_disks_and_running() {
    let status = status_of(&server("accounting"), &cluster(&[NS]));
    let message = "ServerTemplate alfa-soft-templates/win2022-1c83 does not exist";
    assert_eq!(
        said(&status, "Ready"),
        ("False", "TemplateNotFound", message)
    );
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "TemplateNotFound", message)
    );
    assert_eq!(
        said(&status, "Running"),
        ("False", "TemplateNotFound", "the server is not built yet")
    );
    assert_eq!(phase(&status), ServerPhase::Pending);
}

#[test]
fn every_blocked_reason_becomes_ready_false_and_phase_pending() {
    let cases: [(&str, Vec<&str>, &str); 8] = [
        ("accounting", vec![NS], reason::TEMPLATE_NOT_FOUND),
        (
            "accounting",
            vec![NS, "templates/win2022-1c83-private.yaml"],
            reason::TEMPLATE_NOT_SHARED,
        ),
        (
            "accounting",
            vec![NS, "templates/win2022-1c83-other-partner.yaml"],
            reason::TEMPLATE_NOT_SHARED,
        ),
        (
            "accounting",
            vec![NS, "templates/win2022-1c83-importing.yaml"],
            reason::TEMPLATE_NOT_READY,
        ),
        ("web-copy", vec![NS], reason::CLONE_SOURCE_NOT_FOUND),
        (
            "web-copy",
            vec![
                NS,
                "servers/web.yaml",
                "cluster/web-copy/snapshot-failed.yaml",
            ],
            reason::SNAPSHOT_FAILED,
        ),
        ("web-restored", vec![NS], reason::BACKUP_NOT_FOUND),
        (
            "web-restored",
            vec![NS, "cluster/web-restored/backup-failed.yaml"],
            reason::SNAPSHOT_FAILED,
        ),
    ];
    for (name, files, expected) in cases {
        let status = status_of(&server(name), &cluster(&files));
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", expected),
            "{name} with {files:?}"
        );
        assert!(!ready.message.is_empty(), "{name}: the reason is explained");
        assert_eq!(
            phase(&status),
            ServerPhase::Pending,
            "{name} with {files:?}"
        );
    }
    let mut small = server("accounting");
    small.spec.cores = Some(1);
    let status = status_of(&small, &cluster(&[NS, TEMPLATE]));
    assert_eq!(
        condition(&status, "Ready").reason,
        reason::BELOW_TEMPLATE_MINIMUM
    );
    assert_eq!(phase(&status), ServerPhase::Pending);
}

#[test]
fn quota_refusal_becomes_quota_exceeded_with_requested_used_and_limit() {
    let message = "services \"rdp-gateway\" is forbidden: exceeded quota: bakery, requested: services.loadbalancers=1, used: services.loadbalancers=4, limited: services.loadbalancers=4";
    let refused = ApplyError::Apply {
        kind: "Service".into(),
        name: "rdp-gateway".into(),
        source: kube::Error::Api(Status::failure(message, "Forbidden").with_code(403).boxed()),
    };
    let blocked = quota_refusal(&refused).expect("a quota refusal");
    assert_eq!(blocked.reason, reason::QUOTA_EXCEEDED);
    assert_eq!(blocked.message, message);

    let gateway = server("gateway");
    let observed = cluster(&GATEWAY_RUNNING);
    let status = status::compute(
        &gateway,
        &StatusInput {
            observed: &observed,
            plan: Err(&blocked),
            power: gateway.spec.power_state,
            suspended_by: None,
            admitted: None,
            import_retry_limit: IMPORT_RETRY_LIMIT,
            now: &time(NOW),
        },
    );
    assert_eq!(said(&status, "Ready"), ("False", "QuotaExceeded", message));
    // The server was built before the refusal and keeps running as it was:
    // its phase and Running condition report the VM, not "not built".
    assert_eq!(phase(&status), ServerPhase::Running);
    assert_eq!(said(&status, "Running").1, "Running");
}

#[test]
fn other_refusals_are_not_quota() {
    let rbac = ApplyError::Apply {
        kind: "Service".into(),
        name: "rdp-gateway".into(),
        source: kube::Error::Api(
            Status::failure(
                "services \"rdp-gateway\" is forbidden: User \"system:serviceaccount:partnercloud:operator\" cannot patch resource \"services\"",
                "Forbidden",
            )
            .with_code(403)
            .boxed(),
        ),
    };
    assert_eq!(quota_refusal(&rbac), None);
    let conflict = ApplyError::Apply {
        kind: "DataVolume".into(),
        name: "web-system".into(),
        source: kube::Error::Api(
            Status::failure("exceeded quota while retrying", "Conflict")
                .with_code(409)
                .boxed(),
        ),
    };
    assert_eq!(quota_refusal(&conflict), None);
}

// --- Disks ----------------------------------------------------------------------

#[test]
fn importing_disk_reports_its_progress() {
    let status = status_of(
        &server("web"),
        &cluster(&[NS, "cluster/web/disks-importing.yaml"]),
    );
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "Importing", "importing web-system 45.50%")
    );
    assert_eq!(
        said(&status, "Ready"),
        (
            "False",
            "Importing",
            "DisksReady: importing web-system 45.50%"
        )
    );
    assert_eq!(
        said(&status, "Running"),
        (
            "False",
            "Provisioning",
            "the virtual machine is not created yet"
        )
    );
    assert_eq!(phase(&status), ServerPhase::Provisioning);
}

#[test]
fn failed_import_reports_the_url_and_cdis_message() {
    let status = status_of(
        &server("web"),
        &cluster(&[NS, "cluster/web/disks-import-failed.yaml"]),
    );
    let message = format!("disk web-system from {WEB_IMAGE}: {NOT_FOUND_404}");
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "ImportFailed", message.as_str())
    );
    assert_eq!(
        said(&status, "Ready"),
        (
            "False",
            "ImportFailed",
            format!("DisksReady: {message}").as_str()
        )
    );
    assert_eq!(phase(&status), ServerPhase::Failed);
}

#[test]
fn import_restarting_up_to_the_limit_is_reported_failed_not_in_progress() {
    let observed = cluster(&[NS, "cluster/web/disks-import-retrying.yaml"]);
    let status = status_at(&server("web"), &observed, 3, NOW);
    let message =
        format!("disk web-system from {WEB_IMAGE}: gave up after 3 attempts: {NOT_FOUND_404}");
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "ImportFailed", message.as_str())
    );
    assert_eq!(condition(&status, "Ready").reason, "ImportFailed");
    assert_eq!(phase(&status), ServerPhase::Failed);

    // Below the limit the same import is still in progress (progress N/A).
    let status = status_at(&server("web"), &observed, 4, NOW);
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "Importing", "importing web-system")
    );
    assert_eq!(phase(&status), ServerPhase::Provisioning);
}

#[test]
fn disk_that_succeeded_after_restarts_is_ready() {
    let status = status_of(
        &server("web"),
        &cluster(&[
            NS,
            "cluster/web/disks-ready-after-retries.yaml",
            "cluster/web/vm-running.yaml",
            "cluster/web/vmi-running.yaml",
        ]),
    );
    assert_eq!(
        said(&status, "DisksReady"),
        ("True", "DisksReady", "2 disk(s) ready")
    );
    assert_eq!(phase(&status), ServerPhase::Running);
}

#[test]
fn disk_restored_from_a_snapshot_is_cloning() {
    let status = status_of(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-ready.yaml",
            "cluster/web-copy/disks-restoring.yaml",
        ]),
    );
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "Cloning", "copying web-copy-system")
    );
    assert_eq!(phase(&status), ServerPhase::Provisioning);
}

#[test]
fn disk_cloned_from_a_template_reports_its_progress() {
    let status = status_of(
        &server("accounting"),
        &cluster(&[NS, TEMPLATE, "cluster/accounting/disks-cloning.yaml"]),
    );
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "Cloning", "copying accounting-system 30.00%")
    );
    assert_eq!(condition(&status, "Ready").reason, "Cloning");
}

#[test]
fn disks_not_created_or_not_bound_yet_are_provisioning() {
    let status = status_of(&server("web"), &cluster(&[NS]));
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "Provisioning", "provisioning web-system, web-data")
    );
    assert_eq!(phase(&status), ServerPhase::Provisioning);

    let status = status_of(
        &server("web"),
        &cluster(&[NS, "cluster/web/disks-pending.yaml"]),
    );
    assert_eq!(
        said(&status, "DisksReady"),
        (
            "False",
            "Provisioning",
            "provisioning web-system (WaitForFirstConsumer)"
        )
    );
}

#[test]
fn copy_waiting_for_its_snapshot_says_so() {
    for files in [
        vec![NS, "servers/web.yaml"],
        vec![
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-in-progress.yaml",
        ],
    ] {
        let status = status_of(&server("web-copy"), &cluster(&files));
        let waiting = "waiting for the source snapshot to become ready";
        assert_eq!(
            said(&status, "DisksReady"),
            ("False", "SnapshotNotReady", waiting)
        );
        assert_eq!(
            said(&status, "Ready"),
            (
                "False",
                "SnapshotNotReady",
                format!("DisksReady: {waiting}").as_str()
            )
        );
        assert_eq!(phase(&status), ServerPhase::Provisioning);
    }
}

#[test]
fn restore_waiting_for_its_backup_says_so() {
    let status = status_of(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/backup-in-progress.yaml"]),
    );
    assert_eq!(condition(&status, "DisksReady").reason, "SnapshotNotReady");
    assert_eq!(phase(&status), ServerPhase::Provisioning);
}

#[test]
fn attached_iso_is_waited_for_and_an_ejected_one_is_not() {
    let observed = cluster(&[NS, "cluster/installer/iso-importing.yaml"]);
    let status = status_of(&server("installer"), &observed);
    assert_eq!(
        said(&status, "DisksReady"),
        ("False", "Importing", "importing installer-cdrom 12.00%")
    );
    assert_eq!(
        status
            .disks
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["system"],
        "the ISO is not one of the server's disks"
    );
    let status = status_of(&server("installer-ejected"), &observed);
    assert_eq!(
        said(&status, "DisksReady"),
        ("True", "DisksReady", "1 disk(s) ready")
    );
}

#[test]
fn per_disk_status_has_phase_progress_and_canonical_size() {
    let status = status_of(
        &server("web"),
        &cluster(&[NS, "cluster/web/disks-importing.yaml"]),
    );
    assert_eq!(
        status.disks,
        [
            DiskStatus {
                name: "system".into(),
                phase: Some("ImportInProgress".into()),
                progress: Some("45.50%".into()),
                size: Some("40Gi".into()),
            },
            DiskStatus {
                name: "data".into(),
                phase: Some("Succeeded".into()),
                progress: Some("100.0%".into()),
                size: Some("100Gi".into()),
            },
        ]
    );
    let before = status_of(&server("web"), &cluster(&[NS]));
    assert_eq!(before.disks[1].phase, None, "no DataVolume yet");
    assert_eq!(before.disks[1].size.as_deref(), Some("100Gi"));
}

// --- Power ----------------------------------------------------------------------

#[test]
fn booting_server_is_starting() {
    let status = status_of(
        &server("web"),
        &cluster(&[
            NS,
            "cluster/web/disks-ready.yaml",
            "cluster/web/vm-starting.yaml",
        ]),
    );
    assert_eq!(
        said(&status, "DisksReady"),
        ("True", "DisksReady", "2 disk(s) ready")
    );
    assert_eq!(
        said(&status, "Running"),
        ("False", "Starting", "starting (Starting)")
    );
    assert_eq!(
        said(&status, "Ready"),
        ("False", "Starting", "Running: starting (Starting)")
    );
    assert_eq!(phase(&status), ServerPhase::Starting);
}

#[test]
fn running_server_without_exposures_is_ready() {
    let status = status_of(&server("web"), &cluster(&WEB_RUNNING));
    assert_eq!(
        said(&status, "Running"),
        ("True", "Running", "the server is running")
    );
    assert_eq!(
        said(&status, "Exposed"),
        ("True", "NoExposures", "nothing is exposed")
    );
    assert_eq!(
        said(&status, "Ready"),
        ("True", "Running", "the server is running and reachable")
    );
    assert_eq!(phase(&status), ServerPhase::Running);
}

#[test]
fn server_asked_to_stop_is_stopping_until_the_vm_is_off() {
    let status = status_of(&stopped_web(), &cluster(&WEB_RUNNING));
    assert_eq!(
        said(&status, "Running"),
        ("False", "Stopping", "stopping (Running)")
    );
    assert_eq!(
        said(&status, "Ready"),
        ("False", "Stopping", "stopping (Running)")
    );
    assert_eq!(phase(&status), ServerPhase::Stopping);
}

#[test]
fn server_stopped_as_requested_is_ready() {
    let status = status_of(
        &stopped_web(),
        &cluster(&[
            NS,
            "cluster/web/disks-ready.yaml",
            "cluster/web/vm-stopped.yaml",
        ]),
    );
    assert_eq!(
        said(&status, "Running"),
        ("False", "Stopped", "stopped as requested")
    );
    assert_eq!(
        said(&status, "Ready"),
        (
            "True",
            "Stopped",
            "the server is stopped as requested; its disks are kept"
        )
    );
    assert_eq!(phase(&status), ServerPhase::Stopped);
    assert!(status.addresses.is_empty());
}

#[test]
fn vm_in_a_crash_loop_is_start_failed_with_kubevirts_message() {
    let status = status_of(
        &server("web"),
        &cluster(&[
            NS,
            "cluster/web/disks-ready.yaml",
            "cluster/web/vm-crash-loop.yaml",
        ]),
    );
    let message = "server error. command SyncVMI failed: internal error: process exited while connecting to monitor";
    assert_eq!(said(&status, "Running"), ("False", "StartFailed", message));
    assert_eq!(
        said(&status, "Ready"),
        (
            "False",
            "StartFailed",
            format!("Running: {message}").as_str()
        )
    );
    assert_eq!(phase(&status), ServerPhase::Failed);
}

#[test]
fn vm_whose_claim_is_missing_is_start_failed_and_phase_failed() {
    let status = status_of(
        &server("web"),
        &cluster(&[
            NS,
            "cluster/web/disks-ready.yaml",
            "cluster/web/vm-pvc-not-found.yaml",
        ]),
    );
    assert_eq!(
        said(&status, "Running"),
        (
            "False",
            "StartFailed",
            "PVC alfa-bakery/web-data does not exist, waiting for it to appear"
        )
    );
    // The phase agrees with the condition: a server that failed to start
    // is Failed, not Starting.
    assert_eq!(phase(&status), ServerPhase::Failed);
}

#[test]
fn resized_running_server_requires_a_restart() {
    let status = status_of(
        &server("web"),
        &cluster(&[
            NS,
            "cluster/web/disks-ready.yaml",
            "cluster/web/vm-restart-required.yaml",
            "cluster/web/vmi-running.yaml",
        ]),
    );
    assert_eq!(
        said(&status, "Ready"),
        (
            "False",
            "RestartRequired",
            "cores or memory changed: the new size takes effect after a restart (set powerState: Stopped, then Running)"
        )
    );
    assert_eq!(condition(&status, "Running").status, "True");
    assert_eq!(phase(&status), ServerPhase::Running);
}

#[test]
fn server_being_deleted_is_terminating() {
    let mut web = server("web");
    web.metadata.deletion_timestamp = Some(time("2026-03-01T09:59:00Z"));
    let status = status_of(&web, &cluster(&WEB_RUNNING));
    assert_eq!(
        said(&status, "Ready"),
        ("False", "Terminating", "the server is being deleted")
    );
    assert_eq!(phase(&status), ServerPhase::Terminating);
}

#[test]
fn addresses_come_from_the_running_instances_interfaces() {
    let status = status_of(&server("web"), &cluster(&WEB_RUNNING));
    let address = |ip: &str, interface: Option<&str>| ServerAddress {
        ip: ip.into(),
        interface: interface.map(str::to_string),
    };
    assert_eq!(
        status.addresses,
        [
            address("10.244.1.17", Some("default")),
            address("fd10:244::1:17", Some("default")),
            address("172.17.0.1", None),
        ]
    );
    let scheduling = status_of(
        &server("web"),
        &cluster(&[
            NS,
            "cluster/web/disks-ready.yaml",
            "cluster/web/vm-starting.yaml",
            "cluster/web/vmi-scheduling.yaml",
        ]),
    );
    assert!(
        scheduling.addresses.is_empty(),
        "an instance that is not running has no addresses: {:?}",
        scheduling.addresses
    );
}

// --- Exposures --------------------------------------------------------------------

fn endpoint(name: &str, address: Option<&str>, port: u16, protocol: Protocol) -> EndpointStatus {
    EndpointStatus {
        name: name.into(),
        address: address.map(str::to_string),
        port,
        protocol,
    }
}

#[test]
fn exposures_with_load_balancer_addresses_are_exposed_with_endpoints() {
    let files = with(
        &GATEWAY_RUNNING,
        &["cluster/gateway/services-addressed.yaml"],
    );
    let status = status_of(&server("gateway"), &cluster(&files));
    assert_eq!(
        said(&status, "Exposed"),
        ("True", "Exposed", "7 exposure(s) reachable")
    );
    assert_eq!(condition(&status, "Ready").status, "True");
    assert_eq!(phase(&status), ServerPhase::Running);
    use Protocol::{Tcp, Udp};
    assert_eq!(
        status.endpoints,
        [
            endpoint("rdp", Some("192.0.2.101"), 3389, Tcp),
            endpoint("files", Some("files-gateway.lb.example.net"), 445, Tcp),
            endpoint("ftp", Some("192.0.2.103"), 21, Tcp),
            endpoint("sftp", Some("192.0.2.104"), 22, Tcp),
            endpoint("ssh", Some("192.0.2.105"), 22, Tcp),
            endpoint("ragent", Some("192.0.2.106"), 1541, Tcp),
            endpoint("voice", Some("192.0.2.107"), 5060, Udp),
        ]
    );
}

#[test]
fn exposures_without_an_address_yet_are_waiting_for_address() {
    let files = with(&GATEWAY_RUNNING, &["cluster/gateway/services-waiting.yaml"]);
    let status = status_of(&server("gateway"), &cluster(&files));
    let message = "waiting for a load balancer address for ftp, voice";
    assert_eq!(
        said(&status, "Exposed"),
        ("False", "WaitingForAddress", message)
    );
    assert_eq!(
        said(&status, "Ready"),
        (
            "False",
            "WaitingForAddress",
            format!("Exposed: {message}").as_str()
        )
    );
    assert_eq!(phase(&status), ServerPhase::Running);
    let ftp = status
        .endpoints
        .iter()
        .find(|e| e.name == "ftp")
        .expect("ftp");
    assert_eq!(ftp, &endpoint("ftp", None, 21, Protocol::Tcp));

    let none_yet = status_of(&server("gateway"), &cluster(&GATEWAY_RUNNING));
    assert_eq!(
        condition(&none_yet, "Exposed").message,
        "waiting for a load balancer address for rdp, files, ftp, sftp, ssh, ragent, voice"
    );
}

// --- Bookkeeping ------------------------------------------------------------------

#[test]
fn status_and_every_condition_carry_the_observed_generation() {
    let status = status_of(&server("web"), &cluster(&WEB_RUNNING));
    assert_eq!(status.observed_generation, Some(3));
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["DisksReady", "Exposed", "Ready", "Running"]);
    for c in &status.conditions {
        assert_eq!(c.observed_generation, Some(3), "{}", c.type_);
    }
}

#[test]
fn last_transition_time_moves_only_when_a_condition_flips() {
    let (t0, t1, t2) = (NOW, "2026-03-01T10:05:00Z", "2026-03-01T10:30:00Z");
    let mut web = server("web");
    let first = status_at(
        &web,
        &cluster(&[NS, "cluster/web/disks-pending.yaml"]),
        IMPORT_RETRY_LIMIT,
        t0,
    );
    web.status = Some(first);
    let second = status_at(
        &web,
        &cluster(&[NS, "cluster/web/disks-importing.yaml"]),
        IMPORT_RETRY_LIMIT,
        t1,
    );
    let disks = condition(&second, "DisksReady");
    assert_eq!(disks.reason, "Importing", "the reason changed");
    assert_eq!(disks.last_transition_time, time(t0), "but not the status");
    assert_eq!(condition(&second, "Ready").last_transition_time, time(t0));

    web.status = Some(second);
    let third = status_at(&web, &cluster(&WEB_RUNNING), IMPORT_RETRY_LIMIT, t2);
    for flipped in ["DisksReady", "Running", "Ready"] {
        assert_eq!(
            condition(&third, flipped).last_transition_time,
            time(t2),
            "{flipped}"
        );
    }
    assert_eq!(
        condition(&third, "Exposed").last_transition_time,
        time(t0),
        "Exposed was True all along"
    );
}

/// The status as the API server hands it back: through JSON.
fn as_stored(status: &VirtualServerStatus) -> VirtualServerStatus {
    serde_json::from_value(serde_json::to_value(status).expect("serializable"))
        .expect("deserializable")
}

#[test]
fn converged_servers_recompute_an_unchanged_status() {
    // ACCEPTANCE case 2: idle servers produce no status writes, resync
    // after resync.
    let scenarios: [(crate::api::VirtualServer, Vec<&str>); 8] = [
        (server("web"), WEB_RUNNING.to_vec()),
        (
            stopped_web(),
            vec![
                NS,
                "cluster/web/disks-ready.yaml",
                "cluster/web/vm-stopped.yaml",
            ],
        ),
        (
            server("gateway"),
            with(
                &GATEWAY_RUNNING,
                &["cluster/gateway/services-addressed.yaml"],
            ),
        ),
        (
            server("gateway"),
            with(&GATEWAY_RUNNING, &["cluster/gateway/services-waiting.yaml"]),
        ),
        (server("accounting"), vec![NS]),
        (server("web-copy"), vec![NS, "servers/web.yaml"]),
        (
            server("web"),
            vec![NS, "cluster/web/disks-import-failed.yaml"],
        ),
        (
            server("web"),
            vec![
                NS,
                "cluster/web/disks-ready.yaml",
                "cluster/web/vm-crash-loop.yaml",
            ],
        ),
    ];
    for (mut server, files) in scenarios {
        let observed = cluster(&files);
        let written = as_stored(&status_at(&server, &observed, IMPORT_RETRY_LIMIT, NOW));
        server.status = Some(written.clone());
        for later in ["2026-03-01T10:05:00Z", "2026-03-01T15:00:00Z"] {
            let again = status_at(&server, &observed, IMPORT_RETRY_LIMIT, later);
            assert!(
                !changed(server.status.as_ref(), &again),
                "{files:?}: {written:#?}\nvs\n{again:#?}"
            );
            assert_eq!(again, written, "{files:?}: not even a timestamp moves");
        }
    }
}

#[test]
fn first_status_and_real_news_are_changes() {
    let mut web = server("web");
    let mut observed = cluster(&[NS, "cluster/web/disks-importing.yaml"]);
    let first = status_of(&web, &observed);
    assert!(changed(None, &first), "nothing written yet");
    web.status = Some(as_stored(&first));

    // Progress moves: the message changes, the status flips nowhere.
    if let Some(s) = observed.data_volumes[0].status.as_mut() {
        s.progress = Some("60.25%".into());
    }
    let progressed = status_of(&web, &observed);
    assert!(changed(web.status.as_ref(), &progressed));
    assert_eq!(
        condition(&progressed, "DisksReady").message,
        "importing web-system 60.25%"
    );

    // A new generation is news even if nothing else moved.
    web.metadata.generation = Some(4);
    let regenerated = status_of(&web, &cluster(&[NS, "cluster/web/disks-importing.yaml"]));
    assert!(changed(web.status.as_ref(), &regenerated));
}

#[test]
fn last_backup_written_by_a_backup_policy_is_kept() {
    let mut web = server("web");
    let backup = LastBackup {
        policy: "nightly".into(),
        snapshot: "nightly-web-20260301-0200".into(),
        time: time("2026-03-01T02:00:41Z"),
    };
    web.status = Some(VirtualServerStatus {
        last_backup: Some(backup.clone()),
        ..Default::default()
    });
    let status = status_of(&web, &cluster(&WEB_RUNNING));
    assert_eq!(status.last_backup, Some(backup));
}
