//! The VirtualServer controller: fetch → validate → admission → build →
//! apply → status.
//!
//! Admission ([`admission`]) decides a server in a partner's client
//! namespace against its client's quota and its partner's pool, serialised
//! per partner, and applies the client's or partner's suspension to its
//! power; a refused server is reported as blocked and not built.
//!
//! No finalizer: every child is removed by garbage collection through its
//! owner reference, except disks under `deletionPolicy: Retain`, which carry
//! no owner reference at all. Deleting a server therefore never waits on a
//! stuck child.

pub mod admission;
pub mod apply;
pub mod build;
pub mod fetch;
pub mod plan;
pub mod status;
#[cfg(test)]
mod tests;
pub mod validate;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use self::plan::{Blocked, reason};
use self::status::StatusInput;
use super::context::Context;
use super::labels;
use super::reporter;
use crate::api::{PartnerAccount, ServerTemplate, VirtualServer};
use crate::controllers::apply::ApplyError;
use crate::controllers::ownership::OwnershipError;
use crate::controllers::partner_account::naming;
use crate::kubevirt::{DataVolume, VirtualMachine, VirtualMachineInstance, VirtualMachineSnapshot};

/// One variant per pipeline stage; the names become event reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error("deciding quota admission: {0}")]
    Admission(#[from] admission::AdmissionError),
    #[error("building children: {0}")]
    Build(#[from] OwnershipError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("writing status: {0}")]
    Status(#[source] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "FetchFailed",
            Self::Admission(_) => "AdmissionFailed",
            Self::Build(_) => "BuildFailed",
            Self::Apply(_) => "ApplyFailed",
            Self::Status(_) => "StatusFailed",
        }
    }
}

/// Maps a labelled child back to its server.
fn by_server_label<K: Resource<DynamicType = ()>>(child: K) -> Option<ObjectRef<VirtualServer>> {
    let name = child.meta().labels.as_ref()?.get(labels::SERVER)?.clone();
    Some(ObjectRef::new(&name).within(child.meta().namespace.as_deref()?))
}

/// Remembers the last `metadata.generation` seen per object, to tell spec
/// changes from status-only ones (a custom resource's generation moves only
/// with its spec).
#[derive(Default)]
struct GenerationFilter(std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>);

impl GenerationFilter {
    /// Whether `generation` of `name` is new (always, the first time).
    fn seen(&self, name: &str, generation: Option<i64>) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(name.to_string(), generation) != Some(generation)
    }
}

