//! ServerTemplate end to end: the operator and the simulator against the
//! real API server, images from the loopback image server (real bytes, real
//! SHA-256).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use partnercloud::api::server_template::TemplatePhase;
use partnercloud::api::{ServerTemplate, VirtualServer};
use partnercloud::image_server::image_sha256;
use partnercloud::kubevirt::{DataSource, DataVolume, VirtualMachine, VirtualMachineSnapshot};
use serde_json::{Value, json};

use crate::common::{admin, create, eventually, namespace, operator, wait_ready};

const READY_WITHIN: Duration = Duration::from_secs(60);

fn image_template(name: &str, path: &str, sha256: Option<String>) -> Value {
    let mut image = json!({"url": format!("{}{path}", operator().images)});
    if let Some(digest) = sha256 {
        image["sha256"] = json!(digest);
    }
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "ServerTemplate",
        "metadata": {"name": name},
        "spec": {
            "os": {"type": "windows", "name": "Windows Server 2022 + 1C:Enterprise 8.3 + PostgreSQL 16"},
            "source": {"image": image},
            "diskSize": "20Gi",
            "defaults": {"cores": 4, "memory": "8Gi"},
            "minimums": {"cores": 2, "memory": "4Gi"}
        }
    })
}

/// A server deployed from `template` (in `template_ns` when given), size
/// from the template's defaults unless `size` says otherwise.
fn from_template(
    name: &str,
    template: &str,
    template_ns: Option<&str>,
    size: Option<(u32, &str)>,
) -> Value {
    let mut reference = json!({"name": template});
    if let Some(ns) = template_ns {
        reference["namespace"] = json!(ns);
    }
    let mut server = json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": {"name": name},
        "spec": {"disks": [{"name": "system", "size": "40Gi"}], "source": {"template": reference}}
    });
    if let Some((cores, memory)) = size {
        server["spec"]["cores"] = json!(cores);
        server["spec"]["memory"] = json!(memory);
    }
    server
}

async fn setup(prefix: &str) -> (Client, String, Api<ServerTemplate>, Api<VirtualServer>) {
    operator();
    let client = admin().await;
    let ns = namespace(&client, prefix).await;
    (
        client.clone(),
        ns.clone(),
        Api::namespaced(client.clone(), &ns),
        Api::namespaced(client, &ns),
    )
}

