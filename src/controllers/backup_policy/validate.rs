//! Validate what admission could not: that the schedule, its time zone,
//! the drill schedule and the selector can really be used. Admission
//! refuses nearly all bad values already; this is the guard for objects
//! stored before a rule existed, so a bad policy shows `Ready=False` with
//! the reason instead of crashing or looping.

use chrono::TimeDelta;
use kube::core::Selector;

use super::schedule::{INVALID_SCHEDULE, Schedule};
use crate::api::BackupPolicy;

/// Condition reason for a selector that cannot be used.
pub const INVALID_SELECTOR: &str = "InvalidSelector";

/// A policy that can be scheduled.
#[derive(Debug, Clone)]
pub struct Valid {
    pub schedule: Schedule,
    pub drill: Option<DrillSettings>,
    pub selector: Selector,
}

/// `spec.verify.restoreDrill`, parsed.
#[derive(Debug, Clone)]
pub struct DrillSettings {
    pub schedule: Schedule,
    pub timeout: TimeDelta,
}

/// Why a policy cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

pub fn validate(policy: &BackupPolicy) -> Result<Valid, Invalid> {
    let spec = &policy.spec;
    let schedule = Schedule::parse(&spec.schedule, &spec.time_zone).map_err(|e| Invalid {
        reason: e.reason(),
        message: e.to_string(),
    })?;
    let drill = match spec.verify.as_ref().and_then(|v| v.restore_drill.as_ref()) {
        Some(drill) => Some(DrillSettings {
            schedule: Schedule::parse(&drill.schedule, &spec.time_zone).map_err(|e| Invalid {
                reason: INVALID_SCHEDULE,
                message: format!("spec.verify.restoreDrill: {e}"),
            })?,
            timeout: TimeDelta::seconds(drill.timeout_seconds),
        }),
        None => None,
    };
    let selector = Selector::try_from(spec.selector.clone()).map_err(|e| Invalid {
        reason: INVALID_SELECTOR,
        message: format!("spec.selector cannot be used: {e}"),
    })?;
    Ok(Valid {
        schedule,
        drill,
        selector,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::backup_policy::{RestoreDrill, Verify};
    use crate::controllers::backup_policy::tests_support::policy;

    #[test]
    fn the_fixture_policy_is_valid() {
        let valid = validate(&policy()).unwrap();
        assert!(valid.drill.is_none());
    }

    #[test]
    fn a_bad_schedule_or_zone_is_invalid_schedule_with_the_field_named() {
        let mut p = policy();
        p.spec.schedule = "0 0 * * * *".into();
        let invalid = validate(&p).unwrap_err();
        assert_eq!(invalid.reason, "InvalidSchedule");
        assert!(
            invalid.message.starts_with("spec.schedule"),
            "{}",
            invalid.message
        );
        let mut p = policy();
        p.spec.time_zone = "Mars/Olympus_Mons".into();
        let invalid = validate(&p).unwrap_err();
        assert_eq!(invalid.reason, "InvalidSchedule");
        assert!(
            invalid.message.contains("spec.timeZone"),
            "{}",
            invalid.message
        );
    }

    #[test]
    fn a_bad_drill_schedule_is_named_as_such() {
        let mut p = policy();
        p.spec.verify = Some(Verify {
            restore_drill: Some(RestoreDrill {
                schedule: "sometimes".into(),
                timeout_seconds: 600,
            }),
        });
        let invalid = validate(&p).unwrap_err();
        assert_eq!(invalid.reason, "InvalidSchedule");
        assert!(
            invalid.message.starts_with("spec.verify.restoreDrill: "),
            "{}",
            invalid.message
        );
        p.spec
            .verify
            .as_mut()
            .unwrap()
            .restore_drill
            .as_mut()
            .unwrap()
            .schedule = "0 5 * * SUN".into();
        let drill = validate(&p).unwrap().drill.unwrap();
        assert_eq!(drill.timeout, TimeDelta::minutes(10));
    }

    #[test]
    fn a_selector_with_an_unknown_operator_is_invalid_selector() {
        let mut p = policy();
        p.spec.selector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "tier", "operator": "Near", "values": ["db"]}]
        }))
        .unwrap();
        assert_eq!(validate(&p).unwrap_err().reason, INVALID_SELECTOR);
    }
}
