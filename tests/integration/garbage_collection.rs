//! The controller manager really runs: owner references are collected and
//! namespaces finish deleting, including our custom resources inside them.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use partnercloud::api::VirtualServer;
use serde_json::json;

use crate::common::{admin, create, eventually, fixture, merged, namespace};

#[tokio::test]
async fn dependents_are_collected_when_their_owner_goes() {
    let client = admin().await;
    let ns = namespace(&client, "gc").await;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = maps
        .create(&PostParams::default(), &owner)
        .await
        .expect("create owner");
    let uid = owner.metadata.uid.clone().expect("uid");

    // A custom resource owned by the ConfigMap: GC must know our kinds too.
    let server = merged(
        &fixture("virtualserver.yaml"),
        &json!({"metadata": {"name": "owned-server", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
        ]}}),
    );
    create(&client, &server, &ns, false)
        .await
        .expect("create owned server");
    let dependent: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "dependent", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
        ]}}),
    )
    .unwrap();
    maps.create(&PostParams::default(), &dependent)
        .await
        .expect("create dependent");

    maps.delete(
        "owner",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        },
    )
    .await
    .expect("delete owner");
    let servers = Api::<VirtualServer>::namespaced(client.clone(), &ns);
    eventually("dependents collected", Duration::from_secs(60), || {
        let maps = maps.clone();
        let servers = servers.clone();
        async move {
            maps.get_opt("dependent").await.unwrap().is_none()
                && servers.get_opt("owned-server").await.unwrap().is_none()
        }
    })
    .await;
}

#[tokio::test]
async fn namespace_deletion_completes() {
    let client = admin().await;
    let ns = namespace(&client, "nsdelete").await;
    create(&client, &fixture("virtualserver.yaml"), &ns, false)
        .await
        .expect("create server");
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
    eventually("namespace gone", Duration::from_secs(90), || {
        let namespaces = namespaces.clone();
        let ns = ns.clone();
        async move { namespaces.get_opt(&ns).await.unwrap().is_none() }
    })
    .await;
}
