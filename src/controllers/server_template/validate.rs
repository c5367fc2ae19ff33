//! Validate what admission could not — the server a capture is taken from,
//! the downloaded image's digest — and decide the [`Plan`]: which golden
//! image versions to keep, what to publish, and where the current version
//! stands. Pure: the caller supplies what was observed.
//!
//! Publishing follows one rule: the DataSource points at the current
//! version once it is complete (imported and, with `sha256`, verified; or
//! captured); while the current version is still being made it keeps
//! pointing at the previously published one; when the current version
//! failed (import failed, checksum mismatch, capture impossible) nothing is
//! published, so no server is deployed from an image the spec no longer
//! vouches for. The previously published golden disk is kept until a newer
//! one is published, so reverting `spec.source` republishes it at once.

use kube::ResourceExt;

use super::build::names;
use super::fetch::Observed;
use super::plan::{CaptureSnapshot, Golden, GoldenContent, Plan, Stage, reason};
use super::verify::Check;
use crate::api::ServerTemplate;
use crate::api::quantity::{Bytes, parse_bytes};
use crate::api::server_template::{ChecksumStatus, ServerCapture, SharingScope, TemplatePhase};
use crate::api::virtual_server::{ImageSource, ServerPhase};
use crate::controllers::mirror::{ImageMirror, rewrite};
use crate::controllers::names::template_data_source;
use crate::controllers::virtual_server::build::names as server_names;
use crate::controllers::virtual_server::status::dv_failure;
use crate::kubevirt::{DataSource, DataVolume, condition};

/// The RBAC group of every service account, and of one namespace's.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// Inputs that are not the template itself.
pub struct PlanInput<'a> {
    pub observed: &'a Observed,
    pub checksum: &'a Check,
    pub mirrors: &'a [ImageMirror],
    pub import_retry_limit: i32,
}

/// How far the current version got.
enum Progress {
    Done,
    Working(Stage),
    Failed(Stage),
}

/// The current version: its golden disk, its capture, and its progress.
struct Current {
    golden: Option<Golden>,
    capture: Option<CaptureSnapshot>,
    checksum: Option<ChecksumStatus>,
    progress: Progress,
}

impl Current {
    fn failed(stage: Stage) -> Self {
        Self {
            golden: None,
            capture: None,
            checksum: None,
            progress: Progress::Failed(stage),
        }
    }
}

pub fn plan(template: &ServerTemplate, input: &PlanInput<'_>) -> Plan {
    let ns = template.namespace().unwrap_or_default();
    let name = template.name_any();
    let spec = &template.spec;
    let hash = names::version(&spec.source, &ns);
    let version = names::golden(&name, &hash);
    let observed = input.observed;
    let existing = observed.golden_volume(&version);

    let current = match (
        &spec.source.image,
        &spec.source.server,
        parse_bytes(&spec.disk_size.0),
    ) {
        (_, _, Err(e)) => Current::failed(Stage::new(
            TemplatePhase::Failed,
            reason::INVALID_SPEC,
            format!("spec.diskSize: {e}"),
        )),
        (Some(image), _, Ok(_)) => imported(image, &version, existing, input),
        (None, Some(capture), Ok(disk_bytes)) => {
            captured(capture, &ns, &name, &hash, existing, disk_bytes, input)
        }
        (None, None, Ok(_)) => Current::failed(Stage::new(
            TemplatePhase::Failed,
            reason::INVALID_SPEC,
            "spec.source sets neither image nor server",
        )),
    };

    let previous = template
        .status
        .as_ref()
        .and_then(|s| s.published_volume.clone())
        .filter(|p| *p != version)
        .and_then(|p| observed.golden_volume(&p))
        .map(|dv| Golden {
            name: dv.name_any(),
            content: GoldenContent::Existing(Box::new(dv.spec.clone())),
        });
    let publish = match &current.progress {
        Progress::Done => Some(version.clone()),
        Progress::Working(_) => previous.as_ref().map(|p| p.name.clone()),
        Progress::Failed(_) => None,
    };
    let stage = match current.progress {
        Progress::Working(stage) | Progress::Failed(stage) => stage,
        Progress::Done => published_stage(template, &version, observed.data_source.as_ref()),
    };

    Plan {
        golden: current.golden,
        previous,
        capture: current.capture,
        publish,
        clone_groups: clone_groups(template, observed),
        generalize: spec.source.server.as_ref().map(|s| s.generalize),
        checksum: current.checksum,
        stage,
        version,
    }
}

