//! ACCEPTANCE case 3: finalizer races, against the real API server.
//!
//! A second replica of the PartnerAccount controller (the kind that always
//! carries a finalizer) runs beside the test operator, so two writers add
//! and remove the finalizer at once. Another writer keeps changing the
//! objects' metadata meanwhile, so any write that relied on a
//! resourceVersion read earlier would conflict.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use partnercloud::api::PartnerAccount;
use partnercloud::controllers::context::{Context, Settings};
use serde_json::json;

use crate::common::{admin, create, eventually, operator, wait_ready};

const FINALIZER: &str = "partnercloud.io/partner-account";
const FOREIGN: &str = "example.com/hold";

fn partner(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "PartnerAccount",
        "metadata": {"name": name},
        "spec": {"displayName": name, "program": "Consolidated", "clients": [{"name": "office"}]}
    })
}

/// Patches a label on `name` `times` times, moving its resourceVersion.
async fn churn_metadata(partners: Api<PartnerAccount>, name: String, times: u32) {
    for i in 0..times {
        let patch = json!({"metadata": {"labels": {"example.com/touched": i.to_string()}}});
        // The object may be gone by now; that ends the churn.
        if partners
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(finalizers: &[String], name: &str) -> usize {
    finalizers.iter().filter(|f| *f == name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_add_one_finalizer_and_deletion_never_sticks_on_a_conflict() {
    let shared = operator();
    let client: Client = admin().await;
    let partners = Api::<PartnerAccount>::all(client.clone());

    // The second replica: same field manager and clock as the first.
    let replica = Arc::new(Context::new(
        client.clone(),
        shared.clock.clone(),
        "partnercloud-partneraccount",
        Settings::default(),
    ));
    let second = tokio::spawn(partnercloud::controllers::partner_account::run(replica));

    let names: Vec<String> = (0..4)
        .map(|i| format!("t-race-{}-{i}", std::process::id()))
        .collect();
    for name in &names {
        create(&client, &partner(name), "", false)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        tokio::spawn(churn_metadata(partners.clone(), name.clone(), 20));
    }
    for name in &names {
        let pa = wait_ready(
            &partners,
            name,
            "True",
            Some("Reconciled"),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            count(pa.finalizers(), FINALIZER),
            1,
            "{name}: {:?}",
            pa.finalizers()
        );
    }

    // One of them is also held by someone else's finalizer: ours goes,
    // theirs stays, and the object goes once they let it.
    let held = &names[0];
    partners
        .patch(
            held,
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "add", "path": "/metadata/finalizers/-", "value": FOREIGN}]),
                )
                .unwrap(),
            ),
        )
        .await
        .expect("add a foreign finalizer");
    for name in &names {
        tokio::spawn(churn_metadata(partners.clone(), name.clone(), 40));
        partners
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
    eventually(
        "the held partner keeps only the foreign finalizer",
        Duration::from_secs(60),
        || async {
            match partners.get_opt(held).await {
                Ok(Some(pa)) => pa.finalizers() == [FOREIGN.to_string()],
                _ => false,
            }
        },
    )
    .await;
    partners
        .patch(
            held,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the foreign finalizer");
    for name in &names {
        eventually(
            &format!("{name} is gone, not left Terminating"),
            Duration::from_secs(60),
            || async { matches!(partners.get_opt(name).await, Ok(None)) },
        )
        .await;
    }
    second.abort();
}
