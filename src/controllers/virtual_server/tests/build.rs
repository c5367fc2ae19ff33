//! The builders: every child a server wants, from the plan.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::fixtures::{children, cluster, load, load_all, plan_of, server};
use crate::api::virtual_server::{NetworkMode, PowerState};
use crate::controllers::ownership::OwnershipError;
use crate::controllers::virtual_server::build::{self, Children};
use crate::kubevirt::data_volume::{DataVolumeSpec, NamespacedName, SourceRef};
use crate::kubevirt::{DataVolume, VirtualMachine};

const NS: &str = "namespace.yaml";
const TEMPLATE: &str = "templates/win2022-1c83.yaml";

fn storage_request(dv: &DataVolume) -> &str {
    dv.spec
        .storage
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.get("storage"))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{:?} requests no storage", dv.metadata.name))
}

fn names<'a>(metas: impl IntoIterator<Item = &'a ObjectMeta>) -> Vec<&'a str> {
    metas
        .into_iter()
        .map(|m| m.name.as_deref().unwrap_or_default())
        .collect()
}

fn vm(children: &Children) -> &VirtualMachine {
    children.vm.as_ref().expect("a VirtualMachine")
}

/// `(name, bootOrder, bus, is_cdrom)` of each VM disk device.
fn devices(vm: &VirtualMachine) -> Vec<(&str, Option<u32>, &str, bool)> {
    vm.spec
        .template
        .spec
        .domain
        .devices
        .disks
        .iter()
        .map(|d| {
            let target = d.disk.as_ref().or(d.cdrom.as_ref());
            let bus = target.and_then(|t| t.bus.as_deref()).unwrap_or_default();
            (d.name.as_str(), d.boot_order, bus, d.cdrom.is_some())
        })
        .collect()
}

/// `(volume, DataVolume)` of each VM volume backed by a DataVolume.
fn volumes(vm: &VirtualMachine) -> Vec<(&str, &str)> {
    vm.spec
        .template
        .spec
        .volumes
        .iter()
        .filter_map(|v| Some((v.name.as_str(), v.data_volume.as_ref()?.name.as_str())))
        .collect()
}

fn owner_of(server: &str, uid: &str) -> Option<Vec<OwnerReference>> {
    Some(vec![OwnerReference {
        api_version: "partnercloud.io/v1alpha1".into(),
        kind: "VirtualServer".into(),
        name: server.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    }])
}

