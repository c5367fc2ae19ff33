//! Admission validation: every invalid object is refused by the API server
//! itself (OpenAPI schema + CEL rules in our CRDs), with a message that
//! names the offending field.

use serde_json::{Value, json};

use crate::common::{admin, create, fixture, merged, namespace};

/// One invalid object: the fixture it starts from, the merge patch that
/// breaks it, and text the API server's message must contain.
struct Case {
    what: &'static str,
    fixture: &'static str,
    patch: Value,
    expect: &'static [&'static str],
}

fn case(
    what: &'static str,
    fixture: &'static str,
    patch: Value,
    expect: &'static [&'static str],
) -> Case {
    Case {
        what,
        fixture,
        patch,
        expect,
    }
}

const VS: &str = "virtualserver.yaml";
const ST: &str = "servertemplate.yaml";
const BP: &str = "backuppolicy.yaml";
const PA: &str = "partneraccount.yaml";

fn cases() -> Vec<Case> {
    vec![
        // VirtualServer: sizes
        case(
            "zero cores",
            VS,
            json!({"spec": {"cores": 0}}),
            &["spec.cores"],
        ),
        case(
            "negative cores",
            VS,
            json!({"spec": {"cores": -2}}),
            &["spec.cores"],
        ),
        case(
            "absurd cores",
            VS,
            json!({"spec": {"cores": 500}}),
            &["spec.cores"],
        ),
        case(
            "memory that is not a whole number of bytes",
            VS,
            json!({"spec": {"memory": "1.1Gi"}}),
            &["spec.memory", "whole number of bytes"],
        ),
        case(
            "a disk that is not a whole number of bytes",
            VS,
            json!({"spec": {"disks": [{"name": "system", "size": "10.3Gi"}]}}),
            &["spec.disks[0].size", "whole number of bytes"],
        ),
        case(
            "zero memory",
            VS,
            json!({"spec": {"memory": "0"}}),
            &["spec.memory", "between 128Mi and 1Ti"],
        ),
        case(
            "negative memory",
            VS,
            json!({"spec": {"memory": "-4Gi"}}),
            &["spec.memory"],
        ),
        case(
            "malformed memory",
            VS,
            json!({"spec": {"memory": "lots"}}),
            &["spec.memory"],
        ),
        case(
            "memory in GB",
            VS,
            json!({"spec": {"memory": "8GB"}}),
            &["spec.memory"],
        ),
        case(
            "tiny memory",
            VS,
            json!({"spec": {"memory": "64"}}),
            &["spec.memory"],
        ),
        case(
            "huge memory",
            VS,
            json!({"spec": {"memory": "2Ti"}}),
            &["spec.memory"],
        ),
        case(
            "fractional memory bytes",
            VS,
            json!({"spec": {"memory": "1500m"}}),
            &["spec.memory"],
        ),
        case(
            "no disks",
            VS,
            json!({"spec": {"disks": []}}),
            &["spec.disks"],
        ),
        case(
            "zero disk",
            VS,
            json!({"spec": {"disks": [{"name": "system", "size": "0"}]}}),
            &["spec.disks[0].size"],
        ),
        case(
            "negative disk",
            VS,
            json!({"spec": {"disks": [{"name": "system", "size": "-10Gi"}]}}),
            &["spec.disks[0].size"],
        ),
        case(
            "malformed disk size",
            VS,
            json!({"spec": {"disks": [{"name": "system", "size": "ten gigs"}]}}),
            &["spec.disks[0].size"],
        ),
        case(
            "duplicate disk names",
            VS,
            json!({"spec": {"disks": [{"name": "system", "size": "10Gi"}, {"name": "system", "size": "20Gi"}]}}),
            &["spec.disks[1]", "Duplicate"],
        ),
        case(
            "reserved disk name",
            VS,
            json!({"spec": {"disks": [{"name": "system", "size": "10Gi"}, {"name": "cdrom", "size": "5Gi"}]}}),
            &["spec.disks[1].name", "reserved"],
        ),
        case(
            "exposure name starting with a digit",
            VS,
            json!({"spec": {"expose": [{"name": "1c", "preset": "ssh"}]}}),
            &["spec.expose[0].name"],
        ),
        case(
            "server name too long",
            VS,
            json!({"metadata": {"name": "accounting-server-for-the-main-office-number-1"}}),
            &["metadata.name", "40"],
        ),
        case(
            "a copy of itself",
            VS,
            json!({"metadata": {"name": "me"}, "spec": {"source": {"template": null, "clone": {"server": "me"}}}}),
            &["spec.source.clone.server cannot be the server itself"],
        ),
        case(
            "disk name not a DNS label",
            VS,
            json!({"spec": {"disks": [{"name": "System Disk", "size": "10Gi"}]}}),
            &["spec.disks[0].name"],
        ),
        // VirtualServer: sources
        case(
            "two sources",
            VS,
            json!({"spec": {"source": {"image": {"url": "https://images.example.com/a.qcow2"}}}}),
            &["spec.source", "exactly one"],
        ),
        case(
            "no source",
            VS,
            json!({"spec": {"source": {"template": null}}}),
            &["spec.source", "exactly one"],
        ),
        case(
            "image URL not http",
            VS,
            json!({"spec": {"source": {"template": null, "image": {"url": "ftp://images.example.com/a.qcow2"}}}}),
            &["spec.source.image.url"],
        ),
        case(
            "malformed sha256",
            VS,
            json!({"spec": {"source": {"template": null, "image": {"url": "https://x.example/a.img", "sha256": "abc"}}}}),
            &["spec.source.image.sha256"],
        ),
        case(
            "cores omitted without a template",
            VS,
            json!({"spec": {"cores": null, "source": {"template": null, "blank": {}}}}),
            &["spec.cores is required"],
        ),
        case(
            "memory omitted without a template",
            VS,
            json!({"spec": {"memory": null, "source": {"template": null, "blank": {}}}}),
            &["spec.memory is required"],
        ),
        // VirtualServer: exposure
        case(
            "exposures on a server without a network",
            VS,
            json!({"spec": {"network": "Isolated"}}),
            &["spec.expose", "spec.network Isolated"],
        ),
        case(
            "unknown network mode",
            VS,
            json!({"spec": {"network": "Bridge"}}),
            &["spec.network", "Bridge"],
        ),
        case(
            "unknown preset",
            VS,
            json!({"spec": {"expose": [{"name": "t", "preset": "telnet"}]}}),
            &["spec.expose[0].preset", "telnet"],
        ),
        case(
            "rdp without allowFrom",
            VS,
            json!({"spec": {"expose": [{"name": "rdp", "preset": "rdp"}]}}),
            &["spec.expose[0]", "allowFrom is required"],
        ),
        case(
            "smb with empty allowFrom",
            VS,
            json!({"spec": {"expose": [{"name": "smb", "preset": "smb", "allowFrom": []}]}}),
            &["spec.expose[0]", "allowFrom is required"],
        ),
        case(
            "custom without port",
            VS,
            json!({"spec": {"expose": [{"name": "app", "preset": "custom"}]}}),
            &["spec.expose[0]", "port is required"],
        ),
        case(
            "port above 65535",
            VS,
            json!({"spec": {"expose": [{"name": "ssh", "preset": "ssh", "port": 70000}]}}),
            &["spec.expose[0].port"],
        ),
        case(
            "port zero",
            VS,
            json!({"spec": {"expose": [{"name": "ssh", "preset": "ssh", "port": 0}]}}),
            &["spec.expose[0].port"],
        ),
        case(
            "unknown protocol",
            VS,
            json!({"spec": {"expose": [{"name": "ssh", "preset": "ssh", "protocol": "SCTP"}]}}),
            &["spec.expose[0].protocol"],
        ),
        case(
            "invalid CIDR octet",
            VS,
            json!({"spec": {"expose": [{"name": "rdp", "preset": "rdp", "allowFrom": ["300.1.1.0/24"]}]}}),
            &["spec.expose[0].allowFrom", "CIDR"],
        ),
        case(
            "address without prefix",
            VS,
            json!({"spec": {"expose": [{"name": "rdp", "preset": "rdp", "allowFrom": ["office-network"]}]}}),
            &["spec.expose[0].allowFrom", "CIDR"],
        ),
        case(
            "duplicate exposure names",
            VS,
            json!({"spec": {"expose": [{"name": "a", "preset": "ssh"}, {"name": "a", "preset": "sftp"}]}}),
            &["spec.expose[1]", "Duplicate"],
        ),
        case(
            "unknown power state",
            VS,
            json!({"spec": {"powerState": "Paused"}}),
            &["spec.powerState", "Paused"],
        ),
        case(
            "unknown deletion policy",
            VS,
            json!({"spec": {"deletionPolicy": "Shred"}}),
            &["spec.deletionPolicy"],
        ),
        // ServerTemplate
        case(
            "template with two sources",
            ST,
            json!({"spec": {"source": {"server": {"name": "configured-1c"}}}}),
            &["spec.source", "exactly one of image, server"],
        ),
        case(
            "unknown OS type",
            ST,
            json!({"spec": {"os": {"type": "macos"}}}),
            &["spec.os.type"],
        ),
        case(
            "zero template disk",
            ST,
            json!({"spec": {"diskSize": "0"}}),
            &["spec.diskSize"],
        ),
        case(
            "defaults below minimums",
            ST,
            json!({"spec": {"defaults": {"cores": 1}, "minimums": {"cores": 2}}}),
            &["spec.defaults.cores must be at least"],
        ),
        case(
            "default memory below minimum",
            ST,
            json!({"spec": {"defaults": {"memory": "4Gi"}, "minimums": {"memory": "8Gi"}}}),
            &["spec.defaults.memory must be at least"],
        ),
        case(
            "selector scope without selector",
            ST,
            json!({"spec": {"sharing": {"scope": "Selector", "namespaceSelector": null}}}),
            &["spec.sharing"],
        ),
        case(
            "selector with scope All",
            ST,
            json!({"spec": {"sharing": {"scope": "All"}}}),
            &["spec.sharing"],
        ),
        case(
            "upper-case sha256",
            ST,
            json!({"spec": {"source": {"image": {"sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}}}}),
            &["spec.source.image.sha256"],
        ),
        // BackupPolicy
        case(
            "six-field cron",
            BP,
            json!({"spec": {"schedule": "0 30 2 * * *"}}),
            &["spec.schedule", "5-field"],
        ),
        case(
            "cron prose",
            BP,
            json!({"spec": {"schedule": "every night"}}),
            &["spec.schedule"],
        ),
        case(
            "cron minute out of range",
            BP,
            json!({"spec": {"schedule": "61 2 * * *"}}),
            &["spec.schedule"],
        ),
        case(
            "cron month out of range",
            BP,
            json!({"spec": {"schedule": "0 2 * 13 *"}}),
            &["spec.schedule"],
        ),
        case(
            "unknown time zone",
            BP,
            json!({"spec": {"timeZone": "Mars/Olympus"}}),
            &["spec.timeZone", "IANA"],
        ),
        case(
            "city instead of zone",
            BP,
            json!({"spec": {"timeZone": "Moscow"}}),
            &["spec.timeZone"],
        ),
        case(
            "retention keeps nothing",
            BP,
            json!({"spec": {"retention": {"keepLast": 0, "keepDaily": null, "keepWeekly": null, "keepMonthly": null, "keepYearly": null}}}),
            &["spec.retention", "at least one"],
        ),
        case(
            "negative retention",
            BP,
            json!({"spec": {"retention": {"keepDaily": -1}}}),
            &["spec.retention.keepDaily"],
        ),
        case(
            "zero failure budget",
            BP,
            json!({"spec": {"maxConsecutiveFailures": 0}}),
            &["spec.maxConsecutiveFailures"],
        ),
        case(
            "unknown consistency",
            BP,
            json!({"spec": {"consistency": "Application"}}),
            &["spec.consistency"],
        ),
        case(
            "bad drill schedule",
            BP,
            json!({"spec": {"verify": {"restoreDrill": {"schedule": "weekly"}}}}),
            &["spec.verify.restoreDrill.schedule"],
        ),
        // PartnerAccount
        case(
            "unknown program",
            PA,
            json!({"spec": {"program": "Franchise", "branding": null}}),
            &["spec.program", "Franchise"],
        ),
        case(
            "branding without white label",
            PA,
            json!({"spec": {"program": "Consolidated"}}),
            &["spec.branding is only allowed"],
        ),
        case(
            "white label without branding",
            PA,
            json!({"spec": {"branding": null}}),
            &["spec.branding is required"],
        ),
        case(
            "duplicate client names",
            PA,
            json!({"spec": {"clients": [{"name": "bakery"}, {"name": "bakery"}]}}),
            &["spec.clients[1]", "Duplicate"],
        ),
        case(
            "client name not a DNS label",
            PA,
            json!({"spec": {"clients": [{"name": "Bakery Ltd"}]}}),
            &["spec.clients[0].name"],
        ),
        case(
            "client since not a date",
            PA,
            json!({"spec": {"clients": [{"name": "bakery", "since": "2025-13-01"}]}}),
            &["spec.clients[0].since"],
        ),
        case(
            "invalid branding domain",
            PA,
            json!({"spec": {"branding": {"domain": "not a domain"}}}),
            &["spec.branding.domain"],
        ),
        case(
            "colour name instead of hex",
            PA,
            json!({"spec": {"branding": {"colors": {"primary": "blue"}}}}),
            &["spec.branding.colors.primary"],
        ),
        case(
            "logo over plain http",
            PA,
            json!({"spec": {"branding": {"logoUrl": "http://cdn.example.com/logo.png"}}}),
            &["spec.branding.logoUrl"],
        ),
        case(
            "service account admin without namespace",
            PA,
            json!({"spec": {"admins": [{"kind": "ServiceAccount", "name": "ci"}]}}),
            &["spec.admins[0]", "namespace is required"],
        ),
        case(
            "negative pool memory",
            PA,
            json!({"spec": {"quota": {"memory": "-1Gi"}}}),
            &["spec.quota.memory"],
        ),
        case(
            "negative pool cores",
            PA,
            json!({"spec": {"quota": {"cores": -4}}}),
            &["spec.quota.cores"],
        ),
        case(
            "partner name too long",
            PA,
            json!({"metadata": {"name": "a-very-long-partner-name-over-thirty"}}),
            &["metadata.name", "30"],
        ),
    ]
}

#[tokio::test]
async fn invalid_objects_are_refused_with_the_field_named() {
    let client = admin().await;
    let ns = namespace(&client, "admission").await;
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "the table must stay at least 40 cases long"
    );

    let mut failures = Vec::new();
    for c in &cases {
        let object = merged(&fixture(c.fixture), &c.patch);
        match create(&client, &object, &ns, true).await {
            Ok(_) => failures.push(format!("{}: accepted", c.what)),
            Err(kube::Error::Api(status)) => {
                let missing: Vec<_> = c
                    .expect
                    .iter()
                    .filter(|e| !status.message.contains(**e))
                    .collect();
                if status.code != 422 || !missing.is_empty() {
                    failures.push(format!(
                        "{}: code {} message {:?} lacks {:?}",
                        c.what, status.code, status.message, missing
                    ));
                }
            }
            Err(other) => failures.push(format!("{}: unexpected error {other}", c.what)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn valid_fixtures_are_accepted() {
    let client = admin().await;
    let ns = namespace(&client, "admission-ok").await;
    for name in [VS, ST, BP, PA] {
        let object = fixture(name);
        if let Err(e) = create(&client, &object, &ns, true).await {
            panic!("{name} refused: {e}");
        }
    }
    // Sizes that are whole bytes in any notation pass.
    for memory in [
        "1.5Gi",
        "0.5Ti",
        "4096Mi",
        "4294967296",
        "8G",
        "1.0Gi",
        "1.25Gi",
        "1023.5Gi",
        "0.75Ti",
        "2.5G",
    ] {
        let object = merged(&fixture(VS), &json!({"spec": {"memory": memory}}));
        if let Err(e) = create(&client, &object, &ns, true).await {
            panic!("memory {memory} refused: {e}");
        }
    }
}

#[tokio::test]
async fn source_is_immutable_but_an_iso_can_be_ejected() {
    let client = admin().await;
    let ns = namespace(&client, "immutable").await;
    let iso_server = merged(
        &fixture(VS),
        &json!({"metadata": {"name": "installer"}, "spec": {"source": {"template": null, "iso": {"url": "https://isos.example.com/win2022.iso"}}}}),
    );
    create(&client, &iso_server, &ns, false)
        .await
        .expect("create ISO server");
    let api = crate::common::api_for(&client, &iso_server, &ns);
    let params = kube::api::PatchParams::default();

    let eject = json!({"spec": {"source": {"iso": {"eject": true}}}});
    api.patch("installer", &params, &kube::api::Patch::Merge(&eject))
        .await
        .expect("ejecting the ISO is allowed");
    let uneject = json!({"spec": {"source": {"iso": {"eject": false}}}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&uneject))
        .await
        .expect_err("putting an ejected ISO back is refused");
    assert!(err.to_string().contains("cannot be undone"), "{err}");

    let other_iso =
        json!({"spec": {"source": {"iso": {"url": "https://isos.example.com/other.iso"}}}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&other_iso))
        .await
        .expect_err("changing the ISO URL is refused");
    assert!(
        err.to_string().contains("spec.source cannot change"),
        "{err}"
    );

    // The system disk keeps its name, and no disk shrinks.
    let renamed = json!({"spec": {"disks": [{"name": "os", "size": "120Gi"}, {"name": "database", "size": "500Gi", "storageClass": "fast-ssd"}]}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&renamed))
        .await
        .expect_err("renaming the system disk is refused");
    assert!(err.to_string().contains("system disk"), "{err}");
    let shrunk = json!({"spec": {"disks": [{"name": "system", "size": "100Gi"}, {"name": "database", "size": "500Gi", "storageClass": "fast-ssd"}]}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&shrunk))
        .await
        .expect_err("shrinking a disk is refused");
    assert!(err.to_string().contains("cannot shrink"), "{err}");
    // Growing is refused too, rather than accepted and never carried out
    // (CDI keeps a DataVolume at the size it was created with).
    let grown = json!({"spec": {"disks": [{"name": "system", "size": "200Gi"}, {"name": "database", "size": "500Gi", "storageClass": "fast-ssd"}]}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&grown))
        .await
        .expect_err("growing a disk is refused");
    assert!(err.to_string().contains("cannot grow yet"), "{err}");
    let added = json!({"spec": {"disks": [{"name": "system", "size": "120Gi"}, {"name": "database", "size": "500Gi", "storageClass": "fast-ssd"}, {"name": "more", "size": "100Gi"}]}});
    api.patch("installer", &params, &kube::api::Patch::Merge(&added))
        .await
        .expect("adding a data disk is allowed");

    // The network is hardware to the guest: fixed once created.
    let isolate = json!({"spec": {"expose": null, "network": "Isolated"}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&isolate))
        .await
        .expect_err("changing the network is refused");
    assert!(err.to_string().contains("spec.network is fixed"), "{err}");

    let to_blank = json!({"spec": {"source": {"iso": null, "blank": {}}}});
    let err = api
        .patch("installer", &params, &kube::api::Patch::Merge(&to_blank))
        .await
        .expect_err("switching source kind is refused");
    assert!(
        err.to_string().contains("spec.source cannot change"),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_namespace_cannot_change_once_set() {
    let client = admin().await;
    let partner = merged(
        &fixture(PA),
        &json!({"metadata": {"name": "immutable-ns"}, "spec": {"clients": [{"name": "bakery", "namespace": "bakery-legacy"}]}}),
    );
    create(&client, &partner, "", false)
        .await
        .expect("create partner");
    let api = crate::common::api_for(&client, &partner, "");
    let moved = json!({"spec": {"clients": [{"name": "bakery", "namespace": "bakery-new"}]}});
    let err = api
        .patch(
            "immutable-ns",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&moved),
        )
        .await
        .expect_err("moving a client's namespace is refused");
    assert!(
        err.to_string().contains("spec.clients[0]")
            && err.to_string().contains("namespace cannot change"),
        "{err}"
    );
    api.delete("immutable-ns", &Default::default())
        .await
        .expect("delete partner");
}
