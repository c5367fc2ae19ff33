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
/// The role of a child: `system-disk`, `data-disk`, `iso`, `clone-source`, `exposure`.
pub const ROLE: &str = "partnercloud.io/role";
/// The ServerTemplate a server was deployed from.
pub const TEMPLATE: &str = "partnercloud.io/template";
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

/// Base labels for a child of a server.
pub fn server_labels(server: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (SERVER.to_string(), server.to_string()),
        (ROLE.to_string(), role.to_string()),
    ])
}
