//! CDI's clone permission for the namespaces a template is shared with.
//!
//! CDI lets a DataVolume in one namespace clone a claim in another only if
//! the creator (or, for VMs' DataVolume templates, the target namespace's
//! service account) may `create` `datavolumes/source` on that claim in the
//! source namespace — a SubjectAccessReview that names the claim. So the
//! grant is a Role in the template's namespace allowing exactly that verb on
//! exactly the published golden claim (`resourceNames`), never on the
//! client disks that may live beside it, bound to the service accounts of
//! the namespaces sharing allows:
//!
//! - `Namespace`: nothing (same-namespace clones need no grant);
//! - `All`: the group `system:serviceaccounts`;
//! - `Selector`: one group `system:serviceaccounts:<ns>` per matching
//!   namespace, recomputed when namespaces or their labels change.
//!
//! Nothing is granted while nothing is published.

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::ObjectMeta;

use super::names;
use crate::api::ServerTemplate;
use crate::controllers::labels;
use crate::controllers::ownership::{OwnershipError, controller_ref};
use crate::controllers::server_template::plan::Plan;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const CDI_GROUP: &str = "cdi.kubevirt.io";

pub fn build(
    template: &ServerTemplate,
    plan: &Plan,
) -> Result<Option<(Role, RoleBinding)>, OwnershipError> {
    let Some(claim) = &plan.publish else {
        return Ok(None);
    };
    if plan.clone_groups.is_empty() {
        return Ok(None);
    }
    let template_name = template.metadata.name.clone().unwrap_or_default();
    let namespace = template.metadata.namespace.clone();
    let name = names::clone_grant(&template_name);
    let meta = |kind: &str| -> Result<ObjectMeta, OwnershipError> {
        Ok(ObjectMeta {
            name: Some(name.clone()),
            namespace: namespace.clone(),
            labels: Some(labels::template_labels(
                &template_name,
                labels::CLONE_GRANT_ROLE,
            )),
            owner_references: Some(vec![controller_ref(
                template,
                kind,
                &name,
                namespace.as_deref(),
            )?]),
            ..Default::default()
        })
    };
    let role = Role {
        metadata: meta("Role")?,
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![CDI_GROUP.into()]),
            resources: Some(vec!["datavolumes/source".into()]),
            resource_names: Some(vec![claim.clone()]),
            verbs: vec!["create".into()],
            ..Default::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: meta("RoleBinding")?,
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(
            plan.clone_groups
                .iter()
                .map(|group| Subject {
                    api_group: Some(RBAC_GROUP.into()),
                    kind: "Group".into(),
                    name: group.clone(),
                    namespace: None,
                })
                .collect(),
        ),
    };
    Ok(Some((role, binding)))
}
