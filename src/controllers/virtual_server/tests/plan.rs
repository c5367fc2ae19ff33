//! validate::plan: what each disk is made from, the size, and every reason
//! a server is blocked.

use super::fixtures::{blocked, cluster, plan_of, server, template};
use crate::api::ServerTemplate;
use crate::api::server_template::SharingScope;
use crate::api::virtual_server::DiskSpec;
use crate::controllers::virtual_server::plan::{CloneSnapshot, DiskContent, reason};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const NS: &str = "namespace.yaml";
const TEMPLATE: &str = "templates/win2022-1c83.yaml";
const WEB_IMAGE: &str = "https://images.example.com/ubuntu-24.04-server-cloudimg-amd64.img";
const GIB: u64 = 1 << 30;

fn contents(plan: &crate::controllers::virtual_server::plan::Plan) -> Vec<Option<DiskContent>> {
    plan.disks.iter().map(|d| d.content.clone()).collect()
}

fn snapshot_volume(name: &str) -> Option<DiskContent> {
    Some(DiskContent::VolumeSnapshot {
        namespace: "alfa-bakery".into(),
        name: name.into(),
    })
}

fn disk(name: &str, size: &str) -> DiskSpec {
    DiskSpec {
        name: name.into(),
        size: Quantity(size.into()),
        storage_class: None,
    }
}

// --- Sources -------------------------------------------------------------