/// Who besides the template's own namespace may clone its image, as RBAC
/// groups: every service account for `All`, each selected namespace's for
/// `Selector`, nobody for `Namespace` (same-namespace clones need no grant).
fn clone_groups(template: &ServerTemplate, observed: &Observed) -> Vec<String> {
    let ns = template.namespace().unwrap_or_default();
    match template.spec.sharing.scope {
        SharingScope::Namespace => Vec::new(),
        SharingScope::All => vec![ALL_SERVICE_ACCOUNTS.to_string()],
        SharingScope::Selector => observed
            .selected_namespaces
            .iter()
            .filter(|n| **n != ns)
            .map(|n| format!("{ALL_SERVICE_ACCOUNTS}:{n}"))
            .collect(),
    }
}

fn succeeded(dv: &DataVolume) -> bool {
    dv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
}

fn dv_progress(dv: Option<&DataVolume>) -> Option<String> {
    dv.and_then(|d| d.status.as_ref())
        .and_then(|s| s.progress.clone())
        .filter(|p| p != "N/A" && !p.is_empty())
}

fn percent(value: f64) -> String {
    format!("{value:.1}%")
}

/// The URL as written, and where it is really fetched from when a mirror
/// rewrites it.
fn describe_url(url: &str, fetched: &str) -> String {
    if url == fetched {
        url.to_string()
    } else {
        format!("{url} (mirror {fetched})")
    }
}

fn imported(
    image: &ImageSource,
    version: &str,
    existing: Option<&DataVolume>,
    input: &PlanInput<'_>,
) -> Current {
    let fetched = rewrite(input.mirrors, &image.url);
    let url = describe_url(&image.url, &fetched);
    let known = match input.checksum {
        Check::Known(known) => Some(known.clone()),
        _ => None,
    };
    if let Some(k) = known.as_ref().filter(|k| k.actual != k.expected) {
        return Current {
            checksum: Some(k.clone()),
            ..Current::failed(Stage::new(
                TemplatePhase::Failed,
                reason::CHECKSUM_MISMATCH,
                format!(
                    "the SHA-256 of {url} is {}, but spec.source.image.sha256 expects {}; the image is not published (fix the URL or the digest)",
                    k.actual, k.expected
                ),
            ))
        };
    }
    let golden = Some(Golden {
        name: version.to_string(),
        content: match existing {
            Some(dv) => GoldenContent::Existing(Box::new(dv.spec.clone())),
            None => GoldenContent::Http {
                url: fetched.clone(),
            },
        },
    });
    let current = |progress| Current {
        golden: golden.clone(),
        capture: None,
        checksum: known.clone(),
        progress,
    };
    if let Some(why) = existing.and_then(|dv| dv_failure(dv, input.import_retry_limit)) {
        return current(Progress::Failed(Stage::new(
            TemplatePhase::Failed,
            reason::IMPORT_FAILED,
            format!("importing {url} into {version}: {why}"),
        )));
    }
    let check = input.checksum;
    if !existing.is_some_and(succeeded) {
        let progress = dv_progress(existing);
        let verifying = match check {
            Check::NotRequested => String::new(),
            Check::Known(_) => "; SHA-256 verified".into(),
            Check::Queued => "; its SHA-256 check waits for a download slot".into(),
            Check::Running { .. } => format!(
                "; verifying its SHA-256{}",
                check
                    .percent()
                    .map(|p| format!(" ({})", percent(p)))
                    .unwrap_or_default()
            ),
            Check::Unavailable(e) => {
                format!("; reading it for the SHA-256 check failed ({e}), retrying")
            }
        };
        let message = format!(
            "importing {url} into {version}{}{verifying}",
            progress
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        );
        return current(Progress::Working(
            Stage::new(TemplatePhase::Importing, reason::IMPORTING, message)
                .with_progress(progress),
        ));
    }
    let verifying = |message: String| {
        Progress::Working(
            Stage::new(TemplatePhase::Verifying, reason::VERIFYING, message)
                .with_progress(check.percent().map(percent)),
        )
    };
    current(match check {
        Check::NotRequested | Check::Known(_) => Progress::Done,
        Check::Queued => verifying(format!(
            "imported; waiting for a download slot to verify the SHA-256 of {url}"
        )),
        Check::Running { read, .. } => verifying(format!(
            "imported; verifying the SHA-256 of {url} ({} read)",
            Bytes(*read)
        )),
        Check::Unavailable(e) => verifying(format!(
            "imported, but reading {url} to verify its SHA-256 failed ({e}); retrying"
        )),
    })
}

