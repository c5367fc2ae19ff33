//! Our CRDs on a real API server: established, round-tripping realistic
//! objects with the defaults we document, and publishing field docs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use partnercloud::api::{BackupPolicy, PartnerAccount, ServerTemplate, VirtualServer};
use partnercloud::controlplane::kubevirt_crds;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::common::{admin, create, fixture, merged, namespace};

#[tokio::test]
async fn every_crd_is_established() {
    let client = admin().await;
    let api = Api::<CustomResourceDefinition>::all(client);
    for crd in partnercloud::crdgen::all()
        .into_iter()
        .chain(kubevirt_crds())
    {
        let name = crd.metadata.name.clone().unwrap();
        let live = api
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let established = live
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "{name} is not Established");
    }
}

/// Creates the fixture for real, reads it back as our typed object, and
/// checks that the spec the server stored (with its defaults) is the spec our
/// types read from the same YAML (with serde defaults): the two agree.
async fn round_trip<K>(fixture_name: &str, ns: &str)
where
    K: kube::Resource + DeserializeOwned + Clone + std::fmt::Debug + HasSpec,
{
    let client = admin().await;
    let object = fixture(fixture_name);
    let created = create(&client, &object, ns, false)
        .await
        .unwrap_or_else(|e| panic!("{fixture_name}: {e}"));
    let stored: K = serde_json::from_value(serde_json::to_value(&created).unwrap())
        .expect("stored object reads as our type");
    let local: K = serde_json::from_value(merged(
        &object,
        &serde_json::json!({"metadata": {"namespace": ns}}),
    ))
    .expect("fixture reads as our type");
    assert_eq!(
        stored.spec_value(),
        local.spec_value(),
        "{fixture_name}: server defaults differ from serde defaults"
    );
}

/// Access to a typed object's spec as JSON, for comparison.
trait HasSpec {
    fn spec_value(&self) -> Value;
}

macro_rules! has_spec {
    ($($kind:ty),*) => {$(
        impl HasSpec for $kind {
            fn spec_value(&self) -> Value {
                serde_json::to_value(&self.spec).unwrap()
            }
        }
    )*};
}
has_spec!(VirtualServer, ServerTemplate, BackupPolicy, PartnerAccount);

#[tokio::test]
async fn realistic_objects_round_trip() {
    let client = admin().await;
    let ns = namespace(&client, "roundtrip").await;
    round_trip::<VirtualServer>("virtualserver.yaml", &ns).await;
    round_trip::<ServerTemplate>("servertemplate.yaml", &ns).await;
    round_trip::<BackupPolicy>("backuppolicy.yaml", &ns).await;
    round_trip::<PartnerAccount>("partneraccount.yaml", &ns).await;
    Api::<PartnerAccount>::all(client)
        .delete("alfa-soft", &Default::default())
        .await
        .expect("delete partner");
}

#[tokio::test]
async fn defaults_are_applied_by_the_server() {
    let client = admin().await;
    let ns = namespace(&client, "defaults").await;
    let minimal = serde_json::json!({
        "apiVersion": "partnercloud.io/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": "minimal"},
        "spec": {"selector": {}, "schedule": "@daily"}
    });
    let created = create(&client, &minimal, &ns, false)
        .await
        .expect("create minimal policy");
    let spec = &serde_json::to_value(&created).unwrap()["spec"];
    assert_eq!(spec["timeZone"], "UTC");
    assert_eq!(spec["retention"]["keepLast"], 7);
    assert_eq!(spec["consistency"], "Filesystem");
    assert_eq!(spec["deletionPolicy"], "Retain");
    assert_eq!(spec["suspend"], false);
}

/// What `kubectl explain` reads: the published OpenAPI v3 document of our
/// group carries the doc comments of the fields.
#[tokio::test]
async fn openapi_carries_field_docs() {
    let client = admin().await;
    let request = http::Request::get("/openapi/v3/apis/partnercloud.io/v1alpha1")
        .body(Vec::new())
        .unwrap();
    let text = client
        .request_text(request)
        .await
        .expect("fetch OpenAPI v3");
    let doc: Value = serde_json::from_str(&text).expect("OpenAPI JSON");
    let schemas = &doc["components"]["schemas"];
    let vs = &schemas["io.partnercloud.v1alpha1.VirtualServer"]["properties"]["spec"]["properties"];
    assert!(
        vs["cores"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("Virtual CPU cores"),
        "{}",
        vs["cores"]
    );
    assert!(
        vs["source"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("exactly one of")
    );
    let bp = &schemas["io.partnercloud.v1alpha1.BackupPolicy"]["properties"]["spec"]["properties"];
    assert!(
        bp["timeZone"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("IANA")
    );
    let pa =
        &schemas["io.partnercloud.v1alpha1.PartnerAccount"]["properties"]["spec"]["properties"];
    assert!(
        pa["program"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("WhiteLabel")
    );
}