fn all_metas(c: &Children) -> Vec<&ObjectMeta> {
    let mut metas: Vec<&ObjectMeta> = Vec::new();
    metas.extend(c.vm.iter().map(|v| &v.metadata));
    metas.extend(c.disks.iter().map(|d| &d.metadata));
    metas.extend(c.iso.iter().map(|d| &d.metadata));
    metas.extend(c.clone_snapshot.iter().map(|s| &s.metadata));
    metas.extend(c.services.iter().map(|s| &s.metadata));
    metas.extend(c.network_policies.iter().map(|p| &p.metadata));
    metas
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

// --- Exactly as expected ------------------------------------------------------

#[test]
fn web_renders_exactly_the_expected_virtual_machine() {
    let built = children(&server("web"), &cluster(&[NS]));
    let expected: VirtualMachine = load("expected/web-vm.yaml");
    assert_eq!(vm(&built), &expected);
}

#[test]
fn web_renders_exactly_the_expected_data_volumes() {
    let built = children(&server("web"), &cluster(&[NS]));
    let expected: Vec<DataVolume> = load_all("expected/web-disks.yaml");
    assert_eq!(built.disks, expected);
    assert_eq!(built.iso, None);
    assert_eq!(built.clone_snapshot, None);
    assert!(built.services.is_empty() && built.network_policies.is_empty());
}

// --- Disk sources ---------------------------------------------------------------

#[test]
fn blank_source_renders_a_blank_system_disk_of_the_requested_size() {
    let built = children(&server("scratch"), &cluster(&[NS]));
    let [system] = built.disks.as_slice() else {
        panic!("one disk expected, got {:?}", built.disks)
    };
    assert_eq!(system.metadata.name.as_deref(), Some("scratch-system"));
    let source = system.spec.source.as_ref().expect("a source");
    assert_eq!(source.blank, Some(BTreeMap::new()));
    assert_eq!((&source.http, &source.snapshot), (&None, &None));
    assert_eq!(storage_request(system), "10Gi");
    assert_eq!(devices(vm(&built)), [("system", Some(1), "virtio", false)]);
}

#[test]
fn iso_source_adds_the_iso_volume_and_boots_the_cdrom_first() {
    let built = children(&server("installer"), &cluster(&[NS]));
    let system = &built.disks[0];
    assert_eq!(
        system.spec.source.as_ref().and_then(|s| s.blank.clone()),
        Some(BTreeMap::new())
    );
    let iso = built.iso.as_ref().expect("the ISO DataVolume");
    assert_eq!(iso.metadata.name.as_deref(), Some("installer-cdrom"));
    assert_eq!(
        iso.spec
            .source
            .as_ref()
            .and_then(|s| s.http.as_ref())
            .map(|h| h.url.as_str()),
        Some("https://isos.example.com/windows-server-2022-eval.iso")
    );
    assert_eq!(storage_request(iso), "16Gi");
    assert_eq!(label(&iso.metadata, "partnercloud.io/role"), Some("iso"));
    let vm = vm(&built);
    assert_eq!(
        devices(vm),
        [
            ("system", Some(2), "virtio", false),
            ("cdrom", Some(1), "sata", true),
        ]
    );
    assert_eq!(
        volumes(vm),
        [("system", "installer-system"), ("cdrom", "installer-cdrom")]
    );
}

#[test]
fn ejecting_the_iso_removes_the_cdrom_from_the_vm_and_the_iso_volume() {
    let built = children(&server("installer-ejected"), &cluster(&[NS]));
    assert_eq!(built.iso, None);
    assert_eq!(
        names(built.disks.iter().map(|d| &d.metadata)),
        ["installer-system"]
    );
    let vm = vm(&built);
    assert_eq!(devices(vm), [("system", Some(1), "virtio", false)]);
    assert_eq!(volumes(vm), [("system", "installer-system")]);
}

#[test]
fn template_disk_clones_the_data_source_in_the_templates_namespace() {
    let built = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    let system = &built.disks[0];
    assert_eq!(system.metadata.name.as_deref(), Some("accounting-system"));
    assert_eq!(system.spec.source, None, "sourceRef replaces source");
    assert_eq!(
        system.spec.source_ref,
        Some(SourceRef {
            kind: "DataSource".into(),
            name: "win2022-1c83".into(),
            namespace: Some("alfa-soft-templates".into()),
        })
    );
    assert_eq!(storage_request(system), "120Gi");
    let database = &built.disks[1];
    assert_eq!(
        database.spec.source.as_ref().and_then(|s| s.blank.clone()),
        Some(BTreeMap::new())
    );
    assert_eq!(storage_request(database), "500Gi");
    assert_eq!(
        database
            .spec
            .storage
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref()),
        Some("fast-ssd")
    );
}

#[test]
fn waiting_copy_builds_only_the_snapshot_of_its_source() {
    let built = children(&server("web-copy"), &cluster(&[NS, "servers/web.yaml"]));
    assert_eq!(built.vm, None, "no VM before its disks are known");
    assert!(
        built.disks.is_empty(),
        "no disk before its content is known"
    );
    let snapshot = built.clone_snapshot.expect("the clone snapshot");
    assert_eq!(
        snapshot.metadata.name.as_deref(),
        Some("web-copy-clone-source")
    );
    assert_eq!(snapshot.metadata.namespace.as_deref(), Some("alfa-bakery"));
    assert_eq!(
        (
            snapshot.spec.source.api_group.as_str(),
            snapshot.spec.source.kind.as_str(),
            snapshot.spec.source.name.as_str()
        ),
        ("kubevirt.io", "VirtualMachine", "web")
    );
    assert_eq!(snapshot.spec.deletion_policy.as_deref(), Some("Delete"));
    assert_eq!(snapshot.spec.failure_deadline.as_deref(), Some("5m0s"));
    assert_eq!(
        snapshot.metadata.owner_references,
        owner_of("web-copy", "6f1c2d3e-0005-4a5b-8c9d-0e1f2a3b4c05")
    );
    assert_eq!(
        label(&snapshot.metadata, "partnercloud.io/role"),
        Some("clone-source")
    );
}