fn captured(
    capture: &ServerCapture,
    ns: &str,
    template: &str,
    hash: &str,
    existing: Option<&DataVolume>,
    disk_bytes: u64,
    input: &PlanInput<'_>,
) -> Current {
    let server_ns = capture.namespace.as_deref().unwrap_or(ns);
    if server_ns != ns {
        return Current::failed(Stage::new(
            TemplatePhase::Failed,
            reason::SOURCE_IN_OTHER_NAMESPACE,
            format!(
                "spec.source.server.namespace {server_ns} is not this template's namespace {ns}: a template captures only servers of its own namespace (copying another namespace's disk would cross a tenant boundary, and CDI cannot restore a volume snapshot across namespaces); create the template in {server_ns} and share it with spec.sharing"
            ),
        ));
    }
    let observed = input.observed;
    let version = names::golden(template, hash);
    let snapshot_name = names::capture(template, hash);
    let server = &capture.name;
    let snapshot = CaptureSnapshot {
        name: snapshot_name.clone(),
        vm: server_names::vm(server),
    };
    let working = |golden: Option<Golden>, stage: Stage| Current {
        golden,
        capture: Some(snapshot.clone()),
        checksum: None,
        progress: Progress::Working(stage),
    };

    if let Some(dv) = existing {
        let golden = Some(Golden {
            name: version.clone(),
            content: GoldenContent::Existing(Box::new(dv.spec.clone())),
        });
        if let Some(why) = dv_failure(dv, input.import_retry_limit) {
            return Current {
                golden,
                capture: Some(snapshot.clone()),
                checksum: None,
                progress: Progress::Failed(Stage::new(
                    TemplatePhase::Failed,
                    reason::SNAPSHOT_FAILED,
                    format!(
                        "restoring the golden disk {version} from snapshot {snapshot_name}: {why}"
                    ),
                )),
            };
        }
        if !succeeded(dv) {
            let progress = dv_progress(Some(dv));
            return working(
                golden,
                Stage::new(
                    TemplatePhase::Capturing,
                    reason::CAPTURING,
                    format!(
                        "restoring the golden disk {version} from snapshot {snapshot_name} of server {server}{}",
                        progress.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
                    ),
                )
                .with_progress(progress),
            );
        }
        // Captured: the snapshot is no longer needed and goes.
        return Current {
            golden,
            capture: None,
            checksum: None,
            progress: Progress::Done,
        };
    }

    if let Some(taken) = &observed.capture {
        let status = taken.status.clone().unwrap_or_default();
        if status.phase.as_deref() == Some("Failed") {
            let why = status
                .error
                .and_then(|e| e.message)
                .unwrap_or_else(|| "the snapshot failed".into());
            // The failed snapshot stays so the failure stays visible;
            // deleting it makes the operator take a new one.
            return Current {
                capture: Some(snapshot.clone()),
                ..Current::failed(Stage::new(
                    TemplatePhase::Failed,
                    reason::SNAPSHOT_FAILED,
                    format!(
                        "snapshot {snapshot_name} of server {server} failed: {why}; delete the VirtualMachineSnapshot to try again"
                    ),
                ))
            };
        }
        let ready = status.ready_to_use == Some(true);
        return match (ready, &observed.capture_content) {
            (true, Some(content)) => {
                let system = observed
                    .source_server
                    .as_ref()
                    .and_then(|s| s.spec.disks.first())
                    .map(|d| d.name.clone());
                let backups = &content.spec.volume_backups;
                let volume = backups
                    .iter()
                    .find(|b| Some(&b.volume_name) == system.as_ref())
                    .or_else(|| backups.first())
                    .and_then(|b| b.volume_snapshot_name.clone());
                match volume {
                    Some(volume) => working(
                        Some(Golden {
                            name: version.clone(),
                            content: GoldenContent::VolumeSnapshot {
                                namespace: ns.to_string(),
                                name: volume,
                            },
                        }),
                        Stage::new(
                            TemplatePhase::Capturing,
                            reason::CAPTURING,
                            format!(
                                "snapshot {snapshot_name} of server {server} is ready; restoring the golden disk {version}"
                            ),
                        ),
                    ),
                    None => Current {
                        capture: Some(snapshot.clone()),
                        ..Current::failed(Stage::new(
                            TemplatePhase::Failed,
                            reason::SNAPSHOT_FAILED,
                            format!(
                                "snapshot {snapshot_name} of server {server} holds no volume snapshot of its system disk"
                            ),
                        ))
                    },
                }
            }
            _ => working(
                None,
                Stage::new(
                    TemplatePhase::Capturing,
                    reason::CAPTURING,
                    format!("taking snapshot {snapshot_name} of server {server}"),
                ),
            ),
        };
    }

    let Some(source) = &observed.source_server else {
        return Current::failed(Stage::new(
            TemplatePhase::Pending,
            reason::SOURCE_SERVER_NOT_FOUND,
            format!("VirtualServer {ns}/{server} to capture does not exist"),
        ));
    };
    if let Some(system) = source
        .spec
        .disks
        .first()
        .and_then(|d| parse_bytes(&d.size.0).ok())
        .filter(|b| *b > disk_bytes)
    {
        return Current::failed(Stage::new(
            TemplatePhase::Failed,
            reason::DISK_SIZE_TOO_SMALL,
            format!(
                "server {server}'s system disk is {}, larger than spec.diskSize {}: the golden disk must hold it (raise spec.diskSize to at least {})",
                Bytes(system),
                Bytes(disk_bytes),
                Bytes(system)
            ),
        ));
    }
    // A running server is captured online (no downtime), a stopped one
    // offline; one still being built, starting or failed is waited for.
    let phase = source.status.as_ref().and_then(|s| s.phase);
    let how = match phase {
        Some(ServerPhase::Running) => "running server",
        Some(ServerPhase::Stopped) => "stopped server",
        other => {
            let now = other
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "not reconciled yet".into());
            return Current {
                golden: None,
                capture: None,
                checksum: None,
                progress: Progress::Working(Stage::new(
                    TemplatePhase::Pending,
                    reason::SOURCE_NOT_RUNNING,
                    format!(
                        "server {server} is {now}; a template is captured from a server that is Running (online, without downtime) or Stopped"
                    ),
                )),
            };
        }
    };
    working(
        None,
        Stage::new(
            TemplatePhase::Capturing,
            reason::CAPTURING,
            format!("taking snapshot {snapshot_name} of {how} {server}"),
        ),
    )
}

