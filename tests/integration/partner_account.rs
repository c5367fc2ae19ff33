//! PartnerAccount end to end: client tenancy, pooled quota decided under
//! concurrency, suspension, branding, both deletion policies, and tenant
//! isolation proven with certificate users against the real RBAC
//! authorizer.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Client, ResourceExt};
use partnercloud::api::{PartnerAccount, VirtualServer};
use partnercloud::kubevirt::{DataVolume, VirtualMachine};
use serde_json::{Value, json};

use crate::common::{admin, cluster, create, eventually, operator, wait_ready};

const WITHIN: Duration = Duration::from_secs(60);

fn partner(name: &str, spec: Value) -> Value {
    let mut base = json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "PartnerAccount",
        "metadata": {"name": name},
        "spec": {"displayName": name, "program": "Consolidated"}
    });
    for (k, v) in spec.as_object().expect("spec object") {
        base["spec"][k] = v.clone();
    }
    base
}

/// A small blank server: `cores` cores, 1Gi of memory, one 1Gi disk.
fn server(name: &str, cores: u32) -> Value {
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": {"name": name},
        "spec": {"cores": cores, "memory": "1Gi", "disks": [{"name": "system", "size": "1Gi"}], "source": {"blank": {}}}
    })
}

async fn setup() -> (Client, Api<PartnerAccount>) {
    operator();
    let client = admin().await;
    let partners = Api::<PartnerAccount>::all(client.clone());
    (client, partners)
}

async fn create_partner(client: &Client, partners: &Api<PartnerAccount>, object: Value) -> String {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    create(client, &object, "", false)
        .await
        .unwrap_or_else(|e| panic!("create partner {name}: {e}"));
    wait_ready(partners, &name, "True", Some("Reconciled"), WITHIN).await;
    name
}

async fn patch_partner(partners: &Api<PartnerAccount>, name: &str, patch: Value) {
    partners
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patch partner {name}: {e}"));
}

fn labels_of(ns: &Namespace) -> BTreeMap<String, String> {
    ns.metadata.labels.clone().unwrap_or_default()
}

async fn reason_of(api: &Api<VirtualServer>, name: &str) -> Option<(String, String, String)> {
    let vs = api.get_opt(name).await.ok()??;
    let ready = vs
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")?;
    Some((ready.status, ready.reason, ready.message))
}

#[tokio::test]
async fn client_namespaces_get_quota_binding_and_isolation_and_removed_clients_are_kept() {
    let (client, partners) = setup().await;
    let namespaces = Api::<Namespace>::all(client.clone());
    // A migrated client's existing namespace, unlabelled: adopted.
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "legacy-shop-t1"}})).unwrap(),
        )
        .await
        .unwrap();
    let name = create_partner(
        &client,
        &partners,
        partner(
            "t-tenancy",
            json!({
                "admins": [{"kind": "User", "name": "anna@tenancy.example"}],
                "quota": {"servers": 10, "storage": "1Ti"},
                "clients": [
                    {"name": "bakery", "quota": {"servers": 2, "storage": "100Gi"}},
                    {"name": "shop", "namespace": "legacy-shop-t1"}
                ]
            }),
        ),
    )
    .await;
    let pa = partners.get(&name).await.unwrap();
    assert!(
        pa.finalizers()
            .contains(&"partnercloud.io/partner-account".to_string())
    );
    let status = pa.status.unwrap();
    assert_eq!(status.client_count, 2);
    assert_eq!(status.clients[0].namespace, "t-tenancy-bakery");
    assert_eq!(status.clients[1].namespace, "legacy-shop-t1");

    for (ns, client_name) in [("t-tenancy-bakery", "bakery"), ("legacy-shop-t1", "shop")] {
        let labels = labels_of(&namespaces.get(ns).await.unwrap());
        assert_eq!(labels["partnercloud.io/partner"], "t-tenancy");
        assert_eq!(labels["partnercloud.io/client"], client_name);
        let binding = Api::<RoleBinding>::namespaced(client.clone(), ns)
            .get("partnercloud-client-admin")
            .await
            .unwrap();
        assert_eq!(binding.role_ref.name, "partnercloud-client-admin");
        assert_eq!(binding.subjects.unwrap()[0].name, "anna@tenancy.example");
        let policy = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
            .get("partnercloud-client-isolation")
            .await
            .unwrap();
        let spec = policy.spec.unwrap();
        assert_eq!(
            spec.policy_types.unwrap(),
            ["Ingress".to_string(), "Egress".to_string()]
        );
        let quota = Api::<ResourceQuota>::namespaced(client.clone(), ns)
            .get("partnercloud-client")
            .await
            .unwrap();
        let hard = quota.spec.unwrap().hard.unwrap();
        assert!(
            hard.contains_key("count/virtualmachines.kubevirt.io"),
            "{hard:?}"
        );
    }
    let bakery_quota = Api::<ResourceQuota>::namespaced(client.clone(), "t-tenancy-bakery")
        .get("partnercloud-client")
        .await
        .unwrap();
    assert_eq!(
        bakery_quota.spec.unwrap().hard.unwrap()["count/virtualmachines.kubevirt.io"].0,
        "2"
    );

    // Removing a client under Retain keeps its namespace, labelled orphaned,
    // without the partner's binding and quota, still isolated.
    patch_partner(
        &partners,
        &name,
        json!({"spec": {"clients": [{"name": "bakery", "quota": {"servers": 2, "storage": "100Gi"}}]}}),
    )
    .await;
    eventually("shop's namespace orphaned", WITHIN, || {
        let (namespaces, client) = (namespaces.clone(), client.clone());
        async move {
            let ns = namespaces.get("legacy-shop-t1").await.unwrap();
            let bound = Api::<RoleBinding>::namespaced(client.clone(), "legacy-shop-t1")
                .get_opt("partnercloud-client-admin")
                .await
                .unwrap()
                .is_some();
            let quota = Api::<ResourceQuota>::namespaced(client, "legacy-shop-t1")
                .get_opt("partnercloud-client")
                .await
                .unwrap()
                .is_some();
            labels_of(&ns)
                .get("partnercloud.io/orphaned")
                .map(String::as_str)
                == Some("true")
                && !bound
                && !quota
        }
    })
    .await;
    assert!(
        Api::<NetworkPolicy>::namespaced(client.clone(), "legacy-shop-t1")
            .get_opt("partnercloud-client-isolation")
            .await
            .unwrap()
            .is_some(),
        "a kept namespace stays isolated"
    );
    eventually("status shows one client", WITHIN, || {
        let partners = partners.clone();
        async move {
            partners
                .get("t-tenancy")
                .await
                .unwrap()
                .status
                .unwrap()
                .client_count
                == 1
        }
    })
    .await;

    // Re-adding it takes it back: the orphaned label goes, the binding returns.
    patch_partner(
        &partners,
        &name,
        json!({"spec": {"clients": [
            {"name": "bakery", "quota": {"servers": 2, "storage": "100Gi"}},
            {"name": "shop", "namespace": "legacy-shop-t1"}
        ]}}),
    )
    .await;
    eventually("shop re-adopted", WITHIN, || {
        let (namespaces, client) = (namespaces.clone(), client.clone());
        async move {
            let ns = namespaces.get("legacy-shop-t1").await.unwrap();
            !labels_of(&ns).contains_key("partnercloud.io/orphaned")
                && Api::<RoleBinding>::namespaced(client, "legacy-shop-t1")
                    .get_opt("partnercloud-client-admin")
                    .await
                    .unwrap()
                    .is_some()
        }
    })
    .await;
}

