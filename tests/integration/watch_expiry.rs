//! ACCEPTANCE case 1: a watch answered with 410 Gone relists and goes on.
//!
//! The operator's traffic passes through a proxy (`expiry_proxy`) that cuts
//! every open VirtualServer watch with 410 Gone and keeps refusing watches
//! that resume from the old resourceVersion — what the API server does
//! after etcd compaction. A VirtualServer created afterwards must still be
//! reconciled, which only happens if the operator relisted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use partnercloud::api::VirtualServer;
use serde_json::json;

use crate::common::{admin, create, eventually, namespace, operator, wait_ready};

#[tokio::test]
async fn a_watch_that_expires_relists_and_a_later_server_is_reconciled() {
    let proxy = &operator().proxy;
    let client = admin().await;
    let ns = namespace(&client, "watch-expiry").await;

    // The resourceVersion every open watch has seen by now at most; then a
    // write, so that a relist returns a newer one than the expired range.
    let seen = Api::<VirtualServer>::all(client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await
        .expect("list servers")
        .metadata
        .resource_version
        .and_then(|rv| rv.parse::<u64>().ok())
        .expect("a numeric resourceVersion");
    let marker: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "after-expiry"}})).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &marker)
        .await
        .expect("a write after the expired range");
    proxy.expire_through(seen);

    eventually(
        "the operator's VirtualServer watches were cut with 410 Gone and it relisted",
        Duration::from_secs(30),
        || async {
            proxy.counters().expired.load(Ordering::SeqCst) > 0
                && proxy.counters().relists.load(Ordering::SeqCst) > 0
        },
    )
    .await;

    create(
        &client,
        &json!({
            "apiVersion": "partnercloud.io/v1alpha1",
            "kind": "VirtualServer",
            "metadata": {"name": "after-expiry"},
            "spec": {"cores": 1, "memory": "1Gi", "disks": [{"name": "system", "size": "5Gi"}], "source": {"blank": {}}}
        }),
        &ns,
        false,
    )
    .await
    .expect("create a server after the expiry");
    let api = Api::<VirtualServer>::namespaced(client, &ns);
    wait_ready(
        &api,
        "after-expiry",
        "True",
        Some("Running"),
        Duration::from_secs(60),
    )
    .await;
}