fn ready_message<K: serde::Serialize>(object: &K) -> String {
    let value = serde_json::to_value(object).unwrap();
    value["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn used_by(templates: &Api<ServerTemplate>, name: &str) -> i32 {
    templates
        .get(name)
        .await
        .unwrap()
        .status
        .map(|s| s.used_by)
        .unwrap_or_default()
}

#[tokio::test]
async fn an_image_with_the_right_digest_is_verified_published_and_deployed_with_defaults() {
    let (client, ns, templates, servers) = setup("st-import").await;
    let digest = image_sha256("/images/st-win.qcow2");
    create(
        &client,
        &image_template("win", "/images/st-win.qcow2", Some(digest)),
        &ns,
        false,
    )
    .await
    .unwrap();
    let t = wait_ready(&templates, "win", "True", Some("Ready"), READY_WITHIN).await;
    let status = t.status.unwrap();
    assert_eq!(status.checksum_verified, Some(true));
    assert_eq!(status.phase, Some(TemplatePhase::Ready));
    assert_eq!(status.size.as_deref(), Some("20Gi"));
    let golden = status.published_volume.expect("a published golden disk");
    let ds = Api::<DataSource>::namespaced(client.clone(), &ns)
        .get("win")
        .await
        .expect("the DataSource is named like the template");
    assert_eq!(ds.spec.source.pvc.unwrap().name, golden);

    // Cores and memory omitted: the template's defaults apply.
    create(
        &client,
        &from_template("app", "win", None, None),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(&servers, "app", "True", Some("Running"), READY_WITHIN).await;
    let vm = Api::<VirtualMachine>::namespaced(client.clone(), &ns)
        .get("app")
        .await
        .unwrap();
    let domain = &vm.spec.template.spec.domain;
    assert_eq!(domain.cpu.as_ref().unwrap().cores, Some(4));
    assert_eq!(
        domain.memory.as_ref().unwrap().guest.as_deref(),
        Some("8Gi")
    );
    let disk = Api::<DataVolume>::namespaced(client.clone(), &ns)
        .get("app-system")
        .await
        .unwrap();
    assert_eq!(
        disk.spec.source_ref.unwrap().name,
        "win",
        "cloned from the DataSource"
    );

    // Below the template's minimum: refused with a reason.
    create(
        &client,
        &from_template("tiny", "win", None, Some((1, "8Gi"))),
        &ns,
        false,
    )
    .await
    .unwrap();
    let tiny = wait_ready(
        &servers,
        "tiny",
        "False",
        Some("BelowTemplateMinimum"),
        READY_WITHIN,
    )
    .await;
    assert!(ready_message(&tiny).contains("cores 1 is below the minimum 2"));

    eventually("usedBy counts both servers", READY_WITHIN, || {
        let templates = templates.clone();
        async move { used_by(&templates, "win").await == 2 }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_digest_is_a_checksum_mismatch_and_nothing_is_deployed_from_it() {
    let (client, ns, templates, servers) = setup("st-mismatch").await;
    let wrong = image_sha256("/images/something-else.qcow2");
    let right = image_sha256("/images/st-tampered.qcow2");
    create(
        &client,
        &image_template("tampered", "/images/st-tampered.qcow2", Some(wrong.clone())),
        &ns,
        false,
    )
    .await
    .unwrap();
    let t = wait_ready(
        &templates,
        "tampered",
        "False",
        Some("ChecksumMismatch"),
        READY_WITHIN,
    )
    .await;
    let message = ready_message(&t);
    assert!(
        message.contains(&wrong) && message.contains(&right),
        "{message}"
    );
    let status = t.status.unwrap();
    assert_eq!(status.checksum_verified, Some(false));
    assert_eq!(status.phase, Some(TemplatePhase::Failed));
    assert!(
        Api::<DataSource>::namespaced(client.clone(), &ns)
            .get_opt("tampered")
            .await
            .unwrap()
            .is_none(),
        "no DataSource is published"
    );
    create(
        &client,
        &from_template("app", "tampered", None, None),
        &ns,
        false,
    )
    .await
    .unwrap();
    let vs = wait_ready(
        &servers,
        "app",
        "False",
        Some("TemplateNotReady"),
        READY_WITHIN,
    )
    .await;
    assert!(ready_message(&vs).contains("ChecksumMismatch"));
    // The bad import is not kept.
    let dvs = Api::<DataVolume>::namespaced(client.clone(), &ns);
    eventually(
        "the mismatched golden disk is removed",
        READY_WITHIN,
        || {
            let dvs = dvs.clone();
            async move {
                dvs.list(&Default::default())
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .all(|d| !d.name_any().starts_with("tampered-golden-"))
            }
        },
    )
    .await;
}

/// ACCEPTANCE 6 for templates: an import that can never succeed.
#[tokio::test]
async fn an_import_that_answers_404_is_import_failed() {
    let (client, ns, templates, _) = setup("st-404").await;
    let mut nowhere = image_template("nowhere", "", None);
    nowhere["spec"]["source"]["image"]["url"] = json!("https://images.nowhere.invalid/win.qcow2");
    create(&client, &nowhere, &ns, false).await.unwrap();
    let digest = image_sha256("/images/missing.qcow2");
    create(
        &client,
        &image_template("missing", "/missing.qcow2", Some(digest)),
        &ns,
        false,
    )
    .await
    .unwrap();
    for name in ["nowhere", "missing"] {
        let t = wait_ready(
            &templates,
            name,
            "False",
            Some("ImportFailed"),
            READY_WITHIN,
        )
        .await;
        assert!(
            ready_message(&t).contains("404"),
            "{name}: {}",
            ready_message(&t)
        );
        assert_eq!(t.status.unwrap().phase, Some(TemplatePhase::Failed));
    }
}

#[tokio::test]
async fn a_template_is_captured_from_a_running_server_that_keeps_running() {
    let (client, ns, templates, servers) = setup("st-capture").await;
    create(
        &client,
        &json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "VirtualServer",
            "metadata": {"name": "configured"},
            "spec": {"cores": 2, "memory": "4Gi", "disks": [{"name": "system", "size": "20Gi"}, {"name": "data", "size": "10Gi"}], "source": {"blank": {}}}
        }),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(
        &servers,
        "configured",
        "True",
        Some("Running"),
        READY_WITHIN,
    )
    .await;
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), &ns);
    let before = vms.get("configured").await.unwrap();

    create(
        &client,
        &json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "ServerTemplate",
            "metadata": {"name": "captured"},
            "spec": {"os": {"type": "linux", "name": "Debian 12 + 1C server"}, "diskSize": "20Gi",
                     "defaults": {"cores": 2, "memory": "4Gi"},
                     "source": {"server": {"name": "configured"}}}
        }),
        &ns,
        false,
    )
    .await
    .unwrap();
    let t = wait_ready(&templates, "captured", "True", Some("Ready"), READY_WITHIN).await;
    let golden = t.status.unwrap().published_volume.unwrap();
    let dv = Api::<DataVolume>::namespaced(client.clone(), &ns)
        .get(&golden)
        .await
        .unwrap();
    let restored_from = dv
        .spec
        .source
        .clone()
        .unwrap()
        .snapshot
        .expect("restored from a snapshot")
        .name;
    assert!(
        restored_from.ends_with("-volume-system"),
        "the system disk: {restored_from}"
    );
    assert_eq!(dv.labels()["partnercloud.io/generalize"], "true");

    // The source never stopped and was not modified.
    let source = wait_ready(
        &servers,
        "configured",
        "True",
        Some("Running"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        source.status.unwrap().phase,
        Some(partnercloud::api::virtual_server::ServerPhase::Running)
    );
    let after = vms.get("configured").await.unwrap();
    assert_eq!(before.metadata.generation, after.metadata.generation);
    assert_eq!(before.spec, after.spec);

    // The capture snapshot is removed once the golden disk is restored.
    let snapshots = Api::<VirtualMachineSnapshot>::namespaced(client.clone(), &ns);
    eventually("capture snapshot removed", READY_WITHIN, || {
        let snapshots = snapshots.clone();
        async move {
            snapshots
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .all(|s| !s.name_any().starts_with("captured-capture-"))
        }
    })
    .await;

    // A server deployed from it has its own identity.
    create(
        &client,
        &from_template("clone-of-golden", "captured", None, None),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(
        &servers,
        "clone-of-golden",
        "True",
        Some("Running"),
        READY_WITHIN,
    )
    .await;
    let copy = vms.get("clone-of-golden").await.unwrap();
    let mac = |vm: &VirtualMachine| {
        vm.spec.template.spec.domain.devices.interfaces[0]
            .mac_address
            .clone()
    };
    assert_ne!(mac(&after), mac(&copy));
    assert_eq!(
        copy.spec.template.spec.hostname.as_deref(),
        Some("clone-of-golden")
    );

    // A missing server, or one in another namespace, is a reason.
    create(
        &client,
        &json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "ServerTemplate",
            "metadata": {"name": "from-nobody"},
            "spec": {"os": {"type": "linux", "name": "x"}, "diskSize": "20Gi",
                     "source": {"server": {"name": "nobody"}}}
        }),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(
        &templates,
        "from-nobody",
        "False",
        Some("SourceServerNotFound"),
        READY_WITHIN,
    )
    .await;
    create(
        &client,
        &json!({
            "apiVersion": "partnercloud.io/v1alpha1", "kind": "ServerTemplate",
            "metadata": {"name": "from-elsewhere"},
            "spec": {"os": {"type": "linux", "name": "x"}, "diskSize": "20Gi",
                     "source": {"server": {"name": "configured", "namespace": "someone-else"}}}
        }),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(
        &templates,
        "from-elsewhere",
        "False",
        Some("SourceInOtherNamespace"),
        READY_WITHIN,
    )
    .await;
}

async fn label_namespace(client: &Client, ns: &str, labels: Value) {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sharing_allows_and_refuses_other_namespaces_and_grants_exactly_that() {
    let (client, partner, templates, _) = setup("st-share").await;
    let allowed = namespace(&client, "st-share-in").await;
    let refused = namespace(&client, "st-share-out").await;
    let tag = format!("share-{partner}");
    label_namespace(&client, &allowed, json!({"partnercloud.io/partner": tag})).await;

    let mut template = image_template("shared", "/images/st-shared.qcow2", None);
    template["spec"]["sharing"] = json!({"scope": "Selector", "namespaceSelector": {"matchLabels": {"partnercloud.io/partner": tag}}});
    create(&client, &template, &partner, false).await.unwrap();
    let t = wait_ready(&templates, "shared", "True", Some("Ready"), READY_WITHIN).await;
    let golden = t.status.unwrap().published_volume.unwrap();

    let grant = "partnercloud-template-shared-clone";
    let role = Api::<Role>::namespaced(client.clone(), &partner)
        .get(grant)
        .await
        .unwrap();
    let rule = &role.rules.unwrap()[0];
    assert_eq!(rule.resource_names, Some(vec![golden.clone()]));
    assert_eq!(rule.resources, Some(vec!["datavolumes/source".to_string()]));
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), &partner);
    let subjects = |b: RoleBinding| -> Vec<String> {
        b.subjects
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(
        subjects(bindings.get(grant).await.unwrap()),
        vec![format!("system:serviceaccounts:{allowed}")]
    );

    let in_api = Api::<VirtualServer>::namespaced(client.clone(), &allowed);
    let out_api = Api::<VirtualServer>::namespaced(client.clone(), &refused);
    create(
        &client,
        &from_template("app", "shared", Some(&partner), None),
        &allowed,
        false,
    )
    .await
    .unwrap();
    create(
        &client,
        &from_template("app", "shared", Some(&partner), None),
        &refused,
        false,
    )
    .await
    .unwrap();
    wait_ready(&in_api, "app", "True", Some("Running"), READY_WITHIN).await;
    wait_ready(
        &out_api,
        "app",
        "False",
        Some("TemplateNotShared"),
        READY_WITHIN,
    )
    .await;

    // Labelling the refused namespace shares the template with it: the
    // grant follows the namespace, and so does the server.
    label_namespace(&client, &refused, json!({"partnercloud.io/partner": tag})).await;
    eventually(
        "the grant includes the newly labelled namespace",
        READY_WITHIN,
        || {
            let bindings = bindings.clone();
            let refused = refused.clone();
            async move {
                subjects(bindings.get(grant).await.unwrap())
                    .contains(&format!("system:serviceaccounts:{refused}"))
            }
        },
    )
    .await;
    wait_ready(&out_api, "app", "True", Some("Running"), READY_WITHIN).await;
    eventually(
        "usedBy counts servers of other namespaces",
        READY_WITHIN,
        || {
            let templates = templates.clone();
            async move { used_by(&templates, "shared").await == 2 }
        },
    )
    .await;

    // Back to its own namespace only: the grant is withdrawn.
    templates
        .patch(
            "shared",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"sharing": {"scope": "Namespace", "namespaceSelector": null}}}),
            ),
        )
        .await
        .unwrap();
    eventually("grant withdrawn", READY_WITHIN, || {
        let bindings = bindings.clone();
        async move { bindings.get_opt(grant).await.unwrap().is_none() }
    })
    .await;
}