#[test]
fn image_source_imports_the_system_disk_over_http_and_data_disks_start_blank() {
    let plan = plan_of(&server("web"), &cluster(&[NS]));
    assert_eq!(
        contents(&plan),
        vec![
            Some(DiskContent::Http {
                url: WEB_IMAGE.into()
            }),
            Some(DiskContent::Blank),
        ]
    );
    assert_eq!(
        plan.disks.iter().map(|d| d.system).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(plan.iso_url, None);
    assert_eq!(plan.clone_snapshot, None);
    assert!(plan.disks_known());
}

#[test]
fn sizes_are_exact_bytes_whatever_unit_they_are_written_in() {
    let plan = plan_of(&server("web"), &cluster(&[NS]));
    assert_eq!(plan.cores, 2);
    assert_eq!(plan.memory_bytes, 4 * GIB, "4096Mi");
    assert_eq!(plan.disks[0].bytes, 40 * GIB);
    assert_eq!(plan.disks[1].bytes, 100 * GIB, "102400Mi");
}

#[test]
fn blank_source_gives_a_blank_system_disk() {
    let plan = plan_of(&server("scratch"), &cluster(&[NS]));
    assert_eq!(contents(&plan), vec![Some(DiskContent::Blank)]);
    assert_eq!(plan.iso_url, None);
}

#[test]
fn iso_source_gives_a_blank_system_disk_and_attaches_the_iso() {
    let plan = plan_of(&server("installer"), &cluster(&[NS]));
    assert_eq!(contents(&plan), vec![Some(DiskContent::Blank)]);
    assert_eq!(
        plan.iso_url.as_deref(),
        Some("https://isos.example.com/windows-server-2022-eval.iso")
    );
}

#[test]
fn ejected_iso_is_no_longer_attached() {
    let plan = plan_of(&server("installer-ejected"), &cluster(&[NS]));
    assert_eq!(plan.iso_url, None);
    assert_eq!(contents(&plan), vec![Some(DiskContent::Blank)]);
}

#[test]
fn template_source_clones_the_data_source_in_the_templates_namespace() {
    let plan = plan_of(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    assert_eq!(
        contents(&plan),
        vec![
            Some(DiskContent::DataSource {
                namespace: "alfa-soft-templates".into(),
                name: "win2022-1c83".into(),
            }),
            Some(DiskContent::Blank),
        ]
    );
    assert_eq!(plan.template.as_deref(), Some("win2022-1c83"));
}

#[test]
fn template_defaults_size_a_server_that_omits_cores_and_memory() {
    let plan = plan_of(&server("accounting"), &cluster(&[NS, TEMPLATE]));
    assert_eq!((plan.cores, plan.memory_bytes), (4, 16 * GIB));
}

#[test]
fn the_servers_own_size_wins_over_template_defaults() {
    let mut accounting = server("accounting");
    accounting.spec.cores = Some(8);
    accounting.spec.memory = Some(Quantity("32768Mi".into()));
    let plan = plan_of(&accounting, &cluster(&[NS, TEMPLATE]));
    assert_eq!((plan.cores, plan.memory_bytes), (8, 32 * GIB));
}

#[test]
fn partner_and_client_come_from_the_namespace_labels() {
    let plan = plan_of(&server("web"), &cluster(&[NS]));
    assert_eq!(plan.partner.as_deref(), Some("alfa-soft"));
    assert_eq!(plan.client.as_deref(), Some("bakery"));
    let unlabelled = plan_of(&server("web"), &cluster(&[]));
    assert_eq!((unlabelled.partner, unlabelled.client), (None, None));
}

#[test]
fn malformed_disk_size_is_invalid_spec_naming_the_field() {
    let mut web = server("web");
    web.spec.disks[1].size = Quantity("100GB".into());
    let why = blocked(&web, &cluster(&[NS]));
    assert_eq!(why.reason, reason::INVALID_SPEC);
    assert!(
        why.message.starts_with("spec.disks[1].size: "),
        "{}",
        why.message
    );
    assert!(why.message.contains("\"100GB\""), "{}", why.message);
}

// --- Template references --------------------------------------------------

#[test]
fn missing_template_blocks_with_template_not_found() {
    let why = blocked(&server("accounting"), &cluster(&[NS]));
    assert_eq!(why.reason, reason::TEMPLATE_NOT_FOUND);
    assert_eq!(
        why.message,
        "ServerTemplate alfa-soft-templates/win2022-1c83 does not exist"
    );
}

#[test]
fn template_private_to_another_namespace_is_not_shared() {
    let why = blocked(
        &server("accounting"),
        &cluster(&[NS, "templates/win2022-1c83-private.yaml"]),
    );
    assert_eq!(why.reason, reason::TEMPLATE_NOT_SHARED);
    assert_eq!(
        why.message,
        "ServerTemplate alfa-soft-templates/win2022-1c83 is not shared with namespace alfa-bakery (see its spec.sharing)"
    );
}

#[test]
fn template_shared_by_a_selector_that_does_not_match_the_namespace_is_not_shared() {
    let why = blocked(
        &server("accounting"),
        &cluster(&[NS, "templates/win2022-1c83-other-partner.yaml"]),
    );
    assert_eq!(why.reason, reason::TEMPLATE_NOT_SHARED);
}

#[test]
fn template_shared_by_selector_needs_the_namespace_labels_to_match() {
    // The same template, a namespace without the partner label.
    let why = blocked(&server("accounting"), &cluster(&[TEMPLATE]));
    assert_eq!(why.reason, reason::TEMPLATE_NOT_SHARED);
}

#[test]
fn template_shared_with_all_namespaces_is_usable() {
    let plan = plan_of(
        &server("accounting"),
        &cluster(&[NS, "templates/win2022-1c83-public.yaml"]),
    );
    assert_eq!(plan.cores, 4);
}

#[test]
fn template_shared_by_a_matching_selector_is_usable() {
    let observed = cluster(&[NS, TEMPLATE]);
    assert_eq!(
        observed.template.as_ref().map(|t| t.spec.sharing.scope),
        Some(SharingScope::Selector)
    );
    assert!(plan_of(&server("accounting"), &observed).disks_known());
}

#[test]
fn template_in_the_servers_own_namespace_is_usable_without_sharing() {
    let mut accounting = server("accounting");
    if let Some(t) = accounting.spec.source.template.as_mut() {
        t.namespace = None;
    }
    let plan = plan_of(
        &accounting,
        &cluster(&[NS, "templates/win2022-1c83-in-client-namespace.yaml"]),
    );
    assert_eq!(
        plan.disks[0].content,
        Some(DiskContent::DataSource {
            namespace: "alfa-bakery".into(),
            name: "win2022-1c83".into(),
        })
    );
}

#[test]
fn template_still_importing_blocks_with_its_own_reason() {
    let why = blocked(
        &server("accounting"),
        &cluster(&[NS, "templates/win2022-1c83-importing.yaml"]),
    );
    assert_eq!(why.reason, reason::TEMPLATE_NOT_READY);
    assert_eq!(
        why.message,
        "ServerTemplate alfa-soft-templates/win2022-1c83 is not ready (Importing: importing https://images.example.com/golden/win2022-1c83.qcow2 (45.50%))"
    );
}

#[test]
fn template_never_reconciled_is_not_ready() {
    let mut observed = cluster(&[NS]);
    observed.template = Some(ServerTemplate {
        status: None,
        ..template("win2022-1c83")
    });
    let why = blocked(&server("accounting"), &observed);
    assert_eq!(why.reason, reason::TEMPLATE_NOT_READY);
    assert!(
        why.message.ends_with("(not reconciled yet)"),
        "{}",
        why.message
    );
}

#[test]
fn cores_below_the_template_minimum_block() {
    let mut accounting = server("accounting");
    accounting.spec.cores = Some(1);
    let why = blocked(&accounting, &cluster(&[NS, TEMPLATE]));
    assert_eq!(why.reason, reason::BELOW_TEMPLATE_MINIMUM);
    assert_eq!(
        why.message,
        "cores 1 is below the minimum 2 (template win2022-1c83)"
    );
}

#[test]
fn memory_below_the_template_minimum_blocks() {
    let mut accounting = server("accounting");
    accounting.spec.memory = Some(Quantity("4096Mi".into()));
    let why = blocked(&accounting, &cluster(&[NS, TEMPLATE]));
    assert_eq!(why.reason, reason::BELOW_TEMPLATE_MINIMUM);
    assert_eq!(
        why.message,
        "memory 4Gi is below the minimum 8Gi (template win2022-1c83)"
    );
}

#[test]
fn system_disk_smaller_than_the_template_disk_blocks() {
    let mut accounting = server("accounting");
    accounting.spec.disks[0].size = Quantity("81920Mi".into());
    let why = blocked(&accounting, &cluster(&[NS, TEMPLATE]));
    assert_eq!(why.reason, reason::BELOW_TEMPLATE_MINIMUM);
    assert_eq!(
        why.message,
        "system disk 80Gi is smaller than the template's disk 100Gi (template win2022-1c83)"
    );
}

#[test]
fn a_server_exactly_at_the_template_minimums_is_accepted() {
    let mut accounting = server("accounting");
    accounting.spec.cores = Some(2);
    accounting.spec.memory = Some(Quantity("8Gi".into()));
    accounting.spec.disks[0].size = Quantity("102400Mi".into());
    let plan = plan_of(&accounting, &cluster(&[NS, TEMPLATE]));
    assert_eq!((plan.cores, plan.memory_bytes), (2, 8 * GIB));
    assert_eq!(plan.disks[0].bytes, 100 * GIB);
}

// --- Deployed servers keep their disks --------------------------------------

#[test]
fn existing_data_volumes_keep_the_spec_they_were_created_with() {
    let observed = cluster(&[NS, "cluster/web/disks-ready.yaml"]);
    let plan = plan_of(&server("web"), &observed);
    let expected: Vec<_> = ["web-system", "web-data"]
        .iter()
        .map(|name| {
            let dv = observed.data_volume(name).expect("fixture DataVolume");
            Some(DiskContent::Existing(Box::new(dv.spec.clone())))
        })
        .collect();
    assert_eq!(contents(&plan), expected);
}

#[test]
fn deployed_server_is_not_blocked_when_its_template_is_deleted() {
    let observed = cluster(&[NS, "cluster/accounting/deployed.yaml"]);
    let plan = plan_of(&server("accounting"), &observed);
    let system = observed.data_volume("accounting-system").expect("fixture");
    assert_eq!(
        plan.disks[0].content,
        Some(DiskContent::Existing(Box::new(system.spec.clone())))
    );
    // The template's defaults are gone; the size the VM has stays.
    assert_eq!((plan.cores, plan.memory_bytes), (4, 16 * GIB));
}

#[test]
fn deployed_server_is_not_blocked_when_its_template_stops_being_shared() {
    let observed = cluster(&[
        NS,
        "templates/win2022-1c83-other-partner.yaml",
        "cluster/accounting/deployed.yaml",
    ]);
    let plan = plan_of(&server("accounting"), &observed);
    assert!(matches!(
        plan.disks[0].content,
        Some(DiskContent::Existing(_))
    ));
}

// --- Hot copies ----------------------------------------------------------

#[test]
fn copy_of_a_server_that_does_not_exist_is_blocked() {
    let why = blocked(&server("web-copy"), &cluster(&[NS]));
    assert_eq!(why.reason, reason::CLONE_SOURCE_NOT_FOUND);
    assert_eq!(
        why.message,
        "VirtualServer web to copy does not exist in this namespace"
    );
}

#[test]
fn copy_of_a_server_still_being_built_waits_for_it_to_run_or_stop() {
    use crate::api::virtual_server::ServerPhase;
    let mut observed = cluster(&[NS, "servers/web.yaml"]);
    for (phase, shown) in [
        (Some(ServerPhase::Provisioning), "Provisioning"),
        (Some(ServerPhase::Starting), "Starting"),
        (None, "not built yet"),
    ] {
        let source = observed.clone_source.as_mut().unwrap();
        source.status.as_mut().unwrap().phase = phase;
        let why = blocked(&server("web-copy"), &observed);
        assert_eq!(why.reason, reason::CLONE_SOURCE_NOT_READY);
        assert_eq!(
            why.message,
            format!("VirtualServer web is {shown}; a copy is taken once it runs (or is stopped)")
        );
    }
    // Stopped is as good as Running: its disks are at rest.
    source_phase(&mut observed, ServerPhase::Stopped);
    assert!(
        plan_of(&server("web-copy"), &observed)
            .clone_snapshot
            .is_some()
    );
}

fn source_phase(
    observed: &mut crate::controllers::virtual_server::fetch::Observed,
    phase: crate::api::virtual_server::ServerPhase,
) {
    let source = observed.clone_source.as_mut().unwrap();
    source.status.as_mut().unwrap().phase = Some(phase);
}

#[test]
fn copy_first_snapshots_the_source_vm_and_waits_for_it() {
    let plan = plan_of(&server("web-copy"), &cluster(&[NS, "servers/web.yaml"]));
    assert_eq!(
        plan.clone_snapshot,
        Some(CloneSnapshot {
            source_vm: "web".into()
        })
    );
    assert_eq!(contents(&plan), vec![None, None]);
    assert!(!plan.disks_known());
}

#[test]
fn copy_waits_while_the_snapshot_is_in_progress() {
    let plan = plan_of(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-in-progress.yaml",
        ]),
    );
    assert_eq!(contents(&plan), vec![None, None]);
    assert!(plan.clone_snapshot.is_some());
}

