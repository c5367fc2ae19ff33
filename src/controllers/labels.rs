//! Labels and names shared by the controllers: how children are found again.

use std::collections::BTreeMap;

/// Every object partnercloud creates carries this, so watches and sweeps can
/// be limited to ours.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "partnercloud";

/// The VirtualServer a child belongs to (also on retained disks).
pub const SERVER: &str = "partnercloud.io/server";
/// The disk of the server a DataVolume holds.
pub const DISK: &str = "partnercloud.io/disk";
/// On a server's disks: the UID of the server that created them. A disk
/// kept by `deletionPolicy: Retain` outlives its server; a new server of
/// the same name has another UID and never takes it over.
pub const SERVER_UID: &str = "partnercloud.io/server-uid";
/// The role of a child: `system-disk`, `data-disk`, `iso`, `clone-source`,
/// `exposure`; for a template's children `golden-image`, `template-capture`,
/// `clone-grant`.
pub const ROLE: &str = "partnercloud.io/role";
/// The ServerTemplate a server was deployed from, or (with a template
/// role) the ServerTemplate a child belongs to.
pub const TEMPLATE: &str = "partnercloud.io/template";
/// On a golden image and its DataSource: whether the image expects
/// first-boot generalization (`spec.source.server.generalize`).
pub const GENERALIZE: &str = "partnercloud.io/generalize";

/// Roles of a ServerTemplate's children.
pub const GOLDEN_IMAGE_ROLE: &str = "golden-image";
pub const TEMPLATE_CAPTURE_ROLE: &str = "template-capture";
pub const CLONE_GRANT_ROLE: &str = "clone-grant";
/// Partner and client, copied from the namespace's labels when present.
pub const PARTNER: &str = "partnercloud.io/partner";
pub const CLIENT: &str = "partnercloud.io/client";

/// The field manager for server-side apply of children.
pub const FIELD_MANAGER: &str = "partnercloud";

/// Selector for everything partnercloud manages.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY}={MANAGER}")
}

/// Selector for the children of one server.
pub fn server_selector(server: &str) -> String {
    format!("{MANAGED_BY}={MANAGER},{SERVER}={server}")
}

/// Selector for the children of one template. The role keeps out the disks
/// of servers deployed from it, which carry the template label too.
pub fn template_selector(template: &str) -> String {
    format!(
        "{MANAGED_BY}={MANAGER},{TEMPLATE}={template},{ROLE} in ({GOLDEN_IMAGE_ROLE},{TEMPLATE_CAPTURE_ROLE},{CLONE_GRANT_ROLE})"
    )
}

/// Whether labels mark a child of a template (rather than a server
/// deployed from one); returns the template's name.
pub fn template_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    let role = labels.get(ROLE)?;
    [GOLDEN_IMAGE_ROLE, TEMPLATE_CAPTURE_ROLE, CLONE_GRANT_ROLE]
        .contains(&role.as_str())
        .then(|| labels.get(TEMPLATE).map(String::as_str))
        .flatten()
}

/// Base labels for a child of a template.
pub fn template_labels(template: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (TEMPLATE.to_string(), template.to_string()),
        (ROLE.to_string(), role.to_string()),
    ])
}

/// Base labels for a child of a server.
pub fn server_labels(server: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (SERVER.to_string(), server.to_string()),
        (ROLE.to_string(), role.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templates_children_are_told_apart_from_servers_deployed_from_it() {
        let golden = template_labels("win", GOLDEN_IMAGE_ROLE);
        assert_eq!(template_of(&golden), Some("win"));
        let mut server_disk = server_labels("app", "system-disk");
        server_disk.insert(TEMPLATE.into(), "win".into());
        assert_eq!(template_of(&server_disk), None);
        assert!(
            template_selector("win")
                .ends_with("partnercloud.io/role in (golden-image,template-capture,clone-grant)")
        );
    }
}
