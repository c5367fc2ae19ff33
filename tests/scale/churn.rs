//! ACCEPTANCE 2 and the cost of a server: converged servers cause no
//! writes over several resync periods, and one server's creation costs a
//! small, known number of API writes (children + status).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use partnercloud::api::VirtualServer;
use partnercloud::controllers::writes;
use serde_json::json;

use crate::common::{admin, create, eventually, namespace, operator, wait_ready};

fn small_server(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": {"name": name},
        "spec": {"cores": 1, "memory": "1Gi", "disks": [{"name": "system", "size": "5Gi"}], "source": {"blank": {}}}
    })
}

const IDLE_SERVERS: usize = 200;
/// The test harness resyncs every 2 s; wait through several periods.
const IDLE_FOR: Duration = Duration::from_secs(8);

#[tokio::test]
async fn two_hundred_idle_servers_cause_no_writes() {
    operator();
    let client = admin().await;
    let ns = namespace(&client, "churn").await;
    let started = Instant::now();
    for batch in (0..IDLE_SERVERS).collect::<Vec<_>>().chunks(20) {
        join_all(batch.iter().map(|i| {
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                create(&client, &small_server(&format!("idle-{i}")), &ns, false)
                    .await
                    .expect("create server")
            }
        }))
        .await;
    }
    let api = Api::<VirtualServer>::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for s in &list.items {
            let st = s.status.clone().unwrap_or_default();
            let ready = st
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| format!("{}/{}", c.status, c.reason))
                .unwrap_or_else(|| "none".into());
            let key = if st.addresses.is_empty() {
                format!("{ready} (no address)")
            } else {
                ready
            };
            *by_reason.entry(key).or_default() += 1;
        }
        if list.items.len() == IDLE_SERVERS
            && by_reason.len() == 1
            && by_reason.contains_key("True/Running")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not converged after 600s: {by_reason:?}"
        );
        println!("[{:>5.1}s] {by_reason:?}", started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    println!(
        "{IDLE_SERVERS} servers converged in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // Let in-flight reconciles settle before taking the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let snapshot = |list: Vec<VirtualServer>| -> BTreeMap<String, (String, u64)> {
        list.into_iter()
            .map(|s| {
                let name = s.name_any();
                let count = writes::count(&writes::key("VirtualServer", &ns, &name));
                (name, (s.resource_version().unwrap_or_default(), count))
            })
            .collect()
    };
    let before = snapshot(api.list(&ListParams::default()).await.unwrap().items);
    tokio::time::sleep(IDLE_FOR).await;
    let after = snapshot(api.list(&ListParams::default()).await.unwrap().items);
    let churned: Vec<_> = before
        .iter()
        .filter(|(name, v)| after.get(*name) != Some(v))
        .map(|(n, _)| n.clone())
        .collect();
    assert!(
        churned.is_empty(),
        "{} converged servers were written to while idle: {:?}",
        churned.len(),
        &churned[..churned.len().min(10)]
    );
}

#[tokio::test]
async fn one_server_costs_a_bounded_number_of_writes() {
    operator();
    let client = admin().await;
    let ns = namespace(&client, "cost").await;
    let mut server = small_server("measured");
    server["spec"]["disks"] =
        json!([{"name": "system", "size": "20Gi"}, {"name": "data", "size": "50Gi"}]);
    server["spec"]["expose"] =
        json!([{"name": "rdp", "preset": "rdp", "allowFrom": ["203.0.113.0/24"]}]);
    create(&client, &server, &ns, false).await.unwrap();
    let api = Api::<VirtualServer>::namespaced(client.clone(), &ns);
    wait_ready(
        &api,
        "measured",
        "True",
        Some("Running"),
        Duration::from_secs(60),
    )
    .await;
    eventually("address reported", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            api.get("measured")
                .await
                .unwrap()
                .status
                .is_some_and(|s| !s.addresses.is_empty())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let total = writes::count(&writes::key("VirtualServer", &ns, "measured"));
    // 5 children (VM, 2 disks, Service, NetworkPolicy) written once each,
    // plus one status write per visible step of its life.
    println!("API writes for one server (2 disks, 1 exposure): {total}");
    assert!(total >= 6, "children and status were written ({total})");
    assert!(
        total <= 20,
        "a server's creation should cost few writes, cost {total}"
    );
}