#[tokio::test]
async fn a_namespace_of_another_partner_is_never_taken_over() {
    let (client, partners) = setup().await;
    let namespaces = Api::<Namespace>::all(client.clone());
    let foreign = json!({"metadata": {"name": "taken-t2", "labels": {
        "partnercloud.io/partner": "someone-else", "partnercloud.io/client": "theirs"
    }}});
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(foreign).unwrap(),
        )
        .await
        .unwrap();
    create(
        &client,
        &partner(
            "t-claim",
            json!({
                "admins": [{"kind": "User", "name": "intruder@claim.example"}],
                "clients": [{"name": "mine"}, {"name": "grab", "namespace": "taken-t2"}]
            }),
        ),
        "",
        false,
    )
    .await
    .unwrap();
    let pa = wait_ready(
        &partners,
        "t-claim",
        "False",
        Some("NamespaceTaken"),
        WITHIN,
    )
    .await;
    let ready = pa
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready
            .message
            .contains("namespace taken-t2 belongs to partner someone-else, client theirs"),
        "{}",
        ready.message
    );
    // The other client is set up; the foreign namespace is untouched.
    assert!(namespaces.get_opt("t-claim-mine").await.unwrap().is_some());
    let taken = namespaces.get("taken-t2").await.unwrap();
    assert_eq!(labels_of(&taken)["partnercloud.io/partner"], "someone-else");
    assert!(
        Api::<RoleBinding>::namespaced(client.clone(), "taken-t2")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Twelve servers created at the same instant across three clients of one
/// partner whose pool fits five: exactly five are admitted, the rest are
/// refused with requested, used and limit, and nothing is counted twice
/// however often they are reconciled again.
#[tokio::test]
async fn pool_decisions_are_atomic_across_client_namespaces() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-pool",
            json!({
                "quota": {"servers": 5, "cores": 100},
                "clients": [{"name": "a"}, {"name": "b"}, {"name": "c"}]
            }),
        ),
    )
    .await;
    let namespaces = ["t-pool-a", "t-pool-b", "t-pool-c"];
    let creations = (0..12).map(|i| {
        let client = client.clone();
        async move {
            let ns = namespaces[i % 3];
            create(&client, &server(&format!("s{i:02}"), 1), ns, false)
                .await
                .unwrap_or_else(|e| panic!("create s{i:02}: {e}"));
        }
    });
    futures::future::join_all(creations).await;

    let count = || {
        let client = client.clone();
        async move {
            let mut admitted = 0;
            let mut refused = Vec::new();
            for ns in namespaces {
                let api = Api::<VirtualServer>::namespaced(client.clone(), ns);
                for vs in api.list(&ListParams::default()).await.unwrap() {
                    let status = vs.status.clone().unwrap_or_default();
                    if status.admitted.is_some() {
                        admitted += 1;
                    }
                    if let Some(r) = status.conditions.iter().find(|c| c.type_ == "Ready")
                        && r.reason == "QuotaExceeded"
                    {
                        refused.push(r.message.clone());
                    }
                }
            }
            (admitted, refused)
        }
    };
    eventually("5 admitted and 7 refused", WITHIN, || {
        let count = count();
        async move {
            let (admitted, refused) = count.await;
            admitted == 5 && refused.len() == 7
        }
    })
    .await;
    let (_, refused) = count().await;
    for message in &refused {
        assert_eq!(
            message, "not built: servers requested 1, used 5, limit 5 (partner pool)",
            "requested, used and limit"
        );
    }

    // Several rounds of re-reconciles (requeues every 500ms here) later, the
    // books still say five, and only five servers were ever built.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (admitted, refused) = count().await;
    assert_eq!((admitted, refused.len()), (5, 7));
    let mut vms = 0;
    for ns in namespaces {
        vms += Api::<VirtualMachine>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
    }
    assert_eq!(vms, 5, "refused servers are not built");
    eventually("partner totals count five servers once", WITHIN, || {
        let partners = partners.clone();
        async move {
            let status = partners.get("t-pool").await.unwrap().status.unwrap();
            let totals = status.totals.unwrap();
            let per_client: u32 = status.clients.iter().map(|c| c.usage.servers).sum();
            let pressure = status
                .conditions
                .iter()
                .any(|c| c.type_ == "QuotaPressure" && c.status == "True");
            totals.servers == 5 && totals.cores == 5 && per_client == 5 && pressure
        }
    })
    .await;
}

