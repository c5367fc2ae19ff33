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
pub mod virtual_server;
pub mod writes;

use std::sync::Arc;

use kube::Client;

use self::context::{Clock, Context, Settings};

/// Runs every controller until they stop (on a signal, or when a watch
/// stream ends for good — the caller treats that as fatal).
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
    tokio::join!(
        virtual_server::run(servers),
        server_template::run(templates),
        backup_policy::run(backups),
        partner_account::run(partners)
    );
}
