//! The PartnerAccount controller: a partner's client namespaces with their
//! quota, admin binding and isolation, its white-label branding, pooled
//! guest-terms quota and suspension.
//!
//! The driver (this file) is the pipeline: **fetch** what exists of the
//! partner's namespaces and its servers' admissions ([`fetch`]) →
//! **validate** that every namespace it wants is free or its own
//! ([`validate`]) → **build** the children, pure ([`build`]) → **apply** them
//! with server-side apply, keep or delete removed clients' namespaces and
//! sweep the rest ([`apply`]) → **status**, written only when it changed
//! ([`status`]). A finalizer releases the client namespaces when the account
//! is deleted ([`apply::cleanup`]): garbage collection alone would either
//! take them (with `Delete`) or leave them unlabelled and still bound to the
//! partner's admins until it caught up (with `Retain`).
//!
//! The pure part, with no client, no I/O and no clock:
//!
//! - [`naming`]: namespace names and labels;
//! - [`build`]: the desired children, one file per kind, and the
//!   [`build::Children`] the apply step must consume whole;
//! - [`rbac`]: the ClusterRole the admins are bound to (shipped in
//!   `manifests/rbac/`);
//! - [`quota`]: server sizes, the admission decision and the per-partner
//!   ledger that keeps the pool atomic (decided by the VirtualServer
//!   controller, see `virtual_server::admission`);
//! - [`suspension`]: the effective run strategy of a server;
//! - [`status`]: usage, totals and the conditions `Ready` and
//!   `QuotaPressure`.

pub mod apply;
pub mod build;
pub mod fetch;
pub mod naming;
pub mod quota;
pub mod rbac;
pub mod servers;
pub mod status;
pub mod suspension;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::finalizer::{self, Event};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use self::build::BuildError;
use self::naming::{MANAGED_BY, MANAGED_BY_LABEL, PARTNER_LABEL};
use self::status::Outcome;
use super::context::Context;
use super::labels::FIELD_MANAGER;
use super::reporter;
use crate::api::{PartnerAccount, VirtualServer};
use crate::controllers::apply::ApplyError;

/// Our finalizer on every PartnerAccount.
pub const FINALIZER: &str = "partnercloud.io/partner-account";

/// One variant per pipeline stage; the names become event reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("releasing client namespaces: {0}")]
    Cleanup(#[source] ApplyError),
    #[error("writing status: {0}")]
    Status(#[source] kube::Error),
    #[error(transparent)]
    Finalizer(Box<finalizer::Error<Error>>),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "FetchFailed",
            Self::Apply(_) => "ApplyFailed",
            Self::Cleanup(_) => "CleanupFailed",
            Self::Status(_) => "StatusFailed",
            Self::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.reason(),
                _ => "FinalizerFailed",
            },
        }
    }
}

/// Maps a labelled child back to its partner.
fn by_partner_label<K: Resource<DynamicType = ()>>(child: K) -> Option<ObjectRef<PartnerAccount>> {
    let partner = child.meta().labels.as_ref()?.get(PARTNER_LABEL)?;
    Some(ObjectRef::new(partner))
}

/// Runs the controller until the watch streams end.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let children = watcher::Config::default()
        .labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY},{PARTNER_LABEL}"));
    let own_children = watcher::Config::default().labels(&format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{PARTNER_LABEL},!{}",
        super::labels::SERVER
    ));
    let controller = Controller::new(
        Api::<PartnerAccount>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    controller
        // Status events of many servers at once (a batch being admitted)
        // collapse into one pass.
        .with_config(
            ControllerConfig::default()
                .concurrency(ctx.settings.concurrency)
                .debounce(Duration::from_millis(300)),
        )
        .watches(
            Api::<Namespace>::all(client.clone()),
            children,
            by_partner_label,
        )
        .watches(
            Api::<ResourceQuota>::all(client.clone()),
            own_children.clone(),
            by_partner_label,
        )
        .watches(
            Api::<RoleBinding>::all(client.clone()),
            own_children.clone(),
            by_partner_label,
        )
        .watches(
            Api::<NetworkPolicy>::all(client.clone()),
            own_children.clone(),
            by_partner_label,
        )
        .watches(
            Api::<ConfigMap>::all(client.clone()),
            own_children,
            by_partner_label,
        )
        // A server admitted, resized or deleted changes its partner's usage.
        .watches(
            Api::<VirtualServer>::all(client.clone()),
            watcher::Config::default(),
            move |server| {
                let ns = server.namespace().unwrap_or_default();
                store
                    .state()
                    .into_iter()
                    .filter(|p| fetch::targets(p).iter().any(|t| t.namespace == ns))
                    .map(|p| ObjectRef::from_obj(&*p))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "partner account controller event");
            }
        })
        .await;
}