/// ACCEPTANCE 4 for templates: a template deleted while servers use it.
#[tokio::test]
async fn deleting_a_template_leaves_its_servers_alone_and_blocks_new_ones() {
    let (client, ns, templates, servers) = setup("st-delete").await;
    create(
        &client,
        &image_template("win", "/images/st-delete.qcow2", None),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(&templates, "win", "True", Some("Ready"), READY_WITHIN).await;
    for name in ["one", "two"] {
        create(&client, &from_template(name, "win", None, None), &ns, false)
            .await
            .unwrap();
    }
    for name in ["one", "two"] {
        wait_ready(&servers, name, "True", Some("Running"), READY_WITHIN).await;
    }
    eventually("usedBy 2", READY_WITHIN, || {
        let templates = templates.clone();
        async move { used_by(&templates, "win").await == 2 }
    })
    .await;
    servers
        .delete("two", &DeleteParams::default())
        .await
        .unwrap();
    eventually("usedBy 1 after a server goes", READY_WITHIN, || {
        let templates = templates.clone();
        async move { used_by(&templates, "win").await == 1 }
    })
    .await;

    templates
        .delete("win", &DeleteParams::default())
        .await
        .unwrap();
    let sources = Api::<DataSource>::namespaced(client.clone(), &ns);
    eventually(
        "the template and its DataSource are gone",
        READY_WITHIN,
        || {
            let (templates, sources) = (templates.clone(), sources.clone());
            async move {
                templates.get_opt("win").await.unwrap().is_none()
                    && sources.get_opt("win").await.unwrap().is_none()
            }
        },
    )
    .await;
    // Nudge the deployed server to reconcile; it stays Ready on its own disks.
    servers
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"nudge": "1"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_ready(
        &servers,
        "one",
        "True",
        Some("Running"),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        Api::<DataVolume>::namespaced(client.clone(), &ns)
            .get_opt("one-system")
            .await
            .unwrap()
            .is_some()
    );
    create(
        &client,
        &from_template("late", "win", None, None),
        &ns,
        false,
    )
    .await
    .unwrap();
    wait_ready(
        &servers,
        "late",
        "False",
        Some("TemplateNotFound"),
        READY_WITHIN,
    )
    .await;

    // And the namespace finishes deleting, disks and all (ACCEPTANCE 4).
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the namespace deleted", Duration::from_secs(120), || {
        let (namespaces, ns) = (namespaces.clone(), ns.clone());
        async move { namespaces.get_opt(&ns).await.unwrap().is_none() }
    })
    .await;
}