/// Whether the DataSource publishes `claim` in `namespace` and CDI calls it Ready.
fn serves(data_source: Option<&DataSource>, namespace: &str, claim: &str) -> bool {
    data_source.is_some_and(|ds| {
        ds.spec
            .source
            .pvc
            .as_ref()
            .is_some_and(|p| p.namespace == namespace && p.name == claim)
            && ds
                .status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "Ready"))
                .is_some_and(|c| c.status == "True")
    })
}

/// The current version is complete: Ready once the DataSource serves it.
fn published_stage(
    template: &ServerTemplate,
    version: &str,
    data_source: Option<&DataSource>,
) -> Stage {
    let ns = template.namespace().unwrap_or_default();
    let ds = template_data_source(&template.name_any());
    if serves(data_source, &ns, version) {
        let verified = if template
            .spec
            .source
            .image
            .as_ref()
            .is_some_and(|i| i.sha256.is_some())
        {
            ", SHA-256 verified"
        } else {
            ""
        };
        return Stage::new(
            TemplatePhase::Ready,
            reason::READY,
            format!("published as DataSource {ns}/{ds} (golden disk {version}{verified})"),
        );
    }
    let phase = if template.spec.source.server.is_some() {
        TemplatePhase::Capturing
    } else {
        TemplatePhase::Importing
    };
    Stage::new(
        phase,
        reason::PUBLISHING,
        format!("publishing the golden disk {version} as DataSource {ns}/{ds}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::server_template::ChecksumStatus;
    use crate::controllers::server_template::fixtures::{
        CAPTURE, IMAGE, SOURCE_SERVER, content, data_source, golden, nothing, server, snapshot,
        template,
    };

    const RIGHT: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const NS: &str = "alfa-soft";

    fn mirrors() -> Vec<ImageMirror> {
        vec![
            "https://images.partnercloud.example/=http://127.0.0.1:9000/"
                .parse()
                .unwrap(),
        ]
    }

    fn known(actual: &str) -> Check {
        Check::Known(ChecksumStatus {
            url: "https://images.partnercloud.example/images/win2022-1c83-pg16.qcow2".into(),
            expected: RIGHT.into(),
            actual: actual.into(),
        })
    }

    fn run(t: &ServerTemplate, observed: &Observed, checksum: &Check) -> Plan {
        plan(
            t,
            &PlanInput {
                observed,
                checksum,
                mirrors: &mirrors(),
                import_retry_limit: 3,
            },
        )
    }

    fn version(t: &ServerTemplate) -> String {
        names::golden(
            &t.name_any(),
            &names::version(&t.spec.source, &t.namespace().unwrap()),
        )
    }

    #[test]
    fn a_new_image_template_imports_through_the_mirror_and_verifies_beside_it() {
        let t = template(IMAGE);
        let p = run(&t, &nothing(), &Check::Queued);
        let v = version(&t);
        assert_eq!(p.version, v);
        assert_eq!(
            p.golden.unwrap().content,
            GoldenContent::Http {
                url: "http://127.0.0.1:9000/images/win2022-1c83-pg16.qcow2".into()
            }
        );
        assert_eq!(p.publish, None);
        assert_eq!(p.stage.phase, TemplatePhase::Importing);
        assert_eq!(p.stage.reason, reason::IMPORTING);
        assert!(
            p.stage.message.contains("waits for a download slot"),
            "{}",
            p.stage.message
        );
        assert!(
            p.stage.message.contains("(mirror http://127.0.0.1:9000/"),
            "{}",
            p.stage.message
        );

        let mut observed = nothing();
        observed.golden = vec![golden(&v, NS, "ImportInProgress", "50.00%", 0)];
        let p = run(
            &t,
            &observed,
            &Check::Running {
                read: 1 << 19,
                total: Some(1 << 20),
            },
        );
        assert_eq!(p.stage.progress.as_deref(), Some("50.00%"));
        assert!(
            p.stage.message.contains("verifying its SHA-256 (50.0%)"),
            "{}",
            p.stage.message
        );
        assert!(
            matches!(p.golden.unwrap().content, GoldenContent::Existing(_)),
            "an existing DataVolume keeps its spec"
        );
    }

    #[test]
    fn imported_but_not_yet_verified_is_verifying_and_unpublished() {
        let t = template(IMAGE);
        let mut observed = nothing();
        observed.golden = vec![golden(&version(&t), NS, "Succeeded", "100.0%", 0)];
        let p = run(
            &t,
            &observed,
            &Check::Running {
                read: 1 << 18,
                total: Some(1 << 20),
            },
        );
        assert_eq!(p.stage.phase, TemplatePhase::Verifying);
        assert_eq!(p.stage.reason, reason::VERIFYING);
        assert_eq!(p.stage.progress.as_deref(), Some("25.0%"));
        assert_eq!(p.publish, None);
        let p = run(&t, &observed, &Check::Unavailable("timed out".into()));
        assert_eq!(p.stage.reason, reason::VERIFYING);
        assert!(
            p.stage.message.contains("failed (timed out); retrying"),
            "{}",
            p.stage.message
        );
    }

    #[test]
    fn verified_and_imported_is_published_then_ready() {
        let t = template(IMAGE);
        let v = version(&t);
        let mut observed = nothing();
        observed.golden = vec![golden(&v, NS, "Succeeded", "100.0%", 0)];
        let p = run(&t, &observed, &known(RIGHT));
        assert_eq!(p.publish.as_deref(), Some(v.as_str()));
        assert_eq!(p.stage.reason, reason::PUBLISHING);
        assert_eq!(p.checksum.as_ref().unwrap().actual, RIGHT);

        observed.data_source = Some(data_source(&t.name_any(), NS, &v));
        let p = run(&t, &observed, &known(RIGHT));
        assert!(p.stage.is_ready());
        assert!(p.stage.message.contains("SHA-256 verified"));
        assert_eq!(p.published_volume().as_deref(), Some(v.as_str()));
    }

    #[test]
    fn a_checksum_mismatch_publishes_nothing_and_drops_the_import() {
        let t = template(IMAGE);
        let mut observed = nothing();
        observed.golden = vec![golden(&version(&t), NS, "Succeeded", "100.0%", 0)];
        let actual = "0".repeat(64);
        let p = run(&t, &observed, &known(&actual));
        assert_eq!(p.stage.reason, reason::CHECKSUM_MISMATCH);
        assert_eq!(p.stage.phase, TemplatePhase::Failed);
        assert!(p.stage.message.contains(&actual) && p.stage.message.contains(RIGHT));
        assert_eq!(p.golden, None, "the wrong image is not kept");
        assert_eq!(p.publish, None);
        assert_eq!(
            p.checksum.unwrap().actual,
            actual,
            "remembered, not downloaded again"
        );
    }

    #[test]
    fn an_import_that_keeps_failing_is_import_failed_with_the_cause() {
        let t = template(IMAGE);
        let mut observed = nothing();
        observed.golden = vec![golden(&version(&t), NS, "ImportInProgress", "N/A", 3)];
        let p = run(&t, &observed, &Check::Queued);
        assert_eq!(p.stage.reason, reason::IMPORT_FAILED);
        assert!(p.stage.message.contains("404"), "{}", p.stage.message);
        assert!(
            p.golden.is_some(),
            "CDI keeps retrying; the import may recover"
        );
        assert_eq!(p.publish, None);
        let below = {
            let mut o = nothing();
            o.golden = vec![golden(&version(&t), NS, "ImportInProgress", "N/A", 2)];
            run(&t, &o, &Check::Queued)
        };
        assert_eq!(below.stage.reason, reason::IMPORTING);
    }

    #[test]
    fn a_new_source_version_keeps_the_old_image_published_until_it_is_ready() {
        let mut t = template(IMAGE);
        let old = "win2022-1c83-pg16-golden-0000aaaa".to_string();
        t.status = Some(crate::api::ServerTemplateStatus {
            published_volume: Some(old.clone()),
            ..Default::default()
        });
        let v = version(&t);
        let mut observed = nothing();
        observed.golden = vec![
            golden(&old, NS, "Succeeded", "100.0%", 0),
            golden(&v, NS, "ImportInProgress", "25.00%", 0),
        ];
        observed.data_source = Some(data_source(&t.name_any(), NS, &old));
        let p = run(&t, &observed, &known(RIGHT));
        assert_eq!(
            p.previous.as_ref().map(|g| g.name.as_str()),
            Some(old.as_str())
        );
        assert_eq!(p.publish.as_deref(), Some(old.as_str()));
        assert!(!p.stage.is_ready(), "servers wait for the new version");

        // The new version failing unpublishes, but keeps the old disk for a revert.
        let actual = "1".repeat(64);
        let p = run(&t, &observed, &known(&actual));
        assert_eq!(p.publish, None);
        assert_eq!(
            p.previous.as_ref().map(|g| g.name.as_str()),
            Some(old.as_str())
        );
        assert_eq!(p.published_volume().as_deref(), Some(old.as_str()));

        // Done: the new version is published and the old one let go.
        observed.golden[1] = golden(&v, NS, "Succeeded", "100.0%", 0);
        let p = run(&t, &observed, &known(RIGHT));
        assert_eq!(p.publish.as_deref(), Some(v.as_str()));
        assert_eq!(
            p.previous.map(|g| g.name),
            Some(old),
            "kept in this pass's plan"
        );
    }

    #[test]
    fn sharing_grants_clone_permission_to_exactly_the_allowed_service_accounts() {
        let mut t = template(IMAGE);
        let mut observed = nothing();
        observed.selected_namespaces = vec!["alfa-soft".into(), "alfa-soft-bakery".into()];
        let p = run(&t, &observed, &Check::Queued);
        assert_eq!(
            p.clone_groups,
            vec!["system:serviceaccounts:alfa-soft-bakery"]
        );
        t.spec.sharing.scope = SharingScope::All;
        assert_eq!(
            run(&t, &observed, &Check::Queued).clone_groups,
            vec!["system:serviceaccounts"]
        );
        t.spec.sharing.scope = SharingScope::Namespace;
        assert!(run(&t, &observed, &Check::Queued).clone_groups.is_empty());
    }

    #[test]
    fn a_template_without_digest_needs_no_check() {
        let mut t = template(IMAGE);
        t.spec.source.image.as_mut().unwrap().sha256 = None;
        let v = version(&t);
        let mut observed = nothing();
        observed.golden = vec![golden(&v, NS, "Succeeded", "100.0%", 0)];
        observed.data_source = Some(data_source(&t.name_any(), NS, &v));
        let p = run(&t, &observed, &Check::NotRequested);
        assert!(p.stage.is_ready());
        assert_eq!(p.checksum, None);
        assert!(!p.stage.message.contains("SHA-256"));
    }

    fn capture_observed() -> Observed {
        Observed {
            source_server: Some(server(SOURCE_SERVER)),
            ..nothing()
        }
    }

    #[test]
    fn a_running_server_is_snapshotted_without_touching_it() {
        let t = template(CAPTURE);
        let p = run(&t, &capture_observed(), &Check::NotRequested);
        let capture = p.capture.clone().expect("a snapshot is taken");
        assert_eq!(capture.vm, "golden-1c");
        assert!(capture.name.starts_with("debian12-1c-capture-"));
        assert_eq!(p.golden, None, "the disk waits for the snapshot");
        assert_eq!(p.stage.reason, reason::CAPTURING);
        assert!(p.stage.message.contains("running server golden-1c"));
        assert_eq!(p.generalize, Some(true));
    }

    #[test]
    fn the_golden_disk_is_restored_from_the_system_disks_volume_snapshot() {
        let t = template(CAPTURE);
        let mut observed = capture_observed();
        observed.capture = Some(snapshot());
        observed.capture_content = Some(content());
        let p = run(&t, &observed, &Check::NotRequested);
        assert_eq!(
            p.golden.unwrap().content,
            GoldenContent::VolumeSnapshot {
                namespace: "alfa-soft-bakery".into(),
                name: "vmsnapshot-1234-volume-system".into()
            },
            "the system disk, not the first volume listed"
        );
        assert!(p.capture.is_some(), "kept while restoring");

        let v = version(&t);
        observed.golden = vec![golden(
            &v,
            "alfa-soft-bakery",
            "CloneInProgress",
            "40.00%",
            0,
        )];
        let p = run(&t, &observed, &Check::NotRequested);
        assert_eq!(p.stage.phase, TemplatePhase::Capturing);
        assert_eq!(p.stage.progress.as_deref(), Some("40.00%"));

        observed.golden = vec![golden(&v, "alfa-soft-bakery", "Succeeded", "100.0%", 0)];
        observed.source_server = None;
        let p = run(&t, &observed, &Check::NotRequested);
        assert_eq!(
            p.capture, None,
            "the snapshot goes once the disk is restored"
        );
        assert_eq!(p.publish.as_deref(), Some(v.as_str()));
        assert_eq!(
            p.stage.reason,
            reason::PUBLISHING,
            "the server may go once captured"
        );
    }

    #[test]
    fn capture_problems_are_reasons() {
        let t = template(CAPTURE);
        let p = run(&t, &nothing(), &Check::NotRequested);
        assert_eq!(p.stage.reason, reason::SOURCE_SERVER_NOT_FOUND);
        assert_eq!(p.capture, None);

        let mut provisioning = capture_observed();
        provisioning
            .source_server
            .as_mut()
            .unwrap()
            .status
            .as_mut()
            .unwrap()
            .phase = Some(ServerPhase::Provisioning);
        let p = run(&t, &provisioning, &Check::NotRequested);
        assert_eq!(p.stage.reason, reason::SOURCE_NOT_RUNNING);
        assert_eq!(p.capture, None);

        let mut stopped = capture_observed();
        stopped
            .source_server
            .as_mut()
            .unwrap()
            .status
            .as_mut()
            .unwrap()
            .phase = Some(ServerPhase::Stopped);
        let p = run(&t, &stopped, &Check::NotRequested);
        assert!(p.capture.is_some(), "a stopped server is captured offline");
        assert!(p.stage.message.contains("stopped server"));

        let mut big = capture_observed();
        big.source_server.as_mut().unwrap().spec.disks[0].size =
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("80Gi".into());
        let p = run(&t, &big, &Check::NotRequested);
        assert_eq!(p.stage.reason, reason::DISK_SIZE_TOO_SMALL);
        assert!(p.stage.message.contains("80Gi"), "{}", p.stage.message);

        let mut failed = capture_observed();
        let mut s = snapshot();
        let status = s.status.as_mut().unwrap();
        status.phase = Some("Failed".into());
        status.ready_to_use = Some(false);
        status.error = Some(crate::kubevirt::snapshot::SnapshotError {
            message: Some("volume snapshot could not be created".into()),
            time: None,
        });
        failed.capture = Some(s);
        let p = run(&t, &failed, &Check::NotRequested);
        assert_eq!(p.stage.reason, reason::SNAPSHOT_FAILED);
        assert!(p.stage.message.contains("could not be created"));
        assert!(p.capture.is_some(), "the failed snapshot stays visible");

        let mut elsewhere = template(CAPTURE);
        elsewhere.spec.source.server.as_mut().unwrap().namespace = Some("other-client".into());
        let p = run(&elsewhere, &capture_observed(), &Check::NotRequested);
        assert_eq!(p.stage.reason, reason::SOURCE_IN_OTHER_NAMESPACE);
        assert_eq!((p.capture, p.golden, p.publish), (None, None, None));
    }
}
