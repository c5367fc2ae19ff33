//! The ServerTemplate controller: fetch → check the image's digest →
//! validate → build → apply → status.
//!
//! A template's golden image is a CDI DataVolume per version of its source
//! (imported from a URL, or restored from a hot VM snapshot of a configured
//! server), published through a CDI DataSource named like the template that
//! new server disks clone from. With `sha256`, the operator downloads the
//! image itself to check it (see [`verify`]) before publishing. Sharing is
//! enforced twice: the VirtualServer controller refuses a server in a
//! namespace the template is not shared with (`TemplateNotShared`), and CDI's
//! clone permission is granted here to exactly the namespaces allowed.
//!
//! No finalizer: every child is owned by the template and removed by
//! garbage collection. Servers deployed from it are not children — their
//! disks are independent clones — so deleting a template never touches
//! them; new servers naming it report `TemplateNotFound`.

pub mod apply;
pub mod build;
pub mod fetch;
pub mod plan;
pub mod status;
pub mod usage;
pub mod validate;
pub mod verify;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use self::validate::PlanInput;
use self::verify::Verifier;
use super::context::Context;
use super::labels;
use super::reporter;
use crate::api::server_template::{SharingScope, TemplatePhase};
use crate::api::{ServerTemplate, VirtualServer};
use crate::controllers::apply::ApplyError;
use crate::controllers::ownership::OwnershipError;
use crate::kubevirt::{DataSource, DataVolume, VirtualMachineSnapshot};

/// One variant per pipeline stage; the names become event reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
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
            Self::Build(_) => "BuildFailed",
            Self::Apply(_) => "ApplyFailed",
            Self::Status(_) => "StatusFailed",
        }
    }
}

/// Shared by every reconcile of this controller.
pub struct State {
    pub ctx: Arc<Context>,
    /// Checksum downloads, bounded and off the reconcile path.
    pub verifier: Verifier,
    /// Every VirtualServer, for `usedBy`.
    pub servers: Store<VirtualServer>,
}

/// Maps a template's labelled child back to its template.
fn by_template_label<K: Resource<DynamicType = ()>>(child: K) -> Option<ObjectRef<ServerTemplate>> {
    let name = labels::template_of(child.meta().labels.as_ref()?)?.to_string();
    Some(ObjectRef::new(&name).within(child.meta().namespace.as_deref()?))
}

/// The templates a server concerns: the one it deploys from (its `usedBy`)
/// and those capturing it (they wait for it to run).
fn templates_of(
    server: &VirtualServer,
    templates: &Store<ServerTemplate>,
) -> Vec<ObjectRef<ServerTemplate>> {
    let ns = server.namespace().unwrap_or_default();
    let mut refs: Vec<ObjectRef<ServerTemplate>> = server
        .spec
        .source
        .template
        .iter()
        .map(|t| ObjectRef::new(&t.name).within(t.namespace.as_deref().unwrap_or(&ns)))
        .collect();
    refs.extend(
        templates
            .state()
            .iter()
            .filter(|t| {
                t.namespace().as_deref() == Some(ns.as_str())
                    && t.spec
                        .source
                        .server
                        .as_ref()
                        .is_some_and(|c| c.name == server.name_any())
            })
            .map(|t| ObjectRef::from_obj(&**t)),
    );
    refs
}

/// Runs the controller until the watch streams end.
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default().labels(&labels::managed_selector());
    let controller = Controller::new(
        Api::<ServerTemplate>::all(client.clone()),
        watcher::Config::default(),
    );
    let templates = controller.store();

    // One watch of every server feeds `usedBy` (from its store) and wakes
    // the templates a server concerns.
    let (servers, writer) = reflector::store();
    let (server_tx, server_rx) = futures::channel::mpsc::unbounded();
    let server_api = Api::<VirtualServer>::all(client.clone());
    let for_servers = templates.clone();
    let server_watch = tokio::spawn(async move {
        let mut events = watcher(server_api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .touched_objects()
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(server) => {
                    for template in templates_of(&server, &for_servers) {
                        let _ = server_tx.unbounded_send(template);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "server watch for templates"),
            }
        }
    });
    // usedBy is right from the first pass, not 0 until servers are listed.
    if servers.wait_until_ready().await.is_err() {
        tracing::error!("the server watch ended before listing; templates are not reconciled");
        return;
    }

    let (wake_tx, wake_rx) = futures::channel::mpsc::unbounded();
    let state = Arc::new(State {
        verifier: Verifier::new(
            ctx.settings.checksum_concurrency,
            ctx.settings.checksum_timeout,
            wake_tx,
        ),
        servers,
        ctx: ctx.clone(),
    });
    let selector_templates = templates.clone();
    controller
        .with_config(ControllerConfig::default().concurrency(ctx.settings.concurrency))
        .watches(
            Api::<DataVolume>::all(client.clone()),
            managed.clone(),
            by_template_label,
        )
        .watches(
            Api::<DataSource>::all(client.clone()),
            managed.clone(),
            by_template_label,
        )
        .watches(
            Api::<VirtualMachineSnapshot>::all(client.clone()),
            managed,
            by_template_label,
        )
        // Who a selector shares with changes with namespaces and their labels.
        .watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            move |_| {
                selector_templates
                    .state()
                    .iter()
                    .filter(|t| t.spec.sharing.scope == SharingScope::Selector)
                    .map(|t| ObjectRef::from_obj(&**t))
                    .collect::<Vec<_>>()
            },
        )
        .reconcile_on(wake_rx)
        .reconcile_on(server_rx)
        .shutdown_on_signal()
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "server template controller event");
            }
        })
        .await;
    server_watch.abort();
}