/// Runs the controller until the watch streams end.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default().labels(&labels::managed_selector());
    let servers = Api::<VirtualServer>::all(client.clone());
    let controller = Controller::new(servers, watcher::Config::default());
    let store = controller.store();
    let partner_store = store.clone();
    let namespace_store = store.clone();
    let spec_changed = GenerationFilter::default();
    controller
        .with_config(ControllerConfig::default().concurrency(ctx.settings.concurrency))
        .watches(
            Api::<VirtualMachine>::all(client.clone()),
            managed.clone(),
            by_server_label,
        )
        .watches(
            Api::<VirtualMachineInstance>::all(client.clone()),
            managed.clone(),
            by_server_label,
        )
        .watches(
            Api::<DataVolume>::all(client.clone()),
            managed.clone(),
            by_server_label,
        )
        .watches(
            Api::<Service>::all(client.clone()),
            managed.clone(),
            by_server_label,
        )
        .watches(
            Api::<NetworkPolicy>::all(client.clone()),
            managed.clone(),
            by_server_label,
        )
        .watches(
            Api::<VirtualMachineSnapshot>::all(client.clone()),
            managed,
            by_server_label,
        )
        // A client namespace let go by its partner account (labelled
        // orphaned) or taken back concerns every server in it, at once: the
        // account no longer names a client removed from it, so the watch
        // below would not wake them.
        .watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default().labels(labels::PARTNER),
            move |namespace| {
                let name = namespace.name_any();
                namespace_store
                    .state()
                    .into_iter()
                    .filter(|s| s.namespace().as_deref() == Some(name.as_str()))
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        // A template becoming ready (or going away) concerns the servers
        // that deploy from it.
        .watches(
            Api::<ServerTemplate>::all(client.clone()),
            watcher::Config::default(),
            move |template| {
                let (tns, tname) = (
                    template.namespace().unwrap_or_default(),
                    template.name_any(),
                );
                store
                    .state()
                    .into_iter()
                    .filter(|s| {
                        s.spec.source.template.as_ref().is_some_and(|t| {
                            t.name == tname
                                && t.namespace
                                    .clone()
                                    .unwrap_or_else(|| s.namespace().unwrap_or_default())
                                    == tns
                        })
                    })
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        // A partner's quota or suspension changing concerns every server in
        // its client namespaces (a suspension halts them; a larger quota may
        // admit a refused one). Only spec changes matter: the partner's status
        // moves with every admission and would wake all its servers.
        .watches(
            Api::<PartnerAccount>::all(client.clone()),
            watcher::Config::default(),
            move |partner| {
                let name = partner.name_any();
                if !spec_changed.seen(&name, partner.metadata.generation) {
                    return Vec::new();
                }
                let namespaces: Vec<String> = partner
                    .spec
                    .clients
                    .iter()
                    .filter_map(|c| naming::client_namespace(&name, c).ok())
                    .collect();
                partner_store
                    .state()
                    .into_iter()
                    .filter(|s| namespaces.contains(&s.namespace().unwrap_or_default()))
                    .map(|s| ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "virtual server controller event");
            }
        })
        .await;
}

async fn reconcile(server: Arc<VirtualServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    if server.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the children; nothing to wait for.
        return Ok(Action::await_change());
    }
    let mut observed = fetch::observe(&ctx.client, &server).await?;
    let mut decision = validate::plan(&server, &observed, &ctx.settings.image_mirrors);
    let ns = server.namespace().unwrap_or_default();
    let tenant = admission::tenant(&ns, &observed);
    let orphaned = admission::orphaned(&observed);
    let power = admission::power(server.spec.power_state, tenant.as_ref(), orphaned);
    if orphaned && decision.is_ok() {
        decision = Err(admission::orphaned_refusal(&ns));
    }
    let mut admitted = server.status.as_ref().and_then(|s| s.admitted.clone());
    if let Ok(plan) = &decision {
        let verdict = admission::admit(&ctx, &server, plan, tenant.as_ref()).await?;
        admitted = verdict.admitted;
        if let Some(refused) = verdict.refused {
            decision = Err(refused);
        }
    }
    match &decision {
        Ok(plan) => {
            let children = build::build(&server, plan, power.state)?;
            if let Err(error) =
                apply::apply_children(&ctx.client, &server, children, &mut observed).await
            {
                match quota_refusal(&error) {
                    Some(blocked) => decision = Err(blocked),
                    None => return Err(error.into()),
                }
            }
        }
        Err(_) if power.suspended_by.is_some() || orphaned => {
            apply::halt(&ctx.client, &mut observed).await?
        }
        Err(_) => {}
    }
    let now = ctx.now();
    let new_status = status::compute(
        &server,
        &StatusInput {
            observed: &observed,
            plan: decision.as_ref(),
            power: power.state,
            suspended_by: power.suspended_by,
            admitted: admitted.as_ref(),
            import_retry_limit: ctx.settings.import_retry_limit,
            now: &now,
        },
    );
    if status::changed(server.status.as_ref(), &new_status) {
        let api = Api::<VirtualServer>::namespaced(
            ctx.client.clone(),
            &server.namespace().unwrap_or_default(),
        );
        // Fields that became empty (the address of a stopped server, the
        // endpoints of removed exposures) are sent as null.
        let patch =
            crate::controllers::status_patch::merge_patch(server.status.as_ref(), &new_status);
        crate::controllers::writes::record(&crate::controllers::writes::key(
            "VirtualServer",
            &server.namespace().unwrap_or_default(),
            &server.name_any(),
        ));
        match api
            .patch_status(
                &server.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            // Deleted while this pass ran: nothing left to report on.
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(Error::Status(e)),
        }
    }
    let ready = new_status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Ok(if ready {
        Action::requeue(ctx.settings.resync)
    } else {
        Action::requeue(ctx.settings.requeue_waiting)
    })
}

/// Apply failures that are the user's to fix, reported in status rather
/// than retried blindly: a namespace ResourceQuota refusing a child becomes
/// `QuotaExceeded` with the API server's own words (requested, used,
/// limited); a derived name already held by another server becomes
/// `NameConflict`.
fn quota_refusal(error: &ApplyError) -> Option<Blocked> {
    if let ApplyError::Taken { .. } = error {
        return Some(Blocked::new(reason::NAME_CONFLICT, error.to_string()));
    }
    let status = error.api_status()?;
    (status.code == 403 && status.message.contains("exceeded quota"))
        .then(|| Blocked::new(reason::QUOTA_EXCEEDED, status.message.clone()))
}

fn error_policy(server: Arc<VirtualServer>, error: &Error, ctx: Arc<Context>) -> Action {
    reporter::failed(&ctx.recorder, server, error.reason(), error)
}

#[cfg(test)]
mod generation_tests {
    use super::GenerationFilter;

    #[test]
    fn only_a_new_generation_passes() {
        let filter = GenerationFilter::default();
        assert!(filter.seen("alfa", Some(1)), "first sight");
        assert!(!filter.seen("alfa", Some(1)), "status-only change");
        assert!(filter.seen("alfa", Some(2)), "spec change");
        assert!(filter.seen("beta", Some(2)), "per object");
    }
}
