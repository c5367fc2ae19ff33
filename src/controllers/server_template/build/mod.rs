//! Desired children of a ServerTemplate, as pure functions of the template
//! and its plan. No client, no clock, no randomness.

pub mod capture;
pub mod clone_grant;
pub mod data_source;
pub mod golden;
pub mod names;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

use super::plan::Plan;
use crate::api::ServerTemplate;
use crate::controllers::ownership::OwnershipError;
use crate::kubevirt::{DataSource, DataVolume, VirtualMachineSnapshot};

/// Everything one pass wants to exist. The apply step destructures it
/// without `..`, so a child kind that is built but never applied does not
/// compile.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    /// The current version's golden disk.
    pub golden: Option<DataVolume>,
    /// The previously published golden disk, kept until the current one
    /// is published.
    pub previous: Option<DataVolume>,
    /// The VM snapshot a captured version is restored from.
    pub capture: Option<VirtualMachineSnapshot>,
    pub data_source: Option<DataSource>,
    /// CDI clone permission for the namespaces sharing allows.
    pub clone_role: Option<Role>,
    pub clone_binding: Option<RoleBinding>,
}

pub fn build(template: &ServerTemplate, plan: &Plan) -> Result<Children, OwnershipError> {
    let (clone_role, clone_binding) = match clone_grant::build(template, plan)? {
        Some((role, binding)) => (Some(role), Some(binding)),
        None => (None, None),
    };
    Ok(Children {
        golden: plan
            .golden
            .as_ref()
            .map(|g| golden::build(template, plan, g))
            .transpose()?,
        previous: plan
            .previous
            .as_ref()
            .map(|g| golden::build(template, plan, g))
            .transpose()?,
        capture: plan
            .capture
            .as_ref()
            .map(|c| capture::build(template, c))
            .transpose()?,
        data_source: data_source::build(template, plan)?,
        clone_role,
        clone_binding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::server_template::TemplatePhase;
    use crate::controllers::server_template::fixtures::{CAPTURE, IMAGE, template};
    use crate::controllers::server_template::plan::{
        CaptureSnapshot, Golden, GoldenContent, Stage, reason,
    };

    fn plan(publish: Option<&str>, groups: &[&str]) -> Plan {
        Plan {
            version: "win2022-1c83-pg16-golden-12345678".into(),
            golden: Some(Golden {
                name: "win2022-1c83-pg16-golden-12345678".into(),
                content: GoldenContent::Http {
                    url: "http://127.0.0.1:9000/images/win.qcow2".into(),
                },
            }),
            previous: None,
            capture: None,
            publish: publish.map(str::to_string),
            clone_groups: groups.iter().map(|g| g.to_string()).collect(),
            generalize: None,
            checksum: None,
            stage: Stage::new(TemplatePhase::Importing, reason::IMPORTING, "importing"),
        }
    }

    #[test]
    fn the_golden_disk_is_owned_labelled_and_sized_from_the_template() {
        let t = template(IMAGE);
        let children = build(&t, &plan(None, &[])).unwrap();
        let dv = children.golden.unwrap();
        assert_eq!(
            dv.metadata.name.as_deref(),
            Some("win2022-1c83-pg16-golden-12345678")
        );
        assert_eq!(dv.metadata.namespace.as_deref(), Some("alfa-soft"));
        let owner = &dv.metadata.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "ServerTemplate");
        assert_eq!(owner.controller, Some(true));
        let labels = dv.metadata.labels.unwrap();
        assert_eq!(labels["partnercloud.io/role"], "golden-image");
        assert_eq!(labels["partnercloud.io/template"], "win2022-1c83-pg16");
        assert!(!labels.contains_key("partnercloud.io/generalize"));
        assert_eq!(
            dv.spec.source.unwrap().http.unwrap().url,
            "http://127.0.0.1:9000/images/win.qcow2"
        );
        // 102400Mi, canonical.
        assert_eq!(
            dv.spec.storage.unwrap().resources.unwrap().requests["storage"],
            "100Gi"
        );
        assert_eq!(children.data_source, None, "nothing published yet");
        assert_eq!((children.clone_role, children.clone_binding), (None, None));
    }

    #[test]
    fn the_data_source_points_at_the_published_claim() {
        let t = template(IMAGE);
        let children = build(&t, &plan(Some("win2022-1c83-pg16-golden-0000aaaa"), &[])).unwrap();
        let ds = children.data_source.unwrap();
        assert_eq!(ds.metadata.name.as_deref(), Some("win2022-1c83-pg16"));
        let pvc = ds.spec.source.pvc.unwrap();
        assert_eq!(
            (pvc.namespace.as_str(), pvc.name.as_str()),
            ("alfa-soft", "win2022-1c83-pg16-golden-0000aaaa")
        );
        assert_eq!(children.clone_role, None, "no other namespace, no grant");
    }

    #[test]
    fn the_clone_grant_names_only_the_published_claim_and_the_allowed_groups() {
        let t = template(IMAGE);
        let children = build(
            &t,
            &plan(
                Some("win2022-1c83-pg16-golden-12345678"),
                &[
                    "system:serviceaccounts:alfa-soft-bakery",
                    "system:serviceaccounts:alfa-soft-dairy",
                ],
            ),
        )
        .unwrap();
        let role = children.clone_role.unwrap();
        let rule = &role.rules.unwrap()[0];
        assert_eq!(rule.api_groups, Some(vec!["cdi.kubevirt.io".to_string()]));
        assert_eq!(rule.resources, Some(vec!["datavolumes/source".to_string()]));
        assert_eq!(rule.verbs, vec!["create".to_string()]);
        assert_eq!(
            rule.resource_names,
            Some(vec!["win2022-1c83-pg16-golden-12345678".to_string()]),
            "never the client disks beside it"
        );
        let binding = children.clone_binding.unwrap();
        assert_eq!(binding.role_ref.kind, "Role");
        assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
        let subjects = binding.subjects.unwrap();
        assert_eq!(subjects.len(), 2);
        assert!(
            subjects
                .iter()
                .all(|s| s.kind == "Group" && s.namespace.is_none())
        );
        assert_eq!(subjects[1].name, "system:serviceaccounts:alfa-soft-dairy");
    }

    #[test]
    fn a_capture_snapshots_the_servers_vm_and_labels_generalization() {
        let t = template(CAPTURE);
        let mut p = plan(None, &[]);
        p.golden = Some(Golden {
            name: "debian12-1c-golden-0badf00d".into(),
            content: GoldenContent::VolumeSnapshot {
                namespace: "alfa-soft-bakery".into(),
                name: "vmsnapshot-1234-volume-system".into(),
            },
        });
        p.capture = Some(CaptureSnapshot {
            name: "debian12-1c-capture-0badf00d".into(),
            vm: "golden-1c".into(),
        });
        p.generalize = Some(true);
        let children = build(&t, &p).unwrap();
        let snapshot = children.capture.unwrap();
        assert_eq!(snapshot.spec.source.kind, "VirtualMachine");
        assert_eq!(snapshot.spec.source.name, "golden-1c");
        assert_eq!(
            snapshot.metadata.namespace.as_deref(),
            Some("alfa-soft-bakery")
        );
        assert_eq!(
            snapshot.metadata.labels.unwrap()["partnercloud.io/role"],
            "template-capture"
        );
        let dv = children.golden.unwrap();
        assert_eq!(
            dv.spec.source.unwrap().snapshot.unwrap().name,
            "vmsnapshot-1234-volume-system"
        );
        assert_eq!(
            dv.metadata.labels.unwrap()["partnercloud.io/generalize"],
            "true"
        );
    }
}