#[test]
fn copy_restores_its_disks_from_the_snapshot_content_once_ready() {
    let built = children(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-ready.yaml",
        ]),
    );
    let restored: Vec<_> = built
        .disks
        .iter()
        .map(|d| {
            (
                d.metadata.name.as_deref().unwrap_or_default(),
                d.spec.source.as_ref().and_then(|s| s.snapshot.clone()),
                storage_request(d),
            )
        })
        .collect();
    let from = |name: &str| {
        Some(NamespacedName {
            namespace: "alfa-bakery".into(),
            name: name.into(),
        })
    };
    assert_eq!(
        restored,
        [
            (
                "web-copy-system",
                from("vmsnapshot-3a4b5c6d-volume-system"),
                "40Gi"
            ),
            (
                "web-copy-data",
                from("vmsnapshot-3a4b5c6d-volume-data"),
                "100Gi"
            ),
        ]
    );
    assert_eq!(
        volumes(vm(&built)),
        [("system", "web-copy-system"), ("data", "web-copy-data")]
    );
    assert!(built.clone_snapshot.is_some());
}

#[test]
fn restored_copy_drops_its_clone_snapshot() {
    let built = children(
        &server("web-copy"),
        &cluster(&[NS, "cluster/web-copy/disks-ready.yaml"]),
    );
    assert_eq!(built.clone_snapshot, None);
    assert!(built.vm.is_some());
}

#[test]
fn restore_from_backup_builds_disks_from_the_named_snapshots_content() {
    let built = children(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/backup-ready.yaml"]),
    );
    let sources: Vec<_> = built
        .disks
        .iter()
        .map(|d| {
            let source = d.spec.source.as_ref().expect("a source");
            (
                d.metadata.name.as_deref().unwrap_or_default(),
                source.snapshot.as_ref().map(|s| s.name.as_str()),
                source.blank.is_some(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            (
                "web-restored-os",
                Some("vmsnapshot-4b5c6d7e-volume-system"),
                false
            ),
            (
                "web-restored-data",
                Some("vmsnapshot-4b5c6d7e-volume-data"),
                false
            ),
            ("web-restored-scratch", None, true),
        ]
    );
    assert_eq!(built.clone_snapshot, None);
}

#[test]
fn restore_waiting_for_its_backup_builds_nothing_to_boot() {
    let built = children(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/backup-in-progress.yaml"]),
    );
    assert_eq!(built.vm, None);
    assert!(built.disks.is_empty());
}

#[test]
fn deployed_disks_are_rendered_with_the_spec_they_were_created_with() {
    // The template is gone; the disks are applied exactly as CDI has them.
    let observed = cluster(&[NS, "cluster/accounting/deployed.yaml"]);
    let built = children(&server("accounting"), &observed);
    let specs: Vec<&DataVolumeSpec> = built.disks.iter().map(|d| &d.spec).collect();
    let observed_specs: Vec<&DataVolumeSpec> = ["accounting-system", "accounting-database"]
        .iter()
        .map(|n| &observed.data_volume(n).expect("fixture").spec)
        .collect();
    assert_eq!(specs, observed_specs);
    assert!(built.vm.is_some());
}

// --- The virtual machine ------------------------------------------------------

#[test]
fn power_state_becomes_the_run_strategy() {
    let mut web = server("web");
    let running = children(&web, &cluster(&[NS]));
    assert_eq!(vm(&running).spec.run_strategy.as_deref(), Some("Always"));
    web.spec.power_state = PowerState::Stopped;
    let stopped = children(&web, &cluster(&[NS]));
    assert_eq!(vm(&stopped).spec.run_strategy.as_deref(), Some("Halted"));
}

#[test]
fn an_isolated_server_has_no_network_interface_at_all() {
    let mut web = server("web");
    web.spec.expose.clear();
    let connected = children(&web, &cluster(&[NS]));
    let spec = &vm(&connected).spec.template.spec;
    assert_eq!(spec.domain.devices.interfaces.len(), 1);
    assert_eq!(spec.networks.len(), 1);
    assert_eq!(spec.domain.devices.autoattach_pod_interface, None);

    web.spec.network = NetworkMode::Isolated;
    let isolated = children(&web, &cluster(&[NS]));
    let spec = &vm(&isolated).spec.template.spec;
    assert!(spec.domain.devices.interfaces.is_empty());
    assert!(spec.networks.is_empty());
    assert_eq!(
        spec.domain.devices.autoattach_pod_interface,
        Some(false),
        "KubeVirt must not add its default interface either"
    );
    let rendered = serde_json::to_value(vm(&isolated)).unwrap();
    assert_eq!(
        rendered["spec"]["template"]["spec"]["domain"]["devices"]["autoattachPodInterface"],
        false
    );
}

#[test]
fn suspended_client_stops_the_server_whatever_its_power_state() {
    // The reconciler passes the effective power state separately.
    let web = server("web");
    let plan = plan_of(&web, &cluster(&[NS]));
    let built = build::build(&web, &plan, PowerState::Stopped).expect("children");
    assert_eq!(vm(&built).spec.run_strategy.as_deref(), Some("Halted"));
}

#[test]
fn template_defaults_size_the_vm_in_canonical_form() {
    let built = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    let domain = &vm(&built).spec.template.spec.domain;
    assert_eq!(domain.cpu.as_ref().and_then(|c| c.cores), Some(4));
    assert_eq!(
        domain.memory.as_ref().and_then(|m| m.guest.as_deref()),
        Some("16Gi")
    );
}

#[test]
fn memory_is_rendered_in_canonical_form() {
    let mut web = server("web");
    web.spec.memory = Some(Quantity("6442450944".into()));
    let built = children(&web, &cluster(&[NS]));
    let domain = &vm(&built).spec.template.spec.domain;
    assert_eq!(
        domain.memory.as_ref().and_then(|m| m.guest.as_deref()),
        Some("6Gi")
    );
}

#[test]
fn copy_gets_its_own_mac_firmware_uuid_and_hostname() {
    let source = children(&server("web"), &cluster(&[NS]));
    let copy = children(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-ready.yaml",
        ]),
    );
    let identity = |c: &Children| {
        let spec = &vm(c).spec.template.spec;
        (
            spec.domain.devices.interfaces[0].mac_address.clone(),
            spec.domain.firmware.as_ref().and_then(|f| f.uuid.clone()),
            spec.hostname.clone(),
        )
    };
    let (source_mac, source_uuid, source_host) = identity(&source);
    let (copy_mac, copy_uuid, copy_host) = identity(&copy);
    assert!(source_mac.is_some() && copy_mac.is_some());
    assert_ne!(source_mac, copy_mac);
    assert!(source_uuid.is_some() && copy_uuid.is_some());
    assert_ne!(source_uuid, copy_uuid);
    assert_eq!(source_host.as_deref(), Some("web"));
    assert_eq!(copy_host.as_deref(), Some("web-copy"));
}