#[test]
fn copy_restores_each_disk_from_the_volume_snapshot_of_the_same_name() {
    let plan = plan_of(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-ready.yaml",
        ]),
    );
    assert_eq!(
        contents(&plan),
        vec![
            snapshot_volume("vmsnapshot-3a4b5c6d-volume-system"),
            snapshot_volume("vmsnapshot-3a4b5c6d-volume-data"),
        ]
    );
    // Until the disks are restored the snapshot must stay.
    assert!(plan.clone_snapshot.is_some());
}

#[test]
fn copy_keeps_its_snapshot_until_every_disk_is_restored() {
    let plan = plan_of(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-ready.yaml",
            "cluster/web-copy/disks-restoring.yaml",
        ]),
    );
    assert!(plan.clone_snapshot.is_some());
    assert!(
        contents(&plan)
            .iter()
            .all(|c| matches!(c, Some(DiskContent::Existing(_))))
    );
}

#[test]
fn restored_copy_needs_neither_its_snapshot_nor_its_source() {
    let plan = plan_of(
        &server("web-copy"),
        &cluster(&[NS, "cluster/web-copy/disks-ready.yaml"]),
    );
    assert_eq!(plan.clone_snapshot, None);
    assert!(plan.disks_known());
}

#[test]
fn failed_snapshot_blocks_the_copy_with_kubevirts_message() {
    let why = blocked(
        &server("web-copy"),
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-failed.yaml",
        ]),
    );
    assert_eq!(why.reason, reason::SNAPSHOT_FAILED);
    assert_eq!(
        why.message,
        "snapshot web-copy-clone-source: snapshot deadline exceeded: failed to freeze the guest file systems: guest agent is not responding"
    );
}

