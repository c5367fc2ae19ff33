//! VirtualServer end to end: the operator and the simulator against the
//! real API server.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use partnercloud::api::VirtualServer;
use partnercloud::kubevirt::{DataVolume, VirtualMachine, VirtualMachineInstance};
use partnercloud::simulator::Failure;
use serde_json::{Value, json};

use crate::common::{admin, create, eventually, namespace, operator, ready_message, wait_ready};

const READY_WITHIN: Duration = Duration::from_secs(60);

fn server(name: &str, source: Value) -> Value {
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": {"name": name},
        "spec": {"cores": 2, "memory": "4Gi", "disks": [{"name": "system", "size": "20Gi"}, {"name": "data", "size": "10Gi"}], "source": source}
    })
}

async fn setup(prefix: &str) -> (Client, String, Api<VirtualServer>) {
    operator();
    let client = admin().await;
    let ns = namespace(&client, prefix).await;
    let api = Api::<VirtualServer>::namespaced(client.clone(), &ns);
    (client, ns, api)
}

#[tokio::test]
async fn image_blank_and_iso_servers_become_ready() {
    let (client, ns, api) = setup("vs-sources").await;
    let images = &operator().images;
    create(
        &client,
        &server(
            "from-image",
            json!({"image": {"url": format!("{images}/images/debian.qcow2")}}),
        ),
        &ns,
        false,
    )
    .await
    .unwrap();
    create(
        &client,
        &server("from-blank", json!({"blank": {}})),
        &ns,
        false,
    )
    .await
    .unwrap();
    create(
        &client,
        &server(
            "from-iso",
            json!({"iso": {"url": format!("{images}/images/win.iso")}}),
        ),
        &ns,
        false,
    )
    .await
    .unwrap();
    for name in ["from-image", "from-blank", "from-iso"] {
        let vs = wait_ready(&api, name, "True", Some("Running"), READY_WITHIN).await;
        let status = vs.status.unwrap();
        assert_eq!(status.observed_generation, vs.metadata.generation);
        assert!(
            status
                .disks
                .iter()
                .all(|d| d.phase.as_deref() == Some("Succeeded")),
            "{name}: {:?}",
            status.disks
        );
        // The guest's address follows once the instance reports it.
        eventually(&format!("{name} has an address"), READY_WITHIN, || {
            let api = api.clone();
            async move {
                api.get(name)
                    .await
                    .unwrap()
                    .status
                    .is_some_and(|s| !s.addresses.is_empty())
            }
        })
        .await;
    }
    // The ISO server boots from its CD-ROM; ejecting removes it.
    let dvs = Api::<DataVolume>::namespaced(client.clone(), &ns);
    assert!(dvs.get_opt("from-iso-cdrom").await.unwrap().is_some());
    api.patch(
        "from-iso",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"source": {"iso": {"eject": true}}}})),
    )
    .await
    .unwrap();
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), &ns);
    eventually("ISO ejected", READY_WITHIN, || {
        let (dvs, vms) = (dvs.clone(), vms.clone());
        async move {
            let vm = vms.get("from-iso").await.unwrap();
            dvs.get_opt("from-iso-cdrom").await.unwrap().is_none()
                && vm
                    .spec
                    .template
                    .spec
                    .volumes
                    .iter()
                    .all(|v| v.name != "cdrom")
        }
    })
    .await;
}

#[tokio::test]
async fn power_off_and_on() {
    let (client, ns, api) = setup("vs-power").await;
    create(&client, &server("app", json!({"blank": {}})), &ns, false)
        .await
        .unwrap();
    wait_ready(&api, "app", "True", Some("Running"), READY_WITHIN).await;
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"powerState": "Stopped"}})),
    )
    .await
    .unwrap();
    let stopped = wait_ready(&api, "app", "True", Some("Stopped"), READY_WITHIN).await;
    let status = stopped.status.unwrap();
    assert_eq!(
        status.phase,
        Some(partnercloud::api::virtual_server::ServerPhase::Stopped)
    );
    assert!(
        status.addresses.is_empty(),
        "a stopped server has no address: {:?}",
        status.addresses
    );
    let vmis = Api::<VirtualMachineInstance>::namespaced(client.clone(), &ns);
    assert!(
        vmis.get_opt("app").await.unwrap().is_none(),
        "no instance while stopped"
    );
    assert!(
        Api::<DataVolume>::namespaced(client.clone(), &ns)
            .get_opt("app-system")
            .await
            .unwrap()
            .is_some(),
        "disks kept while stopped"
    );
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"powerState": "Running"}})),
    )
    .await
    .unwrap();
    wait_ready(&api, "app", "True", Some("Running"), READY_WITHIN).await;
}

