//! Minimal CustomResourceDefinitions for the KubeVirt, CDI, snapshot and clone kinds the
//! operator creates, so integration tests can run without KubeVirt installed.
//!
//! They are our own, not copies of KubeVirt's: names, groups and versions match KubeVirt so the
//! operator's requests resolve, while spec and status accept any fields. Validation of those
//! fields is KubeVirt's business and is not what these tests are about.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceSubresourceStatus, CustomResourceSubresources,
    CustomResourceValidation, JSONSchemaProps,
};
use kube::api::ObjectMeta;

/// One kind, named the way KubeVirt names it.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
}

const KINDS: [Kind; 8] = [
    Kind {
        group: "kubevirt.io",
        version: "v1",
        kind: "VirtualMachine",
        plural: "virtualmachines",
        short_names: &["vm"],
    },
    Kind {
        group: "kubevirt.io",
        version: "v1",
        kind: "VirtualMachineInstance",
        plural: "virtualmachineinstances",
        short_names: &["vmi"],
    },
    Kind {
        group: "cdi.kubevirt.io",
        version: "v1beta1",
        kind: "DataVolume",
        plural: "datavolumes",
        short_names: &["dv"],
    },
    Kind {
        group: "cdi.kubevirt.io",
        version: "v1beta1",
        kind: "DataSource",
        plural: "datasources",
        short_names: &["das"],
    },
    Kind {
        group: "snapshot.kubevirt.io",
        version: "v1beta1",
        kind: "VirtualMachineSnapshot",
        plural: "virtualmachinesnapshots",
        short_names: &["vmsnapshot"],
    },
    Kind {
        group: "snapshot.kubevirt.io",
        version: "v1beta1",
        kind: "VirtualMachineSnapshotContent",
        plural: "virtualmachinesnapshotcontents",
        short_names: &["vmsnapshotcontent"],
    },
    Kind {
        group: "snapshot.kubevirt.io",
        version: "v1beta1",
        kind: "VirtualMachineRestore",
        plural: "virtualmachinerestores",
        short_names: &["vmrestore"],
    },
    Kind {
        group: "clone.kubevirt.io",
        version: "v1beta1",
        kind: "VirtualMachineClone",
        plural: "virtualmachineclones",
        short_names: &["vmclone"],
    },
];

/// Test CRDs for VirtualMachine, VirtualMachineInstance, DataVolume, DataSource,
/// VirtualMachineSnapshot, VirtualMachineSnapshotContent, VirtualMachineRestore and
/// VirtualMachineClone: namespaced, one served storage version, status subresource, and
/// free-form `spec` and `status`.
pub fn kubevirt_crds() -> Vec<CustomResourceDefinition> {
    KINDS.iter().map(crd).collect()
}

fn crd(kind: &Kind) -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", kind.plural, kind.group)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: kind.group.to_owned(),
            names: CustomResourceDefinitionNames {
                kind: kind.kind.to_owned(),
                list_kind: Some(format!("{}List", kind.kind)),
                plural: kind.plural.to_owned(),
                singular: Some(kind.kind.to_lowercase()),
                short_names: Some(kind.short_names.iter().copied().map(String::from).collect()),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".to_owned(),
            versions: vec![CustomResourceDefinitionVersion {
                name: kind.version.to_owned(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema()),
                }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    ..CustomResourceSubresources::default()
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

/// An object whose `spec` and `status` are objects with any fields.
fn schema() -> JSONSchemaProps {
    let free_form = || JSONSchemaProps {
        type_: Some("object".to_owned()),
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..JSONSchemaProps::default()
    };
    JSONSchemaProps {
        type_: Some("object".to_owned()),
        properties: Some(BTreeMap::from([
            ("spec".to_owned(), free_form()),
            ("status".to_owned(), free_form()),
        ])),
        ..JSONSchemaProps::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn find(name: &str) -> CustomResourceDefinition {
        kubevirt_crds()
            .into_iter()
            .find(|crd| crd.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no CRD {name}"))
    }

    #[test]
    fn names_match_kubevirt() {
        let names: BTreeSet<String> = kubevirt_crds()
            .into_iter()
            .filter_map(|crd| crd.metadata.name)
            .collect();
        let expected: BTreeSet<String> = [
            "virtualmachines.kubevirt.io",
            "virtualmachineinstances.kubevirt.io",
            "datavolumes.cdi.kubevirt.io",
            "datasources.cdi.kubevirt.io",
            "virtualmachinesnapshots.snapshot.kubevirt.io",
            "virtualmachinesnapshotcontents.snapshot.kubevirt.io",
            "virtualmachinerestores.snapshot.kubevirt.io",
            "virtualmachineclones.clone.kubevirt.io",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn virtual_machine_is_namespaced_v1_with_short_name_vm() {
        let crd = find("virtualmachines.kubevirt.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, "VirtualMachine");
        assert_eq!(crd.spec.names.short_names, Some(vec!["vm".to_owned()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1");
        assert!(version.served && version.storage);
    }

    #[test]
    fn every_kind_has_status_subresource_and_free_form_spec_and_status() {
        for crd in kubevirt_crds() {
            let version = &crd.spec.versions[0];
            assert!(
                version.subresources.as_ref().unwrap().status.is_some(),
                "{:?}",
                crd.metadata.name
            );
            let schema = version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap();
            for field in ["spec", "status"] {
                let props = &schema.properties.as_ref().unwrap()[field];
                assert_eq!(props.type_.as_deref(), Some("object"));
                assert_eq!(props.x_kubernetes_preserve_unknown_fields, Some(true));
            }
        }
    }

    #[test]
    fn serializes_as_apiextensions_v1() {
        let value = serde_json::to_value(find("datasources.cdi.kubevirt.io")).unwrap();
        assert_eq!(value["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(value["kind"], "CustomResourceDefinition");
        assert_eq!(value["spec"]["names"]["shortNames"][0], "das");
    }
}