#[test]
fn disk_added_to_a_restored_copy_is_blank_and_needs_no_source() {
    // The copy is deployed; its source server has since been deleted. A disk
    // added now is a new blank data disk, like any server's.
    let mut copy = server("web-copy");
    copy.spec.disks.push(disk("logs", "10Gi"));
    let plan = plan_of(&copy, &cluster(&[NS, "cluster/web-copy/disks-ready.yaml"]));
    assert_eq!(plan.disks[2].content, Some(DiskContent::Blank));
    assert_eq!(plan.clone_snapshot, None);
}

// --- Restores from backup ---------------------------------------------------

#[test]
fn restore_of_a_backup_that_does_not_exist_is_blocked() {
    let why = blocked(&server("web-restored"), &cluster(&[NS]));
    assert_eq!(why.reason, reason::BACKUP_NOT_FOUND);
    assert_eq!(
        why.message,
        "backup snapshot nightly-web-20260301-0200 does not exist in this namespace"
    );
}

#[test]
fn restore_waits_while_the_backup_is_being_taken() {
    let plan = plan_of(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/backup-in-progress.yaml"]),
    );
    assert_eq!(contents(&plan), vec![None, None, None]);
    assert_eq!(plan.clone_snapshot, None, "a restore takes no snapshot");
}