#[tokio::test]
async fn resizing_a_running_server_requires_a_restart() {
    let (client, ns, api) = setup("vs-resize").await;
    create(&client, &server("app", json!({"blank": {}})), &ns, false)
        .await
        .unwrap();
    wait_ready(&api, "app", "True", Some("Running"), READY_WITHIN).await;
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cores": 4}})),
    )
    .await
    .unwrap();
    let vs = wait_ready(&api, "app", "False", Some("RestartRequired"), READY_WITHIN).await;
    assert!(
        vs.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.message.contains("restart"))
    );
    // Stop and start: the new size is in effect and the server is Ready.
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"powerState": "Stopped"}})),
    )
    .await
    .unwrap();
    wait_ready(&api, "app", "True", Some("Stopped"), READY_WITHIN).await;
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"powerState": "Running"}})),
    )
    .await
    .unwrap();
    wait_ready(&api, "app", "True", Some("Running"), READY_WITHIN).await;

    // Memory too: a running server's new memory waits for a restart.
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"memory": "8Gi"}})),
    )
    .await
    .unwrap();
    wait_ready(&api, "app", "False", Some("RestartRequired"), READY_WITHIN).await;
    let vm = Api::<VirtualMachine>::namespaced(client.clone(), &ns)
        .get("app")
        .await
        .unwrap();
    assert_eq!(
        vm.spec
            .template
            .spec
            .domain
            .memory
            .and_then(|m| m.guest)
            .as_deref(),
        Some("8Gi"),
        "the new size is rendered, to take effect on the restart"
    );
}

#[tokio::test]
async fn exposures_are_added_and_removed() {
    let (client, ns, api) = setup("vs-expose").await;
    let mut vs = server("files", json!({"blank": {}}));
    vs["spec"]["expose"] = json!([{"name": "smb", "preset": "smb", "allowFrom": ["192.0.2.0/24"]}, {"name": "ftp", "preset": "ftp"}]);
    create(&client, &vs, &ns, false).await.unwrap();
    let ready = wait_ready(&api, "files", "True", Some("Running"), READY_WITHIN).await;
    let endpoints = ready.status.unwrap().endpoints;
    assert_eq!(endpoints.len(), 2);
    assert!(
        endpoints.iter().all(|e| e.address.is_some()),
        "{endpoints:?}"
    );
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    let smb = services.get("smb-files").await.unwrap();
    assert_eq!(
        smb.spec.as_ref().unwrap().load_balancer_source_ranges,
        Some(vec!["192.0.2.0/24".to_string()])
    );
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    assert!(policies.get_opt("ftp-files").await.unwrap().is_some());

    api.patch("files", &PatchParams::default(), &Patch::Merge(json!({"spec": {"expose": [{"name": "smb", "preset": "smb", "allowFrom": ["192.0.2.0/24"]}]}})))
        .await
        .unwrap();
    eventually("ftp exposure removed", READY_WITHIN, || {
        let (services, policies) = (services.clone(), policies.clone());
        async move {
            services.get_opt("ftp-files").await.unwrap().is_none()
                && policies.get_opt("ftp-files").await.unwrap().is_none()
        }
    })
    .await;
    assert!(
        services.get_opt("smb-files").await.unwrap().is_some(),
        "the remaining exposure stays"
    );
}

#[tokio::test]
async fn retain_keeps_the_disks_and_delete_lets_them_go() {
    let (client, ns, api) = setup("vs-retain").await;
    let mut keep = server("keeper", json!({"blank": {}}));
    keep["spec"]["deletionPolicy"] = json!("Retain");
    create(&client, &keep, &ns, false).await.unwrap();
    create(&client, &server("goner", json!({"blank": {}})), &ns, false)
        .await
        .unwrap();
    wait_ready(&api, "keeper", "True", None, READY_WITHIN).await;
    wait_ready(&api, "goner", "True", None, READY_WITHIN).await;
    api.delete("keeper", &DeleteParams::default())
        .await
        .unwrap();
    api.delete("goner", &DeleteParams::default()).await.unwrap();
    let dvs = Api::<DataVolume>::namespaced(client.clone(), &ns);
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), &ns);
    eventually(
        "servers, VMs and the deleted server's disks gone",
        READY_WITHIN,
        || {
            let (api, dvs, vms) = (api.clone(), dvs.clone(), vms.clone());
            async move {
                api.get_opt("keeper").await.unwrap().is_none()
                    && api.get_opt("goner").await.unwrap().is_none()
                    && vms.get_opt("keeper").await.unwrap().is_none()
                    && dvs.get_opt("goner-system").await.unwrap().is_none()
            }
        },
    )
    .await;
    // Retained: the disks and their claims stay, labelled with the server.
    for disk in ["keeper-system", "keeper-data"] {
        let dv = dvs
            .get(disk)
            .await
            .unwrap_or_else(|e| panic!("{disk} was not retained: {e}"));
        assert_eq!(
            dv.labels()
                .get("partnercloud.io/server")
                .map(String::as_str),
            Some("keeper")
        );
        assert!(dv.owner_references().is_empty());
        assert!(
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
                .get_opt(disk)
                .await
                .unwrap()
                .is_some()
        );
    }

    // A new server of the same name never takes the kept disks over (it
    // would get the old disk and delete it with itself).
    let kept = dvs.get("keeper-system").await.unwrap();
    let mut again = server("keeper", json!({"blank": {}}));
    again["spec"]["disks"] = json!([{"name": "system", "size": "5Gi"}]);
    create(&client, &again, &ns, false).await.unwrap();
    let refused = wait_ready(&api, "keeper", "False", Some("NameConflict"), READY_WITHIN).await;
    let message = ready_message(&refused.status.unwrap().conditions);
    assert!(message.contains("kept from an earlier server"), "{message}");
    let still = dvs.get("keeper-system").await.unwrap();
    assert_eq!(still.metadata.uid, kept.metadata.uid);
    assert!(still.owner_references().is_empty(), "not adopted");
    assert_eq!(still.spec, kept.spec);
    api.delete("keeper", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the second keeper is gone", READY_WITHIN, || {
        let api = api.clone();
        async move { api.get_opt("keeper").await.unwrap().is_none() }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for disk in ["keeper-system", "keeper-data"] {
        assert!(
            dvs.get_opt(disk).await.unwrap().is_some(),
            "{disk} survived the second server's deletion"
        );
    }
}