async fn reconcile(template: Arc<ServerTemplate>, state: Arc<State>) -> Result<Action, Error> {
    if template.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the children; nothing to wait for.
        return Ok(Action::await_change());
    }
    let ctx = &state.ctx;
    let settings = &ctx.settings;
    let observed = fetch::observe(&ctx.client, &template).await?;
    let checksum = state.verifier.check(&template, &settings.image_mirrors);
    let plan = validate::plan(
        &template,
        &PlanInput {
            observed: &observed,
            checksum: &checksum,
            mirrors: &settings.image_mirrors,
            import_retry_limit: settings.import_retry_limit,
        },
    );
    let children = build::build(&template, &plan)?;
    apply::apply_children(&ctx.client, &template, children).await?;

    let used_by = usage::used_by(&template, &state.servers.state());
    let new_status = status::compute(&template, &plan, used_by, &ctx.now());
    if status::changed(template.status.as_ref(), &new_status) {
        Api::<ServerTemplate>::namespaced(
            ctx.client.clone(),
            &template.namespace().unwrap_or_default(),
        )
        .patch_status(
            &template.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status::merge_patch(template.status.as_ref(), &new_status)),
        )
        .await
        .map_err(Error::Status)?;
    }
    // Settled (ready, or failed until something changes, which the watches
    // see) → resync; in progress → look again soon for progress.
    Ok(match plan.stage.phase {
        TemplatePhase::Ready | TemplatePhase::Failed => Action::requeue(settings.resync),
        _ => Action::requeue(settings.requeue_waiting),
    })
}

fn error_policy(template: Arc<ServerTemplate>, error: &Error, state: Arc<State>) -> Action {
    reporter::failed(&state.ctx.recorder, template, error.reason(), error)
}

/// Templates and observed objects for unit tests, from YAML as the API
/// server would return them.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::fetch::Observed;
    use crate::api::{ServerTemplate, VirtualServer};
    use crate::kubevirt::{
        DataSource, DataVolume, VirtualMachineSnapshot, VirtualMachineSnapshotContent,
    };

    /// Imported with a digest, shared by a namespace selector.
    pub const IMAGE: &str =
        include_str!("../../../tests/fixtures/server_template/image_template.yaml");
    /// Captured from the server below.
    pub const CAPTURE: &str =
        include_str!("../../../tests/fixtures/server_template/capture_template.yaml");
    pub const SOURCE_SERVER: &str =
        include_str!("../../../tests/fixtures/server_template/source_server.yaml");
    pub const CAPTURE_SNAPSHOT: &str =
        include_str!("../../../tests/fixtures/server_template/capture_snapshot.yaml");
    pub const CAPTURE_CONTENT: &str =
        include_str!("../../../tests/fixtures/server_template/capture_content.yaml");

    pub fn template(yaml: &str) -> ServerTemplate {
        serde_saphyr::from_str(yaml).expect("fixture parses as a ServerTemplate")
    }

    pub fn server(yaml: &str) -> VirtualServer {
        serde_saphyr::from_str(yaml).expect("fixture parses as a VirtualServer")
    }

    pub fn snapshot() -> VirtualMachineSnapshot {
        serde_saphyr::from_str(CAPTURE_SNAPSHOT).expect("fixture parses as a snapshot")
    }

    pub fn content() -> VirtualMachineSnapshotContent {
        serde_saphyr::from_str(CAPTURE_CONTENT).expect("fixture parses as snapshot content")
    }

    /// A golden DataVolume as CDI reports it.
    pub fn golden(
        name: &str,
        namespace: &str,
        phase: &str,
        progress: &str,
        restarts: i32,
    ) -> DataVolume {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"partnercloud.io/role": "golden-image"}},
            "spec": {"source": {"http": {"url": format!("https://images.partnercloud.example/images/{name}.qcow2")}},
                     "storage": {"resources": {"requests": {"storage": "100Gi"}}}},
            "status": {"phase": phase, "progress": progress, "restartCount": restarts,
                       "conditions": [{"type": "Running", "status": "False", "reason": "Error",
                                        "message": "Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found"}]}
        }))
        .expect("a DataVolume")
    }

    /// The template's DataSource, Ready, pointing at `claim`.
    pub fn data_source(name: &str, namespace: &str, claim: &str) -> DataSource {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataSource",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": {"pvc": {"namespace": namespace, "name": claim}}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}
        }))
        .expect("a DataSource")
    }

    pub fn nothing() -> Observed {
        Observed::default()
    }
}