#[test]
fn identity_is_stable_across_builds_and_resizes() {
    let mut web = server("web");
    let first = children(&web, &cluster(&[NS]));
    let again = children(&web, &cluster(&[NS, "cluster/web/disks-ready.yaml"]));
    web.spec.cores = Some(8);
    let resized = children(&web, &cluster(&[NS]));
    let identity = |c: &Children| {
        let domain = &vm(c).spec.template.spec.domain;
        (
            domain.devices.interfaces[0].mac_address.clone(),
            domain.firmware.clone(),
        )
    };
    assert_eq!(identity(&first), identity(&again));
    assert_eq!(identity(&first), identity(&resized));
}

#[test]
fn building_twice_from_the_same_inputs_gives_the_same_children() {
    for (name, files) in [
        ("web", vec![NS]),
        ("accounting", vec![NS, TEMPLATE]),
        ("installer", vec![NS]),
        ("gateway", vec![NS]),
        (
            "web-copy",
            vec![
                NS,
                "servers/web.yaml",
                "cluster/web-copy/snapshot-ready.yaml",
            ],
        ),
    ] {
        let observed = cluster(&files);
        assert_eq!(
            children(&server(name), &observed),
            children(&server(name), &observed),
            "{name}"
        );
    }
}

#[test]
fn first_boot_configuration_is_attached_in_the_guests_format() {
    let web = children(&server("web"), &cluster(&[NS]));
    let firstboot = |c: &Children| {
        let spec = &vm(c).spec.template.spec;
        let volume = spec
            .volumes
            .iter()
            .find(|v| v.name == "firstboot")
            .cloned()
            .expect("a firstboot volume");
        let device = spec
            .domain
            .devices
            .disks
            .iter()
            .find(|d| d.name == "firstboot")
            .cloned()
            .expect("a firstboot device");
        (volume, device)
    };
    let (volume, device) = firstboot(&web);
    assert_eq!(
        volume
            .cloud_init_no_cloud
            .and_then(|c| c.secret_ref)
            .map(|s| s.name),
        Some("web-cloud-init".into())
    );
    assert!(device.disk.is_some() && device.boot_order.is_none());

    let accounting = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    let (volume, device) = firstboot(&accounting);
    assert_eq!(
        volume.sysprep.and_then(|s| s.secret).map(|s| s.name),
        Some("accounting-unattend".into())
    );
    assert_eq!(
        device.cdrom.and_then(|c| c.bus).as_deref(),
        Some("sata"),
        "sysprep is read from a CD-ROM"
    );
}