/// ACCEPTANCE 7: a client namespace whose quota cannot fit a new server.
#[tokio::test]
async fn a_detached_disk_still_counts_against_the_storage_quota() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-detach",
            json!({"clients": [{"name": "shop", "quota": {"storage": "30Gi"}}]}),
        ),
    )
    .await;
    let ns = "t-detach-shop";
    let api = Api::<VirtualServer>::namespaced(client.clone(), ns);
    let mut files = server("files", 1);
    files["spec"]["disks"] =
        json!([{"name": "system", "size": "10Gi"}, {"name": "data", "size": "15Gi"}]);
    create(&client, &files, ns, false).await.unwrap();
    wait_ready(&api, "files", "True", Some("Running"), WITHIN).await;

    // The data disk is taken out of the spec: detached, kept, still 15Gi.
    api.patch(
        "files",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"disks": [{"name": "system", "size": "10Gi"}]}})),
    )
    .await
    .unwrap();
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), ns);
    eventually("the data disk is detached", WITHIN, || {
        let vms = vms.clone();
        async move {
            vms.get("files")
                .await
                .unwrap()
                .spec
                .template
                .spec
                .volumes
                .len()
                == 1
        }
    })
    .await;
    let detached = api.get("files").await.unwrap().status.unwrap().admitted;
    assert_eq!(
        detached.map(|a| a.storage).as_deref(),
        Some("25Gi"),
        "the detached disk still holds its 15Gi"
    );

    // A new 15Gi disk would make 40Gi held in all: refused.
    api.patch(
        "files",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"disks": [{"name": "system", "size": "10Gi"}, {"name": "more", "size": "15Gi"}]}})),
    )
    .await
    .unwrap();
    wait_ready(&api, "files", "False", Some("QuotaExceeded"), WITHIN).await;
    let (_, _, message) = reason_of(&api, "files").await.unwrap();
    assert!(message.contains("storage"), "{message}");
    assert!(
        Api::<DataVolume>::namespaced(client.clone(), ns)
            .get_opt("files-more")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_server_the_client_quota_cannot_fit_is_refused_within_seconds() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-quota",
            json!({"clients": [{"name": "bakery", "quota": {"cores": 2}}]}),
        ),
    )
    .await;
    let ns = "t-quota-bakery";
    let api = Api::<VirtualServer>::namespaced(client.clone(), ns);
    create(&client, &server("first", 2), ns, false)
        .await
        .unwrap();
    wait_ready(&api, "first", "True", Some("Running"), WITHIN).await;

    create(&client, &server("second", 1), ns, false)
        .await
        .unwrap();
    let refused = wait_ready(
        &api,
        "second",
        "False",
        Some("QuotaExceeded"),
        Duration::from_secs(5),
    )
    .await;
    let (_, _, message) = reason_of(&api, "second").await.unwrap();
    assert_eq!(
        message,
        "not built: cores requested 1, used 2, limit 2 (client quota)"
    );
    assert!(refused.status.unwrap().admitted.is_none());
    let dvs = Api::<DataVolume>::namespaced(client.clone(), ns);
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), ns);
    assert!(vms.get_opt("second").await.unwrap().is_none());
    assert!(dvs.get_opt("second-system").await.unwrap().is_none());

    // A resize is decided on its growth: 2 → 3 does not fit, and the server
    // keeps what it holds (and keeps running as it was).
    api.patch(
        "first",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cores": 3}})),
    )
    .await
    .unwrap();
    wait_ready(
        &api,
        "first",
        "False",
        Some("QuotaExceeded"),
        Duration::from_secs(5),
    )
    .await;
    let (_, _, message) = reason_of(&api, "first").await.unwrap();
    assert_eq!(
        message,
        "not built: cores requested 1 more (resize from 2 to 3), used 2, limit 2 (client quota)"
    );
    let vm = vms.get("first").await.unwrap();
    assert_eq!(vm.spec.template.spec.domain.cpu.unwrap().cores, Some(2));
    assert_eq!(
        api.get("first")
            .await
            .unwrap()
            .status
            .unwrap()
            .admitted
            .unwrap()
            .cores,
        2
    );

    // Freeing the quota admits the waiting server.
    api.delete("first", &DeleteParams::default()).await.unwrap();
    wait_ready(&api, "second", "True", Some("Running"), WITHIN).await;
}