#[test]
fn restore_matches_disks_by_name_and_the_system_disk_falls_back_to_the_first_volume() {
    let plan = plan_of(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/backup-ready.yaml"]),
    );
    assert_eq!(
        contents(&plan),
        vec![
            // `os` is not in the backup: the system disk takes its first volume.
            snapshot_volume("vmsnapshot-4b5c6d7e-volume-system"),
            snapshot_volume("vmsnapshot-4b5c6d7e-volume-data"),
            // `scratch` is not in the backup: a blank data disk.
            Some(DiskContent::Blank),
        ]
    );
}

#[test]
fn failed_backup_blocks_the_restore_with_kubevirts_message() {
    let why = blocked(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/backup-failed.yaml"]),
    );
    assert_eq!(why.reason, reason::SNAPSHOT_FAILED);
    assert!(
        why.message.starts_with(
            "snapshot nightly-web-20260301-0200: VolumeSnapshot vmsnapshot-4b5c6d7e-volume-data error"
        ),
        "{}",
        why.message
    );
}

#[test]
fn restored_server_no_longer_needs_its_backup() {
    let plan = plan_of(
        &server("web-restored"),
        &cluster(&[NS, "cluster/web-restored/disks-ready.yaml"]),
    );
    assert!(
        contents(&plan)
            .iter()
            .all(|c| matches!(c, Some(DiskContent::Existing(_))))
    );
}

#[test]
fn disk_added_to_a_restored_server_is_blank_and_needs_no_backup() {
    // The backup was pruned by its retention after the restore.
    let mut restored = server("web-restored");
    restored.spec.disks.push(disk("logs", "10Gi"));
    let plan = plan_of(
        &restored,
        &cluster(&[NS, "cluster/web-restored/disks-ready.yaml"]),
    );
    assert_eq!(plan.disks[3].content, Some(DiskContent::Blank));
}