/// ACCEPTANCE 6: an import that can never succeed ends as ImportFailed with
/// the cause, after bounded retries.
#[tokio::test]
async fn an_import_that_answers_404_fails_with_the_cause() {
    let (client, ns, api) = setup("vs-404").await;
    create(
        &client,
        &server(
            "missing",
            json!({"image": {"url": "https://images.nowhere.invalid/win.qcow2"}}),
        ),
        &ns,
        false,
    )
    .await
    .unwrap();
    let images = &operator().images;
    create(
        &client,
        &server(
            "wrong-path",
            json!({"image": {"url": format!("{images}/not-an-image")}}),
        ),
        &ns,
        false,
    )
    .await
    .unwrap();
    for name in ["missing", "wrong-path"] {
        let vs = wait_ready(&api, name, "False", Some("ImportFailed"), READY_WITHIN).await;
        let ready = vs
            .status
            .clone()
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert!(ready.message.contains("404"), "{name}: {}", ready.message);
        assert_eq!(
            vs.status.unwrap().phase,
            Some(partnercloud::api::virtual_server::ServerPhase::Failed)
        );
    }
}

/// ACCEPTANCE 8: a hot copy of a running server goes through a VM snapshot;
/// the source keeps running and the copy has its own identity.
#[tokio::test]
async fn hot_copy_of_a_running_server() {
    let (client, ns, api) = setup("vs-clone").await;
    create(&client, &server("source", json!({"blank": {}})), &ns, false)
        .await
        .unwrap();
    wait_ready(&api, "source", "True", Some("Running"), READY_WITHIN).await;
    // What "no downtime" means here: the source's VirtualMachine spec is not
    // touched and its running instance is the same one throughout.
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), &ns);
    let vmis = Api::<VirtualMachineInstance>::namespaced(client.clone(), &ns);
    let source_generation = vms.get("source").await.unwrap().metadata.generation;
    let source_instance = vmis.get("source").await.unwrap().metadata.uid;
    create(
        &client,
        &server("copy", json!({"clone": {"server": "source"}})),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(&api, "copy", "True", Some("Running"), READY_WITHIN).await;
    let source = wait_ready(
        &api,
        "source",
        "True",
        Some("Running"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        source.status.unwrap().phase,
        Some(partnercloud::api::virtual_server::ServerPhase::Running),
        "the source never stopped"
    );
    assert_eq!(
        vms.get("source").await.unwrap().metadata.generation,
        source_generation,
        "the source's VirtualMachine was not modified"
    );
    assert_eq!(
        vmis.get("source").await.unwrap().metadata.uid,
        source_instance,
        "the source's instance kept running (not restarted)"
    );
    let (a, b) = (
        vms.get("source").await.unwrap(),
        vms.get("copy").await.unwrap(),
    );
    let mac = |vm: &VirtualMachine| {
        vm.spec.template.spec.domain.devices.interfaces[0]
            .mac_address
            .clone()
    };
    let uuid = |vm: &VirtualMachine| {
        vm.spec
            .template
            .spec
            .domain
            .firmware
            .as_ref()
            .and_then(|f| f.uuid.clone())
    };
    assert_ne!(mac(&a), mac(&b));
    assert_ne!(uuid(&a), uuid(&b));
    assert_eq!(b.spec.template.spec.hostname.as_deref(), Some("copy"));
    let system = Api::<DataVolume>::namespaced(client.clone(), &ns)
        .get("copy-system")
        .await
        .unwrap();
    assert!(
        system.spec.source.and_then(|s| s.snapshot).is_some(),
        "restored from the snapshot"
    );
    // The temporary snapshot is removed once the copy's disks are done.
    let snapshots =
        Api::<partnercloud::kubevirt::VirtualMachineSnapshot>::namespaced(client.clone(), &ns);
    eventually("clone snapshot cleaned up", READY_WITHIN, || {
        let snapshots = snapshots.clone();
        async move {
            snapshots
                .get_opt("copy-clone-source")
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
}

#[tokio::test]
async fn a_copy_of_a_missing_server_says_so_and_a_failed_snapshot_too() {
    let (client, ns, api) = setup("vs-clone-bad").await;
    create(
        &client,
        &server("orphan-copy", json!({"clone": {"server": "nobody"}})),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(
        &api,
        "orphan-copy",
        "False",
        Some("CloneSourceNotFound"),
        READY_WITHIN,
    )
    .await;

    create(&client, &server("source", json!({"blank": {}})), &ns, false)
        .await
        .unwrap();
    wait_ready(&api, "source", "True", Some("Running"), READY_WITHIN).await;
    operator()
        .failures
        .inject(&ns, "doomed-clone-source", Failure::SnapshotFails);
    create(
        &client,
        &server("doomed", json!({"clone": {"server": "source"}})),
        &ns,
        false,
    )
    .await
    .unwrap();
    let vs = wait_ready(
        &api,
        "doomed",
        "False",
        Some("SnapshotFailed"),
        READY_WITHIN,
    )
    .await;
    assert!(
        vs.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.message.contains("doomed-clone-source"))
    );
}

/// ACCEPTANCE 4: children deleted by hand, then the server: every deletion completes.
#[tokio::test]
async fn deletion_completes_with_children_already_gone() {
    let (client, ns, api) = setup("vs-gone").await;
    create(&client, &server("app", json!({"blank": {}})), &ns, false)
        .await
        .unwrap();
    wait_ready(&api, "app", "True", None, READY_WITHIN).await;
    Api::<VirtualMachine>::namespaced(client.clone(), &ns)
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    Api::<DataVolume>::namespaced(client.clone(), &ns)
        .delete("app-system", &DeleteParams::default())
        .await
        .unwrap();
    api.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("server deleted", READY_WITHIN, || {
        let api = api.clone();
        async move { api.get_opt("app").await.unwrap().is_none() }
    })
    .await;
    let _ = ns.len();
}

#[tokio::test]
async fn a_derived_name_held_by_another_server_is_a_name_conflict_and_nothing_is_taken() {
    let (client, ns, api) = setup("vs-names").await;
    // `web` with disk `data-x` owns the DataVolume `web-data-x`; `web-data`
    // with a data disk `x` would need the same name.
    let mut web = server("web", json!({"blank": {}}));
    web["spec"]["disks"] =
        json!([{"name": "system", "size": "5Gi"}, {"name": "data-x", "size": "1Gi"}]);
    create(&client, &web, &ns, false).await.unwrap();
    wait_ready(&api, "web", "True", Some("Running"), READY_WITHIN).await;
    let volumes = Api::<DataVolume>::namespaced(client.clone(), &ns);
    let before = volumes.get("web-data-x").await.unwrap();

    let mut other = server("web-data", json!({"blank": {}}));
    other["spec"]["disks"] = json!([{"name": "y", "size": "5Gi"}, {"name": "x", "size": "1Gi"}]);
    other["spec"]["expose"] = json!([{"name": "ssh", "preset": "ssh"}]);
    create(&client, &other, &ns, false).await.unwrap();
    let refused = wait_ready(
        &api,
        "web-data",
        "False",
        Some("NameConflict"),
        READY_WITHIN,
    )
    .await;
    let message = ready_message(&refused.status.unwrap().conditions);
    assert!(
        message.contains("web-data-x") && message.contains("web"),
        "{message}"
    );
    let after = volumes.get("web-data-x").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.metadata.owner_references, before.metadata.owner_references,
        "the disk still belongs to web alone"
    );
    assert_eq!(after.spec, before.spec);
    // Nothing else of the refused server was built either.
    assert!(volumes.get_opt("web-data-y").await.unwrap().is_none());
    assert!(
        Api::<VirtualMachine>::namespaced(client.clone(), &ns)
            .get_opt("web-data")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Service>::namespaced(client.clone(), &ns)
            .get_opt("ssh-web-data")
            .await
            .unwrap()
            .is_none()
    );
    wait_ready(&api, "web", "True", Some("Running"), Duration::from_secs(5)).await;
}