#[tokio::test]
async fn suspension_halts_servers_refuses_new_ones_and_resume_restores_them() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner("t-suspend", json!({"clients": [{"name": "c"}]})),
    )
    .await;
    let ns = "t-suspend-c";
    let api = Api::<VirtualServer>::namespaced(client.clone(), ns);
    let vms = Api::<VirtualMachine>::namespaced(client.clone(), ns);
    let mut off = server("off", 1);
    off["spec"]["powerState"] = json!("Stopped");
    create(&client, &server("on", 1), ns, false).await.unwrap();
    create(&client, &off, ns, false).await.unwrap();
    wait_ready(&api, "on", "True", Some("Running"), WITHIN).await;
    wait_ready(&api, "off", "True", Some("Stopped"), WITHIN).await;

    let run_strategy = |name: &'static str| {
        let vms = vms.clone();
        async move { vms.get(name).await.unwrap().spec.run_strategy.unwrap() }
    };
    for (patch, by) in [
        (
            json!({"spec": {"clients": [{"name": "c", "suspended": true}]}}),
            "client",
        ),
        (json!({"spec": {"suspended": true}}), "partner"),
    ] {
        patch_partner(&partners, "t-suspend", patch).await;
        let on = wait_ready(&api, "on", "False", Some("Suspended"), WITHIN).await;
        assert_eq!(run_strategy("on").await, "Halted");
        assert_eq!(run_strategy("off").await, "Halted");
        let ready = on
            .status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert!(
            ready.message.contains(&format!("the {by} is suspended")),
            "{}",
            ready.message
        );
        // Nothing is deleted; the spec is not touched.
        assert_eq!(
            api.get("on").await.unwrap().spec.power_state,
            Default::default()
        );
        assert!(
            Api::<DataVolume>::namespaced(client.clone(), ns)
                .get_opt("on-system")
                .await
                .unwrap()
                .is_some()
        );
        // A new server is refused and not built.
        let newcomer = format!("new-{by}");
        create(&client, &server(&newcomer, 1), ns, false)
            .await
            .unwrap();
        wait_ready(&api, &newcomer, "False", Some("Suspended"), WITHIN).await;
        assert!(vms.get_opt(&newcomer).await.unwrap().is_none());

        // Resume: each server gets its own power state back.
        patch_partner(
            &partners,
            "t-suspend",
            json!({"spec": {"suspended": false, "clients": [{"name": "c"}]}}),
        )
        .await;
        wait_ready(&api, "on", "True", Some("Running"), WITHIN).await;
        wait_ready(&api, "off", "True", Some("Stopped"), WITHIN).await;
        wait_ready(&api, &newcomer, "True", Some("Running"), WITHIN).await;
        assert_eq!(run_strategy("on").await, "Always");
        assert_eq!(run_strategy("off").await, "Halted");
    }
}