#[test]
fn a_copy_into_a_disk_smaller_than_its_source_is_refused() {
    let observed = cluster(&[
        NS,
        "servers/web.yaml",
        "cluster/web-copy/snapshot-ready.yaml",
    ]);
    let mut copy = server("web-copy");
    copy.spec.disks[0].size = k8s_openapi::apimachinery::pkg::api::resource::Quantity("1Mi".into());
    let blocked = blocked(&copy, &observed);
    assert_eq!(blocked.reason, "DiskSmallerThanSource", "{blocked:?}");
    assert!(blocked.message.contains("1Mi"), "{}", blocked.message);
}

// --- Disks kept from an earlier server ------------------------------------

/// What fetch would observe once `server`'s own disks exist.
fn with_its_disks(
    server: &crate::api::VirtualServer,
) -> crate::controllers::virtual_server::fetch::Observed {
    let plan = plan_of(server, &cluster(&[NS]));
    let built = crate::controllers::virtual_server::build::build(
        server,
        &plan,
        crate::api::virtual_server::PowerState::Running,
    )
    .expect("children");
    let mut observed = cluster(&[NS]);
    observed.data_volumes = built.disks;
    observed
}

#[test]
fn a_disk_kept_from_an_earlier_server_of_the_same_name_is_never_taken_over() {
    let web = server("web");
    // This server's own disk (its UID) is its own: no conflict.
    let mut observed = with_its_disks(&web);
    assert!(
        crate::controllers::virtual_server::validate::plan(&web, &observed, &[]).is_ok(),
        "a server's own disks are its own"
    );
    // The same name, made by a server deleted with deletionPolicy Retain.
    let kept = &mut observed.data_volumes[0];
    kept.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("partnercloud.io/server-uid".into(), "an-earlier-uid".into());
    kept.metadata.owner_references = None;
    let why = blocked(&web, &observed);
    assert_eq!(why.reason, reason::NAME_CONFLICT);
    assert!(
        why.message.contains("web-system") && why.message.contains("kept from an earlier server"),
        "{}",
        why.message
    );
}

// --- Storage held beyond the spec ------------------------------------------

#[test]
fn detached_disks_still_hold_their_storage() {
    let mut web = server("web");
    let nothing_yet = plan_of(&web, &cluster(&[NS]));
    assert_eq!(nothing_yet.detached_bytes, 0, "nothing exists yet");
    let observed = with_its_disks(&web);
    assert_eq!(plan_of(&web, &observed).detached_bytes, 0);

    // The 100Gi data disk taken out of the spec is detached, not deleted.
    let data = web.spec.disks.remove(1);
    assert_eq!(plan_of(&web, &observed).detached_bytes, 100 * GIB);
    // Put back at its size, it is attached again and counted once.
    web.spec.disks.push(data);
    assert_eq!(plan_of(&web, &observed).detached_bytes, 0);
    // Put back smaller, it is refused rather than attached at 100Gi while
    // the spec says 10Gi.
    web.spec.disks[1] = disk("data", "10Gi");
    assert_eq!(blocked(&web, &observed).reason, reason::DISK_CANNOT_SHRINK);
}

#[test]
fn a_disk_put_back_bigger_than_it_exists_is_refused_not_silently_kept_small() {
    let mut web = server("web");
    let observed = with_its_disks(&web);
    web.spec.disks[1] = disk("data", "200Gi");
    let why = blocked(&web, &observed);
    assert_eq!(why.reason, reason::DISK_CANNOT_GROW);
    assert_eq!(
        why.message,
        "disk data exists with 100Gi; spec.disks[1].size asks for 200Gi: an existing disk keeps the size it was created with (put its size back, or add a data disk under another name)"
    );
}

#[test]
fn a_copy_that_leaves_out_a_volume_of_the_snapshot_is_refused_naming_it() {
    let mut copy = server("web-copy");
    copy.spec.disks.truncate(1);
    let why = blocked(
        &copy,
        &cluster(&[
            NS,
            "servers/web.yaml",
            "cluster/web-copy/snapshot-ready.yaml",
        ]),
    );
    assert_eq!(why.reason, reason::VOLUMES_NOT_RESTORED);
    assert!(
        why.message
            .starts_with("the snapshot holds volume(s) data that no disk"),
        "{}",
        why.message
    );
}
