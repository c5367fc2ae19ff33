//! The reconcilers. Each is a short pipeline — fetch, validate, build,
//! apply, status — with its own module per custom resource.

pub mod apply;
pub mod backup_policy;
pub mod context;
pub mod labels;
pub mod mirror;
pub mod names;
pub mod ownership;
pub mod partner_account;
pub mod reporter;
pub mod server_template;
pub mod status_patch;
pub mod virtual_server;
pub mod writes;

use std::sync::Arc;

use kube::Client;

use self::context::{Clock, Context, Settings};

/// Runs every controller until one of them stops (on a signal, or when a
/// watch stream ends for good — the caller treats that as fatal).
pub async fn run_all(client: Client, clock: Arc<dyn Clock>, settings: Settings) {
    let servers = Arc::new(Context::new(
        client.clone(),
        clock.clone(),
        "partnercloud-virtualserver",
        settings.clone(),
    ));
    let templates = Arc::new(Context::new(
        client.clone(),
        clock.clone(),
        "partnercloud-servertemplate",
        settings.clone(),
    ));
    let backups = Arc::new(Context::new(
        client.clone(),
        clock.clone(),
        "partnercloud-backuppolicy",
        settings.clone(),
    ));
    let partners = Arc::new(Context::new(
        client.clone(),
        clock.clone(),
        "partnercloud-partneraccount",
        settings.clone(),
    ));
    // A controller whose watch streams end for good stops reconciling its
    // kind. The process must not stay up deaf to it: return as soon as any
    // controller stops, so the caller exits and is restarted. (An expired
    // watch, 410 Gone, is not an end: kube-runtime's watcher relists.)
    tokio::select! {
        _ = virtual_server::run(servers) => tracing::error!(controller = "VirtualServer", "controller stopped"),
        _ = server_template::run(templates) => tracing::error!(controller = "ServerTemplate", "controller stopped"),
        _ = backup_policy::run(backups) => tracing::error!(controller = "BackupPolicy", "controller stopped"),
        _ = partner_account::run(partners) => tracing::error!(controller = "PartnerAccount", "controller stopped"),
    }
}