async fn reconcile(partner: Arc<PartnerAccount>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api = Api::<PartnerAccount>::all(ctx.client.clone());
    finalizer::finalizer(&api, FINALIZER, partner, |event| async {
        match event {
            Event::Apply(partner) => converge(&partner, &ctx).await,
            Event::Cleanup(partner) => {
                apply::cleanup(&ctx.client, &partner)
                    .await
                    .map_err(Error::Cleanup)?;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// fetch → validate → build → apply → status.
async fn converge(partner: &PartnerAccount, ctx: &Context) -> Result<Action, Error> {
    let observed = fetch::observe(&ctx.client, partner).await?;
    let targets = fetch::targets(partner);
    let refusals = validate::refusals(
        &partner.name_any(),
        &targets,
        fetch::partner_namespace(partner).as_deref(),
        &observed.existing,
    );
    let (outcome, failure) = match build::build(partner, &ctx.settings.cluster_network) {
        // A spec that cannot be built waits for a change to the spec.
        Err(error) => (failed(build_reason(&error), error.to_string()), None),
        Ok(children) => {
            let children = validate::without_refused(children, &refusals);
            match apply::apply_children(&ctx.client, partner, children, &observed.labelled).await {
                Err(error) => (failed("ApplyFailed", reporter::chain(&error)), Some(error)),
                Ok(()) if refusals.is_empty() => (Outcome::Applied, None),
                Ok(()) => (
                    failed(validate::NAMESPACE_TAKEN, validate::message(&refusals)),
                    None,
                ),
            }
        }
    };
    let counted: Vec<_> = targets
        .into_iter()
        .filter(|t| !refusals.iter().any(|r| r.namespace == t.namespace))
        .collect();
    let new_status = status::compute(partner, &counted, &observed.servers, &outcome, &ctx.now());
    if status::changed(partner.status.as_ref(), &new_status) {
        // Server-side apply of the whole status: a list that became empty
        // (the last client removed) is removed too, which a merge patch
        // would leave behind.
        let patch = serde_json::json!({
            "apiVersion": PartnerAccount::api_version(&()),
            "kind": PartnerAccount::kind(&()),
            "status": new_status,
        });
        Api::<PartnerAccount>::all(ctx.client.clone())
            .patch_status(
                &partner.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(Error::Status)?;
    }
    if let Some(error) = failure {
        return Err(error.into());
    }
    Ok(Action::requeue(ctx.settings.resync))
}

fn failed(reason: &str, message: String) -> Outcome {
    Outcome::Failed {
        reason: reason.to_string(),
        message,
    }
}

/// The `Ready` reason of a spec that cannot be built.
fn build_reason(error: &BuildError) -> &'static str {
    match error {
        BuildError::MissingMetadata(_) => "BuildFailed",
        BuildError::Naming(_) => "InvalidNamespace",
        BuildError::Quota(_) => "InvalidQuota",
        BuildError::MissingBranding => "MissingBranding",
    }
}

fn error_policy(partner: Arc<PartnerAccount>, error: &Error, ctx: Arc<Context>) -> Action {
    reporter::failed(&ctx.recorder, partner, error.reason(), error)
}

/// PartnerAccounts for unit tests, read from YAML as the API server would
/// return them (with a uid and a generation).
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::api::PartnerAccount;

    /// White label, `deletionPolicy: Retain` (default), two clients.
    pub const WHITE_LABEL: &str = include_str!("fixtures/white_label.yaml");
    /// Consolidated, `deletionPolicy: Delete`, a migrated and suspended
    /// client, a service-account admin, no pool.
    pub const CONSOLIDATED_DELETE: &str = include_str!("fixtures/consolidated_delete.yaml");

    pub fn partner(yaml: &str) -> PartnerAccount {
        serde_saphyr::from_str(yaml).expect("fixture parses as a PartnerAccount")
    }
}
