//! Status from the plan: phase, progress, size, checksum, what is
//! published, usage and the `Ready` condition. Pure: the caller supplies
//! the time and writes the result only when it changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::Plan;
use crate::api::ServerTemplate;
use crate::api::conditions::{self, Decided};
use crate::api::quantity::{Bytes, parse_bytes};
use crate::api::server_template::ServerTemplateStatus;

pub fn compute(
    template: &ServerTemplate,
    plan: &Plan,
    used_by: i32,
    now: &Time,
) -> ServerTemplateStatus {
    let previous = template.status.clone().unwrap_or_default();
    let stage = &plan.stage;
    let ready = if stage.is_ready() {
        Decided::yes(conditions::READY, stage.reason, stage.message.clone())
    } else {
        Decided::no(conditions::READY, stage.reason, stage.message.clone())
    };
    let requested = template
        .spec
        .source
        .image
        .as_ref()
        .is_some_and(|i| i.sha256.is_some());
    ServerTemplateStatus {
        observed_generation: template.metadata.generation,
        phase: Some(stage.phase),
        progress: stage.progress.clone(),
        size: parse_bytes(&template.spec.disk_size.0)
            .ok()
            .map(|b| Bytes(b).to_string()),
        checksum_verified: plan
            .checksum
            .as_ref()
            .filter(|_| requested)
            .map(|c| c.actual == c.expected),
        used_by,
        checksum: plan.checksum.clone(),
        published_volume: plan.published_volume(),
        conditions: conditions::merge(
            &previous.conditions,
            &[ready],
            template.metadata.generation,
            now,
        ),
    }
}

/// Whether a new status says anything the old one did not (timestamps aside).
pub fn changed(old: Option<&ServerTemplateStatus>, new: &ServerTemplateStatus) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &ServerTemplateStatus| ServerTemplateStatus {
        conditions: Vec::new(),
        ..s.clone()
    };
    strip(old) != strip(new) || !conditions::same(&old.conditions, &new.conditions)
}

/// The JSON merge patch that makes the stored `old` status equal `new`:
/// fields that are now empty are sent as `null` (a stale `progress` would
/// otherwise stay for ever and count as a change on every pass).
pub fn merge_patch(
    old: Option<&ServerTemplateStatus>,
    new: &ServerTemplateStatus,
) -> serde_json::Value {
    crate::controllers::status_patch::merge_patch(old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::server_template::{ChecksumStatus, TemplatePhase};
    use crate::controllers::server_template::fixtures::{IMAGE, template};
    use crate::controllers::server_template::plan::{Stage, reason};

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn plan(stage: Stage, actual: Option<&str>) -> Plan {
        Plan {
            version: "v".into(),
            golden: None,
            previous: None,
            capture: None,
            publish: stage
                .is_ready()
                .then(|| "win2022-1c83-pg16-golden-12345678".into()),
            clone_groups: Vec::new(),
            generalize: None,
            checksum: actual.map(|a| ChecksumStatus {
                url: "https://x/y".into(),
                expected: "a".repeat(64),
                actual: a.into(),
            }),
            stage,
        }
    }

    #[test]
    fn a_ready_template_reports_size_checksum_usage_and_what_it_publishes() {
        let t = template(IMAGE);
        let ready = Stage::new(TemplatePhase::Ready, reason::READY, "published");
        let s = compute(
            &t,
            &plan(ready, Some(&"a".repeat(64))),
            3,
            &time("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(TemplatePhase::Ready));
        assert_eq!(s.size.as_deref(), Some("100Gi"));
        assert_eq!(s.checksum_verified, Some(true));
        assert_eq!(s.used_by, 3);
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(
            s.published_volume.as_deref(),
            Some("win2022-1c83-pg16-golden-12345678")
        );
        let ready = &s.conditions[0];
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "True", "Ready")
        );
    }

    #[test]
    fn a_mismatch_is_checksum_verified_false_and_not_ready() {
        let t = template(IMAGE);
        let stage = Stage::new(
            TemplatePhase::Failed,
            reason::CHECKSUM_MISMATCH,
            "expected a, got b",
        );
        let s = compute(
            &t,
            &plan(stage, Some(&"b".repeat(64))),
            0,
            &time("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.checksum_verified, Some(false));
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(s.conditions[0].reason, "ChecksumMismatch");
        assert_eq!(s.published_volume, None);
    }

    #[test]
    fn an_unchanged_status_is_not_written_again_and_cleared_fields_are_nulled() {
        let mut t = template(IMAGE);
        let importing = Stage::new(TemplatePhase::Importing, reason::IMPORTING, "importing")
            .with_progress(Some("50.00%".into()));
        let first = compute(
            &t,
            &plan(importing.clone(), None),
            0,
            &time("2026-01-01T00:00:00Z"),
        );
        t.status = Some(first.clone());
        let again = compute(&t, &plan(importing, None), 0, &time("2026-01-01T01:00:00Z"));
        assert!(!changed(Some(&first), &again), "only the clock moved");
        assert_eq!(
            again.conditions[0].last_transition_time,
            first.conditions[0].last_transition_time
        );

        let verifying = Stage::new(TemplatePhase::Verifying, reason::VERIFYING, "verifying");
        let next = compute(&t, &plan(verifying, None), 0, &time("2026-01-01T01:00:00Z"));
        assert!(changed(Some(&first), &next));
        let patch = merge_patch(Some(&first), &next);
        assert_eq!(patch["status"]["progress"], serde_json::Value::Null);
        assert!(
            patch["status"]
                .as_object()
                .unwrap()
                .contains_key("progress")
        );
        assert_eq!(patch["status"]["phase"], "Verifying");
    }
}