#[tokio::test]
async fn white_label_branding_is_published_for_the_control_panel() {
    let (client, partners) = setup().await;
    let branding = json!({
        "brandName": "BrandCloud",
        "domain": "cloud.brand.example",
        "colors": {"primary": "#0A4DA2"},
        "support": {"email": "help@brand.example"}
    });
    // Invalid domains and colours never get in.
    for (field, bad) in [
        ("domain", json!({"domain": "Not A Domain"})),
        ("colors", json!({"colors": {"primary": "blue"}})),
    ] {
        let mut object = partner(
            "t-brand-bad",
            json!({"program": "WhiteLabel", "branding": branding.clone()}),
        );
        for (k, v) in bad.as_object().unwrap() {
            object["spec"]["branding"][k] = v.clone();
        }
        let err = create(&client, &object, "", true).await.expect_err(field);
        assert!(err.to_string().contains("spec.branding"), "{field}: {err}");
    }

    create_partner(
        &client,
        &partners,
        partner(
            "t-brand",
            json!({"program": "WhiteLabel", "branding": branding, "clients": [{"name": "c"}]}),
        ),
    )
    .await;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), "partner-t-brand");
    let map = maps.get("partnercloud-branding").await.unwrap();
    let data = map.data.unwrap();
    assert_eq!(data["brandName"], "BrandCloud");
    assert_eq!(data["domain"], "cloud.brand.example");
    assert_eq!(data["primaryColor"], "#0A4DA2");
    assert_eq!(data["supportEmail"], "help@brand.example");
    let ns = Api::<Namespace>::all(client.clone())
        .get("partner-t-brand")
        .await
        .unwrap();
    assert!(!labels_of(&ns).contains_key("partnercloud.io/client"));

    patch_partner(
        &partners,
        "t-brand",
        json!({"spec": {"branding": {"colors": {"primary": "#112233", "accent": "#445566"}}}}),
    )
    .await;
    eventually("branding updated", WITHIN, || {
        let maps = maps.clone();
        async move {
            let data = maps
                .get("partnercloud-branding")
                .await
                .unwrap()
                .data
                .unwrap();
            data["primaryColor"] == "#112233"
                && data.get("accentColor").map(String::as_str) == Some("#445566")
        }
    })
    .await;

    // Leaving white label removes the branding.
    patch_partner(
        &partners,
        "t-brand",
        json!({"spec": {"program": "Referral", "branding": null}}),
    )
    .await;
    eventually("branding removed", WITHIN, || {
        let maps = maps.clone();
        async move {
            maps.get_opt("partnercloud-branding")
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
}

#[tokio::test]
async fn deleting_a_partner_under_retain_keeps_client_namespaces_and_servers() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-retain",
            json!({"admins": [{"kind": "User", "name": "r@retain.example"}], "clients": [{"name": "c"}]}),
        ),
    )
    .await;
    let ns = "t-retain-c";
    let api = Api::<VirtualServer>::namespaced(client.clone(), ns);
    create(&client, &server("app", 1), ns, false).await.unwrap();
    wait_ready(&api, "app", "True", Some("Running"), WITHIN).await;

    partners
        .delete("t-retain", &DeleteParams::default())
        .await
        .unwrap();
    eventually("partner gone", WITHIN, || {
        let partners = partners.clone();
        async move { partners.get_opt("t-retain").await.unwrap().is_none() }
    })
    .await;
    let namespace = Api::<Namespace>::all(client.clone()).get(ns).await.unwrap();
    assert!(namespace.metadata.deletion_timestamp.is_none());
    let labels = labels_of(&namespace);
    assert_eq!(labels["partnercloud.io/orphaned"], "true");
    assert_eq!(labels["partnercloud.io/partner"], "t-retain");
    eventually("the partner's binding and quota are gone", WITHIN, || {
        let client = client.clone();
        async move {
            Api::<RoleBinding>::namespaced(client.clone(), ns)
                .get_opt("partnercloud-client-admin")
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
    // The client's data is all there, and stays (GC has had its chance).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(api.get_opt("app").await.unwrap().is_some());
    assert!(
        Api::<VirtualMachine>::namespaced(client.clone(), ns)
            .get_opt("app")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        Api::<DataVolume>::namespaced(client.clone(), ns)
            .get_opt("app-system")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        Api::<NetworkPolicy>::namespaced(client.clone(), ns)
            .get_opt("partnercloud-client-isolation")
            .await
            .unwrap()
            .is_some()
    );
    // Servers in a kept namespace are nobody's to pay for: halted, never
    // deleted; a new one there is not built (no quota can admit it).
    wait_ready(&api, "app", "False", Some("Orphaned"), WITHIN).await;
    let machines = Api::<VirtualMachine>::namespaced(client.clone(), ns);
    eventually("the orphaned server is halted", WITHIN, || {
        let machines = machines.clone();
        async move {
            machines
                .get("app")
                .await
                .unwrap()
                .spec
                .run_strategy
                .as_deref()
                == Some("Halted")
        }
    })
    .await;
    eventually("the Running condition says why", WITHIN, || {
        let api = api.clone();
        async move {
            api.get("app").await.unwrap().status.is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Running"
                        && c.message.contains("no longer belongs to a partner account")
                })
            })
        }
    })
    .await;
    create(&client, &server("newcomer", 64), ns, false)
        .await
        .unwrap();
    wait_ready(&api, "newcomer", "False", Some("Orphaned"), WITHIN).await;
    assert!(machines.get_opt("newcomer").await.unwrap().is_none());
    assert!(
        Api::<DataVolume>::namespaced(client.clone(), ns)
            .get_opt("app-system")
            .await
            .unwrap()
            .is_some(),
        "nothing is deleted"
    );
}

#[tokio::test]
async fn deletion_policy_delete_removes_client_namespaces() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-delete",
            json!({"deletionPolicy": "Delete", "clients": [{"name": "a"}, {"name": "b"}]}),
        ),
    )
    .await;
    let api = Api::<VirtualServer>::namespaced(client.clone(), "t-delete-a");
    create(&client, &server("app", 1), "t-delete-a", false)
        .await
        .unwrap();
    wait_ready(&api, "app", "True", Some("Running"), WITHIN).await;
    let namespaces = Api::<Namespace>::all(client.clone());
    let gone_or_going = |name: &'static str| {
        let namespaces = namespaces.clone();
        async move {
            namespaces
                .get_opt(name)
                .await
                .unwrap()
                .is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())
        }
    };

    // A removed client's namespace goes with it.
    patch_partner(
        &partners,
        "t-delete",
        json!({"spec": {"clients": [{"name": "a"}]}}),
    )
    .await;
    eventually("b's namespace deleted", WITHIN, || {
        gone_or_going("t-delete-b")
    })
    .await;

    // The account takes the rest.
    partners
        .delete("t-delete", &DeleteParams::default())
        .await
        .unwrap();
    eventually("a's namespace deleted", WITHIN, || {
        gone_or_going("t-delete-a")
    })
    .await;
    eventually("partner gone", WITHIN, || {
        let partners = partners.clone();
        async move { partners.get_opt("t-delete").await.unwrap().is_none() }
    })
    .await;
    eventually("namespace and server gone", Duration::from_secs(90), || {
        let namespaces = namespaces.clone();
        async move { namespaces.get_opt("t-delete-a").await.unwrap().is_none() }
    })
    .await;
}

