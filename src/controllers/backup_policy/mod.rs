//! The BackupPolicy controller: fetch → validate → plan (pure) → write →
//! status.
//!
//! The decisions are pure and live in their own modules; nothing in them
//! talks to the API server, reads the clock or does I/O. Every function
//! takes the time it needs and the state the driver already fetched, and
//! returns what should happen, so the behaviour is tested without waiting
//! and without a cluster:
//!
//! - [`schedule`]: `spec.schedule` in `spec.timeZone`, its slots and DST.
//! - [`decision`]: whether a slot runs now, what was missed, when to wake.
//! - [`run_now`]: the explicit "run now" annotation.
//! - [`overlap`]: which servers start a slot and which are still busy.
//! - [`naming`]: snapshot and restore-drill names, labels, annotations.
//! - [`outcome`]: a snapshot's observed status judged into a backup outcome.
//! - [`judge`]: a listed snapshot read back into a judged backup.
//! - [`drill`]: where a restore drill in flight stands, and its verdict.
//! - [`servers`]: which servers are selected, read from, shown `lastBackup`.
//! - [`retention`]: grandfather-father-son selection of what to delete.
//! - [`health`]: runs judged into consecutive failures; `Healthy`.
//! - [`plan`]: one pass, decided — everything to write, and the status.
//! - [`build`]: the snapshot and drill server a pass creates.
//! - [`status`]: the status and whether it changed.
//! - [`backup`] and [`kube_time`]: the shared input type and time conversion.
//!
//! Around them the driver: [`fetch`], [`validate`], [`apply`] (the writes)
//! and [`cleanup`] (what deleting the policy does to its backups).

pub mod apply;
pub mod backup;
pub mod build;
pub mod cleanup;
pub mod decision;
pub mod drill;
pub mod fetch;
pub mod health;
pub mod judge;
pub mod kube_time;
pub mod naming;
pub mod outcome;
pub mod overlap;
pub mod plan;
pub mod retention;
pub mod run_now;
pub mod schedule;
pub mod servers;
pub mod status;
pub mod validate;

#[cfg(test)]
mod tests_support;

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use self::plan::Pass;
use super::context::Context;
use super::reporter;
use crate::api::{BackupPolicy, VirtualServer};
use crate::controllers::apply::ApplyError;
use crate::controllers::ownership::OwnershipError;
use crate::kubevirt::VirtualMachineSnapshot;

/// One variant per pipeline stage; the names become event reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error("building a restore drill: {0}")]
    Build(#[from] OwnershipError),
    #[error(transparent)]
    Write(#[from] apply::WriteError),
    #[error("deleting the policy's backups: {0}")]
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
            Self::Build(_) => "BuildFailed",
            Self::Write(_) => "WriteFailed",
            Self::Cleanup(_) => "CleanupFailed",
            Self::Status(_) => "StatusFailed",
            Self::Finalizer(inner) => match &**inner {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e.reason(),
                _ => "FinalizerFailed",
            },
        }
    }
}

/// The policies in `namespace` (from the controller's cache).
fn policies_in(
    store: &Store<BackupPolicy>,
    namespace: Option<&str>,
) -> Vec<ObjectRef<BackupPolicy>> {
    store
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == namespace)
        .map(|p| ObjectRef::from_obj(&*p))
        .collect()
}

/// Runs the controller until the watch streams end.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<BackupPolicy>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    let for_snapshots = store.clone();
    controller
        .with_config(ControllerConfig::default().concurrency(ctx.settings.concurrency))
        // A backup changing (progress, ready, deleted) concerns its policy,
        // found by the label value its name became.
        .watches(
            Api::<VirtualMachineSnapshot>::all(client.clone()),
            watcher::Config::default().labels(naming::POLICY_LABEL),
            move |snapshot: VirtualMachineSnapshot| {
                let label = snapshot.labels().get(naming::POLICY_LABEL).cloned();
                policies_in(&for_snapshots, snapshot.namespace().as_deref())
                    .into_iter()
                    .filter(move |p| Some(naming::label_value(&p.name)) == label)
            },
        )
        // A server appearing, changing labels, finishing its disks, a drill
        // becoming Ready, a restore finishing with a backup: each may
        // change what a policy of the namespace does. Policies per
        // namespace are few, so all of them look.
        .watches(
            Api::<VirtualServer>::all(client.clone()),
            watcher::Config::default(),
            move |server: VirtualServer| policies_in(&store, server.namespace().as_deref()),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "backup policy controller event");
            }
        })
        .await;
}

async fn reconcile(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !cleanup::uses_finalizer(&policy) {
        if policy.meta().deletion_timestamp.is_some() {
            // Retain: the backups stay; drill servers go by GC.
            return Ok(Action::await_change());
        }
        return pass(&policy, &ctx).await;
    }
    let api = Api::<BackupPolicy>::namespaced(
        ctx.client.clone(),
        &policy.namespace().unwrap_or_default(),
    );
    finalizer(&api, cleanup::FINALIZER, policy, |event| async {
        match event {
            finalizer::Event::Apply(policy) => pass(&policy, &ctx).await,
            finalizer::Event::Cleanup(policy) => {
                let deleted = cleanup::cleanup(&ctx.client, &policy)
                    .await
                    .map_err(Error::Cleanup)?;
                tracing::info!(policy = %policy.name_any(), deleted = deleted.len(), "deleted the policy's backups");
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// One pass over a policy that is not being deleted.
async fn pass(cached: &BackupPolicy, ctx: &Context) -> Result<Action, Error> {
    let Some(policy) = fetch::fresh(&ctx.client, cached).await? else {
        return Ok(Action::await_change());
    };
    let now = kube_time::to_utc(&ctx.now());
    let valid = match validate::validate(&policy) {
        Ok(valid) => valid,
        Err(invalid) => {
            let new_status =
                status::invalid(&policy, &invalid, plan::observed_schedule(&policy), now);
            write_status(ctx, &policy, &new_status).await?;
            // Only an edit can fix it, and the watch delivers edits.
            return Ok(Action::requeue(ctx.settings.resync));
        }
    };
    let observed = fetch::observe(&ctx.client, &policy).await?;
    let Pass {
        writes,
        status: new_status,
        notes,
        wake,
    } = plan::plan(&policy, &valid, &observed, now)?;
    apply::write(&ctx.client, &policy, writes).await?;
    for note in notes {
        let type_ = if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        reporter::report_event(&ctx.recorder, &policy, type_, note.reason, note.message).await;
    }
    write_status(ctx, &policy, &new_status).await?;
    let until_slot = wake
        .next_slot
        .map_or(ctx.settings.resync, |d| d.min(ctx.settings.resync));
    Ok(Action::requeue(if wake.waiting {
        until_slot.min(ctx.settings.requeue_waiting)
    } else {
        until_slot
    }))
}

async fn write_status(
    ctx: &Context,
    policy: &BackupPolicy,
    new_status: &crate::api::BackupPolicyStatus,
) -> Result<(), Error> {
    if !status::changed(policy.status.as_ref(), new_status) {
        return Ok(());
    }
    let api = Api::<BackupPolicy>::namespaced(
        ctx.client.clone(),
        &policy.namespace().unwrap_or_default(),
    );
    let patch = status::patch(policy.status.as_ref(), new_status);
    api.patch_status(
        &policy.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Status)?;
    Ok(())
}

fn error_policy(policy: Arc<BackupPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    reporter::failed(&ctx.recorder, policy, error.reason(), error)
}