// --- Exposures ------------------------------------------------------------------

fn service<'a>(c: &'a Children, name: &str) -> &'a Service {
    c.services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no Service {name}"))
}

fn policy<'a>(c: &'a Children, name: &str) -> &'a NetworkPolicy {
    c.network_policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no NetworkPolicy {name}"))
}

/// `(name, port, targetPort, protocol)` of each Service port.
fn service_ports(s: &Service) -> Vec<(String, i32, i32, String)> {
    let spec = s.spec.as_ref().expect("a spec");
    spec.ports
        .iter()
        .flatten()
        .map(|p| {
            let target = match p.target_port {
                Some(IntOrString::Int(t)) => t,
                ref other => panic!("numeric targetPort expected, got {other:?}"),
            };
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                target,
                p.protocol.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// `(port, endPort, protocol)` of the policy's one ingress rule.
fn policy_ports(p: &NetworkPolicy) -> Vec<(i32, Option<i32>, String)> {
    let rules = p
        .spec
        .as_ref()
        .and_then(|s| s.ingress.clone())
        .expect("ingress");
    assert_eq!(rules.len(), 1, "one ingress rule");
    let rule = &rules[0];
    rule.ports
        .iter()
        .flatten()
        .map(|port| {
            let number = match port.port {
                Some(IntOrString::Int(n)) => n,
                ref other => panic!("numeric port expected, got {other:?}"),
            };
            (
                number,
                port.end_port,
                port.protocol.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn policy_sources(p: &NetworkPolicy) -> Vec<String> {
    let rules = p
        .spec
        .as_ref()
        .and_then(|s| s.ingress.clone())
        .expect("ingress");
    assert_eq!(rules.len(), 1, "one ingress rule");
    let rule = &rules[0];
    rule.from
        .iter()
        .flatten()
        .map(|peer| peer.ip_block.as_ref().expect("an ipBlock").cidr.clone())
        .collect()
}

fn source_ranges(s: &Service) -> Option<Vec<String>> {
    s.spec.as_ref()?.load_balancer_source_ranges.clone()
}

fn tcp(name: &str, port: i32) -> (String, i32, i32, String) {
    (name.into(), port, port, "TCP".into())
}

#[test]
fn each_exposure_gets_a_service_and_a_policy_named_after_exposure_and_server() {
    let built = children(&server("gateway"), &cluster(&[NS]));
    let expected = [
        "rdp-gateway",
        "files-gateway",
        "ftp-gateway",
        "sftp-gateway",
        "ssh-gateway",
        "ragent-gateway",
        "voice-gateway",
    ];
    assert_eq!(names(built.services.iter().map(|s| &s.metadata)), expected);
    assert_eq!(
        names(built.network_policies.iter().map(|p| &p.metadata)),
        expected
    );
}

#[test]
fn presets_open_their_well_known_ports() {
    let built = children(&server("gateway"), &cluster(&[NS]));
    assert_eq!(
        service_ports(service(&built, "rdp-gateway")),
        [tcp("rdp", 3389)]
    );
    assert_eq!(
        service_ports(service(&built, "files-gateway")),
        [tcp("files", 445)]
    );
    assert_eq!(
        service_ports(service(&built, "sftp-gateway")),
        [tcp("sftp", 22)]
    );
    assert_eq!(
        service_ports(service(&built, "ssh-gateway")),
        [tcp("ssh", 22)]
    );
    assert_eq!(
        service_ports(service(&built, "ragent-gateway")),
        [tcp("ragent", 1541)]
    );
    assert_eq!(
        service_ports(service(&built, "voice-gateway")),
        [("voice".to_string(), 5060, 5060, "UDP".to_string())]
    );
    assert_eq!(
        policy_ports(policy(&built, "voice-gateway")),
        [(5060, None, "UDP".to_string())]
    );
    assert_eq!(
        policy_ports(policy(&built, "rdp-gateway")),
        [(3389, None, "TCP".to_string())]
    );
}

#[test]
fn explicit_port_overrides_the_presets() {
    let mut gateway = server("gateway");
    gateway.spec.expose[4].port = Some(2222);
    let built = children(&gateway, &cluster(&[NS]));
    assert_eq!(
        service_ports(service(&built, "ssh-gateway")),
        [tcp("ssh", 2222)]
    );
    assert_eq!(
        policy_ports(policy(&built, "ssh-gateway")),
        [(2222, None, "TCP".to_string())]
    );
}

#[test]
fn ftp_opens_the_control_port_and_the_passive_range() {
    let built = children(&server("gateway"), &cluster(&[NS]));
    let mut expected = vec![tcp("ftp", 21)];
    expected.extend((0..10).map(|i| tcp(&format!("pasv{i}"), 30000 + i)));
    assert_eq!(service_ports(service(&built, "ftp-gateway")), expected);
    let expected_policy: NetworkPolicy = load("expected/gateway-ftp-network-policy.yaml");
    assert_eq!(policy(&built, "ftp-gateway"), &expected_policy);
}

#[test]
fn allowed_sources_are_exactly_allow_from_at_the_load_balancer_and_the_pod() {
    let built = children(&server("gateway"), &cluster(&[NS]));
    let rdp = vec!["203.0.113.0/24".to_string(), "2001:db8:1c::/48".to_string()];
    assert_eq!(
        source_ranges(service(&built, "rdp-gateway")),
        Some(rdp.clone())
    );
    assert_eq!(policy_sources(policy(&built, "rdp-gateway")), rdp);
    let files = vec!["192.0.2.10/32".to_string()];
    assert_eq!(
        source_ranges(service(&built, "files-gateway")),
        Some(files.clone())
    );
    assert_eq!(policy_sources(policy(&built, "files-gateway")), files);
}

#[test]
fn exposure_without_allow_from_is_open_to_any_ipv4_and_ipv6_source() {
    let built = children(&server("gateway"), &cluster(&[NS]));
    for name in ["sftp-gateway", "voice-gateway"] {
        assert_eq!(
            source_ranges(service(&built, name)),
            None,
            "{name}: no source restriction at the load balancer"
        );
        assert_eq!(
            policy_sources(policy(&built, name)),
            ["0.0.0.0/0", "::/0"],
            "{name}"
        );
    }
}

#[test]
fn services_are_load_balancers_keeping_the_client_address_and_select_the_vm() {
    let built = children(&server("gateway"), &cluster(&[NS]));
    let pod_labels = &vm(&built)
        .spec
        .template
        .metadata
        .as_ref()
        .expect("pod template metadata")
        .labels;
    for s in &built.services {
        let spec = s.spec.as_ref().expect("a spec");
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        let selector = spec.selector.as_ref().expect("a selector");
        assert!(!selector.is_empty());
        assert!(
            selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
            "{selector:?} must select the VM's pod {pod_labels:?}"
        );
    }
    for p in &built.network_policies {
        let spec = p.spec.as_ref().expect("a spec");
        assert_eq!(
            spec.policy_types.as_deref(),
            Some(&["Ingress".to_string()][..])
        );
        let selector = spec
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .expect("matchLabels");
        assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
    }
}

// --- Ownership and labels ---------------------------------------------------------

#[test]
fn delete_policy_makes_the_server_the_controller_of_its_disks() {
    let built = children(&server("web"), &cluster(&[NS]));
    for disk in &built.disks {
        assert_eq!(
            disk.metadata.owner_references,
            owner_of("web", "6f1c2d3e-0001-4a5b-8c9d-0e1f2a3b4c01"),
            "{:?}",
            disk.metadata.name
        );
    }
}

#[test]
fn retain_policy_leaves_disks_unowned_but_everything_else_owned() {
    let built = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    assert_eq!(built.disks.len(), 2);
    for disk in &built.disks {
        assert_eq!(disk.metadata.owner_references, None);
        assert_eq!(
            label(&disk.metadata, "partnercloud.io/server"),
            Some("accounting"),
            "a retained disk is still found by its server's name"
        );
    }
    let owner = owner_of("accounting", "6f1c2d3e-0004-4a5b-8c9d-0e1f2a3b4c04");
    assert_eq!(vm(&built).metadata.owner_references, owner);
    for s in &built.services {
        assert_eq!(s.metadata.owner_references, owner);
    }
    for p in &built.network_policies {
        assert_eq!(p.metadata.owner_references, owner);
    }
}

#[test]
fn iso_volume_is_owned_by_the_server_even_when_disks_are_retained() {
    let built = children(&server("installer"), &cluster(&[NS]));
    assert_eq!(built.disks[0].metadata.owner_references, None);
    assert_eq!(
        built.iso.expect("the ISO").metadata.owner_references,
        owner_of("installer", "6f1c2d3e-0003-4a5b-8c9d-0e1f2a3b4c03")
    );
}

#[test]
fn every_child_lives_in_the_servers_namespace_even_when_the_template_does_not() {
    let built = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    for meta in all_metas(&built) {
        assert_eq!(
            meta.namespace.as_deref(),
            Some("alfa-bakery"),
            "{:?}",
            meta.name
        );
    }
}

#[test]
fn server_without_uid_is_refused_rather_than_given_a_broken_owner_reference() {
    let mut web = server("web");
    web.metadata.uid = None;
    let plan = plan_of(&web, &cluster(&[NS]));
    assert!(matches!(
        build::build(&web, &plan, PowerState::Running),
        Err(OwnershipError::NoUid(_))
    ));
}

#[test]
fn every_child_carries_the_managed_server_and_role_labels() {
    let built = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    let roles: Vec<_> = all_metas(&built)
        .into_iter()
        .map(|meta| {
            assert_eq!(
                label(meta, "app.kubernetes.io/managed-by"),
                Some("partnercloud")
            );
            assert_eq!(label(meta, "partnercloud.io/server"), Some("accounting"));
            label(meta, "partnercloud.io/role").unwrap_or_default()
        })
        .collect();
    assert_eq!(
        roles,
        ["vm", "system-disk", "data-disk", "exposure", "exposure"]
    );
    let disk_labels: Vec<_> = built
        .disks
        .iter()
        .map(|d| label(&d.metadata, "partnercloud.io/disk"))
        .collect();
    assert_eq!(disk_labels, [Some("system"), Some("database")]);
}

#[test]
fn every_child_carries_partner_client_and_template_labels() {
    let built = children(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    for meta in all_metas(&built) {
        assert_eq!(label(meta, "partnercloud.io/partner"), Some("alfa-soft"));
        assert_eq!(label(meta, "partnercloud.io/client"), Some("bakery"));
        assert_eq!(
            label(meta, "partnercloud.io/template"),
            Some("win2022-1c83")
        );
    }
}

#[test]
fn every_child_of_a_copy_and_an_install_carries_partner_and_client_labels() {
    let copy = children(&server("web-copy"), &cluster(&[NS, "servers/web.yaml"]));
    let install = children(&server("installer"), &cluster(&[NS]));
    let metas: Vec<_> = all_metas(&copy)
        .into_iter()
        .chain(all_metas(&install))
        .collect();
    assert!(
        metas
            .iter()
            .any(|m| label(m, "partnercloud.io/role") == Some("clone-source"))
    );
    assert!(
        metas
            .iter()
            .any(|m| label(m, "partnercloud.io/role") == Some("iso"))
    );
    for meta in metas {
        assert_eq!(
            (
                label(meta, "partnercloud.io/partner"),
                label(meta, "partnercloud.io/client")
            ),
            (Some("alfa-soft"), Some("bakery")),
            "{:?}",
            meta.name
        );
    }
}
