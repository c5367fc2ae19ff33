//! The CustomResourceDefinitions of our kinds, generated from the types in
//! [`crate::api`]. `partnercloud crd` prints them; `crds/` holds a checked-in
//! copy that a test proves current.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{BackupPolicy, PartnerAccount, ServerTemplate, VirtualServer};

/// Every CRD partnercloud defines, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        VirtualServer::crd(),
        ServerTemplate::crd(),
        BackupPolicy::crd(),
        PartnerAccount::crd(),
    ]
}

/// File name under `crds/` for a CRD, e.g. `virtualservers.partnercloud.io.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(crd)
}

/// Every CRD as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` is generated, never hand-edited: it must equal what the types
    /// produce. Regenerate with `make crds`.
    #[test]
    fn checked_in_crds_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/partnercloud.yaml");
        let on_disk = std::fs::read_to_string(path)
            .expect("crds/partnercloud.yaml is missing; run `make crds`");
        let generated = all_yaml().expect("render CRDs");
        assert!(
            on_disk == generated,
            "crds/partnercloud.yaml is stale; run `make crds` and commit the result"
        );
    }

    #[test]
    fn every_kind_has_short_name_category_and_status() {
        for crd in all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            assert!(
                crd.spec
                    .names
                    .short_names
                    .as_ref()
                    .is_some_and(|s| !s.is_empty()),
                "{name} has no short name"
            );
            assert_eq!(
                crd.spec.names.categories.as_deref(),
                Some(&["partnercloud".to_string()][..]),
                "{name}"
            );
            let version = &crd.spec.versions[0];
            assert!(
                version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some(),
                "{name} lacks status subresource"
            );
            assert!(
                version
                    .additional_printer_columns
                    .as_ref()
                    .is_some_and(|c| c.len() >= 3),
                "{name} lacks printer columns"
            );
        }
    }

    /// Every property of every spec carries a description (it becomes
    /// `kubectl explain`).
    #[test]
    fn every_spec_field_is_documented() {
        fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (name, child) in props {
                    let child_path = format!("{path}.{name}");
                    if child
                        .get("description")
                        .and_then(|d| d.as_str())
                        .is_none_or(str::is_empty)
                    {
                        missing.push(child_path.clone());
                    }
                    walk(&child_path, child, missing);
                }
            }
            if let Some(items) = schema.get("items") {
                walk(&format!("{path}[]"), items, missing);
            }
        }
        let mut missing = Vec::new();
        for crd in all() {
            let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
            let root = &schema["openAPIV3Schema"]["properties"];
            walk(
                &format!("{}.spec", crd.spec.names.kind),
                &root["spec"],
                &mut missing,
            );
            walk(
                &format!("{}.status", crd.spec.names.kind),
                &root["status"],
                &mut missing,
            );
        }
        assert!(
            missing.is_empty(),
            "fields without a doc comment: {missing:#?}"
        );
    }
}