#[tokio::test]
async fn deleting_an_account_whose_client_namespace_was_deleted_by_hand_completes() {
    let (client, partners) = setup().await;
    let namespaces = Api::<Namespace>::all(client.clone());
    for (name, policy) in [("t-gone-keep", "Retain"), ("t-gone-drop", "Delete")] {
        create_partner(
            &client,
            &partners,
            partner(
                name,
                json!({"deletionPolicy": policy, "clients": [{"name": "a"}, {"name": "b"}]}),
            ),
        )
        .await;
        // Someone deletes a client namespace by hand, and the account right
        // after: the cleanup finds it terminating or gone.
        let by_hand = format!("{name}-a");
        namespaces
            .delete(&by_hand, &DeleteParams::default())
            .await
            .unwrap();
        partners
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        eventually(&format!("{name} is gone"), WITHIN, || {
            let partners = partners.clone();
            async move { partners.get_opt(name).await.unwrap().is_none() }
        })
        .await;
        // The other client's namespace follows the policy.
        let other = namespaces.get_opt(&format!("{name}-b")).await.unwrap();
        match policy {
            "Retain" => {
                let labels = labels_of(&other.expect("kept"));
                assert_eq!(labels["partnercloud.io/orphaned"], "true");
            }
            _ => assert!(other.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())),
        }
    }
}

// ---------------------------------------------------------------------------
// Isolation: the RBAC matrix with certificate users.

const A_ADMIN: &str = "anna@rbac-a.example";
const B_GROUP: &str = "rbac-b-admins";
const VIEWER: &str = "vera@rbac-a1.example";
const A1: &str = "t-rbac-a-one";
const A2: &str = "t-rbac-a-two";
const B1: &str = "t-rbac-b-one";

/// Kinds a partner works with in a client namespace, and what its admins
/// may do with each there.
const KINDS: [(&str, &str, Allowed); 9] = [
    ("partnercloud.io", "virtualservers", Allowed::All),
    ("partnercloud.io", "servertemplates", Allowed::All),
    ("partnercloud.io", "backuppolicies", Allowed::All),
    ("kubevirt.io", "virtualmachines", Allowed::Read),
    ("kubevirt.io", "virtualmachineinstances", Allowed::Read),
    ("cdi.kubevirt.io", "datavolumes", Allowed::Read),
    // Published by the operator for ServerTemplates; admins deploy through
    // the template, never the DataSource.
    ("cdi.kubevirt.io", "datasources", Allowed::Nothing),
    (
        "snapshot.kubevirt.io",
        "virtualmachinesnapshots",
        Allowed::Read,
    ),
    ("", "secrets", Allowed::Secrets),
];

/// What the operator owns in a client namespace: never writable by a partner.
const OWNED: [(&str, &str); 4] = [
    ("", "resourcequotas"),
    ("networking.k8s.io", "networkpolicies"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "roles"),
];

const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Allowed {
    All,
    Read,
    /// First-boot data: written and read one by one; not watched, not
    /// deleted wholesale.
    Secrets,
    Nothing,
}

impl Allowed {
    fn permits(self, verb: &str) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Read => ["get", "list", "watch"].contains(&verb),
            Allowed::Secrets => !["watch", "deletecollection"].contains(&verb),
            Allowed::Nothing => false,
        }
    }
}

async fn can(
    user: &Client,
    group: &str,
    resource: &str,
    verb: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource,
                verb: Some(verb.into()),
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(user.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("self subject access review")
        .status
        .expect("review status")
        .allowed
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(s)) if s.code == 403)
}

#[tokio::test]
async fn rbac_matrix_partners_manage_their_clients_and_nothing_else() {
    let (client, partners) = setup().await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-rbac-a",
            json!({"admins": [{"kind": "User", "name": A_ADMIN}], "clients": [
                {"name": "one"}, {"name": "two"}
            ]}),
        ),
    )
    .await;
    create_partner(
        &client,
        &partners,
        partner(
            "t-rbac-b",
            json!({"admins": [{"kind": "Group", "name": B_GROUP}], "clients": [{"name": "one"}]}),
        ),
    )
    .await;
    // A client's accountant, bound read-only (Kubernetes' `view`) by the
    // provider in one client namespace.
    let viewer_binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "client-viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": VIEWER}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), A1)
        .create(&PostParams::default(), &viewer_binding)
        .await
        .unwrap();

    let anna = cluster().user_client(A_ADMIN, &[]).await.unwrap();
    let boris = cluster()
        .user_client("boris@rbac-b.example", &[B_GROUP])
        .await
        .unwrap();
    let vera = cluster().user_client(VIEWER, &[]).await.unwrap();

    // The aggregated roles fill in shortly after install.
    eventually("client-admin and view aggregated", WITHIN, || {
        let (anna, vera) = (anna.clone(), vera.clone());
        async move {
            can(
                &anna,
                "partnercloud.io",
                "virtualservers",
                "create",
                Some(A1),
                None,
            )
            .await
                && can(
                    &vera,
                    "partnercloud.io",
                    "virtualservers",
                    "list",
                    Some(A1),
                    None,
                )
                .await
        }
    })
    .await;

    // The matrix, by access review: verbs × our kinds × KubeVirt kinds ×
    // Secrets, in each partner's own and the other partner's namespaces.
    let mut failures = Vec::new();
    for (who, user, own, others) in [
        ("partner A admin", &anna, vec![A1, A2], vec![B1]),
        ("partner B admin", &boris, vec![B1], vec![A1, A2]),
    ] {
        for (group, resource, allowed) in KINDS {
            for verb in VERBS {
                for ns in &own {
                    if can(user, group, resource, verb, Some(ns), None).await
                        != allowed.permits(verb)
                    {
                        failures.push(format!("{who}: {verb} {group}/{resource} in {ns}"));
                    }
                }
                for ns in &others {
                    if can(user, group, resource, verb, Some(ns), None).await {
                        failures.push(format!(
                            "{who}: {verb} {group}/{resource} in {ns} (other partner)"
                        ));
                    }
                }
                // Nothing across all namespaces.
                if can(user, group, resource, verb, None, None).await {
                    failures.push(format!("{who}: {verb} {group}/{resource} cluster-wide"));
                }
            }
        }
        for ns in own.iter().chain(&others) {
            for (group, resource) in OWNED {
                for verb in WRITES {
                    if can(user, group, resource, verb, Some(ns), None).await {
                        failures.push(format!("{who}: {verb} {group}/{resource} in {ns}"));
                    }
                }
            }
            for status in [
                "virtualservers/status",
                "servertemplates/status",
                "backuppolicies/status",
            ] {
                for verb in ["update", "patch"] {
                    if can(user, "partnercloud.io", status, verb, Some(ns), None).await {
                        failures.push(format!("{who}: {verb} {status} in {ns}"));
                    }
                }
            }
        }
        for verb in VERBS {
            if can(user, "partnercloud.io", "partneraccounts", verb, None, None).await {
                failures.push(format!("{who}: {verb} partneraccounts"));
            }
        }
        for (resource, verb) in [
            ("clusterroles", "bind"),
            ("clusterroles", "escalate"),
            ("roles", "bind"),
            ("roles", "escalate"),
            ("clusterrolebindings", "create"),
        ] {
            if can(
                user,
                "rbac.authorization.k8s.io",
                resource,
                verb,
                own.first().copied(),
                None,
            )
            .await
            {
                failures.push(format!("{who}: {verb} {resource}"));
            }
        }
        for verb in ["list", "create", "update", "delete"] {
            if can(user, "", "namespaces", verb, None, None).await {
                failures.push(format!("{who}: {verb} namespaces"));
            }
        }
    }
    // The client viewer: reads its own namespace's servers, nothing else.
    for verb in VERBS {
        let read = ["get", "list", "watch"].contains(&verb);
        if can(
            &vera,
            "partnercloud.io",
            "virtualservers",
            verb,
            Some(A1),
            None,
        )
        .await
            != read
        {
            failures.push(format!("viewer: {verb} virtualservers in {A1}"));
        }
        for ns in [A2, B1] {
            if can(
                &vera,
                "partnercloud.io",
                "virtualservers",
                verb,
                Some(ns),
                None,
            )
            .await
            {
                failures.push(format!("viewer: {verb} virtualservers in {ns}"));
            }
        }
        if can(&vera, "", "secrets", verb, Some(A1), None).await {
            failures.push(format!("viewer: {verb} secrets in {A1}"));
        }
        // What the operator renders: never writable by the viewer, and not
        // even readable outside its own namespace.
        for (group, resource, _) in KINDS {
            if WRITES.contains(&verb) && can(&vera, group, resource, verb, Some(A1), None).await {
                failures.push(format!("viewer: {verb} {group}/{resource} in {A1}"));
            }
            for ns in [A2, B1] {
                if can(&vera, group, resource, verb, Some(ns), None).await {
                    failures.push(format!("viewer: {verb} {group}/{resource} in {ns}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "RBAC matrix violations:\n{}",
        failures.join("\n")
    );

    // Real requests, where they are cheap.
    let a_servers = Api::<VirtualServer>::namespaced(anna.clone(), A1);
    let mut mine = server("mine", 1);
    mine["metadata"]["namespace"] = json!(A1);
    let created = a_servers
        .create(
            &PostParams::default(),
            &serde_json::from_value(mine).unwrap(),
        )
        .await
        .expect("A creates a server for its client");
    assert_eq!(
        a_servers
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let mut updated = a_servers.get("mine").await.unwrap();
    updated.labels_mut().insert("tier".into(), "gold".into());
    a_servers
        .replace("mine", &PostParams::default(), &updated)
        .await
        .expect("A updates its server");
    assert!(
        forbidden(
            a_servers
                .patch_status(
                    "mine",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"admitted": {"cores": 128, "memory": "1Ti", "storage": "1Ti"}}})),
                )
                .await
        ),
        "A cannot forge its admission record"
    );
    let a_secrets = Api::<Secret>::namespaced(anna.clone(), A1);
    a_secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "firstboot"}, "stringData": {"userdata": "#cloud-config"}})).unwrap(),
        )
        .await
        .expect("A writes first-boot secrets");
    a_secrets.get("firstboot").await.unwrap();
    Api::<VirtualMachine>::namespaced(anna.clone(), A1)
        .list(&ListParams::default())
        .await
        .expect("A sees its clients' virtual machines");
    assert!(forbidden(
        Api::<VirtualMachine>::namespaced(anna.clone(), A1)
            .delete("mine", &DeleteParams::default())
            .await
    ));

    // Nothing of B's is visible or changeable.
    let b_servers = Api::<VirtualServer>::namespaced(anna.clone(), B1);
    assert!(forbidden(b_servers.list(&ListParams::default()).await));
    assert!(forbidden(b_servers.get("anything").await));
    assert!(forbidden(
        b_servers
            .watch(&WatchParams::default(), "0")
            .await
            .map(|_| ())
    ));
    let mut intrusion = server("intrusion", 1);
    intrusion["metadata"]["namespace"] = json!(B1);
    assert!(forbidden(
        b_servers
            .create(
                &PostParams::default(),
                &serde_json::from_value(intrusion).unwrap()
            )
            .await
    ));
    assert!(forbidden(
        Api::<Secret>::namespaced(anna.clone(), B1)
            .list(&ListParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<VirtualServer>::all(anna.clone())
            .list(&ListParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<VirtualServer>::namespaced(boris.clone(), A1)
            .get("mine")
            .await
    ));

    // Nothing the operator owns can be changed, and no escalation.
    assert!(forbidden(
        Api::<ResourceQuota>::namespaced(anna.clone(), A1)
            .delete("partnercloud-client", &DeleteParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<NetworkPolicy>::namespaced(anna.clone(), A1)
            .delete("partnercloud-client-isolation", &DeleteParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<RoleBinding>::namespaced(anna.clone(), A1)
            .delete("partnercloud-client-admin", &DeleteParams::default())
            .await
    ));
    let escalate: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "me-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": A_ADMIN}]
    }))
    .unwrap();
    assert!(forbidden(
        Api::<RoleBinding>::namespaced(anna.clone(), A1)
            .create(&PostParams::default(), &escalate)
            .await
    ));
    let a_partners = Api::<PartnerAccount>::all(anna.clone());
    assert!(forbidden(a_partners.get("t-rbac-a").await));
    assert!(forbidden(
        a_partners
            .patch(
                "t-rbac-a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"quota": {"cores": 100000}}})),
            )
            .await
    ));
    assert!(forbidden(
        a_partners
            .delete("t-rbac-b", &DeleteParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<ClusterRole>::all(anna.clone())
            .patch(
                "partnercloud-client-admin-core",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
            )
            .await
    ));

    // The viewer reads, and only reads.
    let v_servers = Api::<VirtualServer>::namespaced(vera.clone(), A1);
    assert_eq!(
        v_servers
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(forbidden(
        v_servers.delete("mine", &DeleteParams::default()).await
    ));
    assert!(forbidden(
        Api::<Secret>::namespaced(vera.clone(), A1)
            .get("firstboot")
            .await
    ));

    a_servers
        .delete(&created.name_any(), &DeleteParams::default())
        .await
        .expect("A deletes its server");
}

/// The operator's own ClusterRole (manifests/deploy): it can bind partner
/// admins to the client-admin role, and to no other role.
#[tokio::test]
async fn the_operator_role_can_bind_only_the_client_admin_role() {
    let client = admin().await;
    let role: ClusterRole = serde_saphyr::from_str(partnercloud::manifests::CLUSTER_ROLE).unwrap();
    let mut binding: ClusterRoleBinding =
        serde_saphyr::from_str(partnercloud::manifests::CLUSTER_ROLE_BINDING).unwrap();
    // The test control plane has no service account tokens to hand out; a
    // certificate user with the service account's name is the same subject
    // to the RBAC authorizer.
    binding.subjects = Some(vec![
        serde_json::from_value(json!({
            "apiGroup": "rbac.authorization.k8s.io", "kind": "User",
            "name": "system:serviceaccount:partnercloud-system:partnercloud"
        }))
        .unwrap(),
    ]);
    let params = PatchParams::apply("partnercloud-test").force();
    Api::<ClusterRole>::all(client.clone())
        .patch("partnercloud-operator", &params, &Patch::Apply(&role))
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch("partnercloud-operator", &params, &Patch::Apply(&binding))
        .await
        .unwrap();
    let ns = crate::common::namespace(&client, "operator-rbac").await;
    let operator = cluster()
        .user_client(
            "system:serviceaccount:partnercloud-system:partnercloud",
            &[],
        )
        .await
        .unwrap();
    let bindings = Api::<RoleBinding>::namespaced(operator.clone(), &ns);
    let to = |role: &str| -> RoleBinding {
        serde_json::from_value(json!({
            "metadata": {"name": format!("to-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone"}]
        }))
        .unwrap()
    };
    eventually("the operator's binding takes effect", WITHIN, || {
        let bindings = bindings.clone();
        let wanted = to("partnercloud-client-admin");
        async move {
            bindings
                .create(&PostParams::default(), &wanted)
                .await
                .is_ok()
        }
    })
    .await;
    for role in ["cluster-admin", "admin", "edit"] {
        assert!(
            forbidden(bindings.create(&PostParams::default(), &to(role)).await),
            "the operator must not bind {role}"
        );
    }
    assert!(forbidden(
        Api::<Secret>::namespaced(operator.clone(), &ns)
            .list(&ListParams::default())
            .await
    ));
}
