//! Grandfather-father-son retention: which backups to keep, which to delete.
//!
//! Semantics are restic's `forget` (and borg's `prune`): only good
//! (`Succeeded`) backups count toward the rules; `keepLast: N` keeps the N
//! newest; `keepDaily/Weekly/Monthly/Yearly: N` keep the newest backup of
//! each of the N most recent days / ISO weeks / months / years *that have a
//! good backup*. Periods without a backup are not counted, so the result
//! does not depend on the clock: a policy that has been failing for a month
//! does not age its last good backups out. Periods are calendar periods in
//! the policy's time zone (a backup at 23:30 UTC belongs to the next day in
//! Europe/Moscow). Anything kept by any rule is kept.
//!
//! On top of the rules, never deleted:
//! - the newest good backup of every server, whatever the rules say;
//! - a backup still in progress (it is not judged yet);
//! - a backup a restore is reading from.
//!
//! Failed backups are pruned on their own: the most recent failed one of
//! each server is kept, so whoever looks into a failure still finds the
//! snapshot and its error; older failed ones are deleted. They never count
//! toward a rule.

use std::collections::HashSet;
use std::fmt;

use chrono::{Datelike, IsoWeek, NaiveDate};
use chrono_tz::Tz;

use super::backup::Backup;
use crate::api::backup_policy::{BackupPhase, Retention};

/// Why a backup is kept. One backup may have several reasons.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeepReason {
    /// The newest good backup of its server: never deleted.
    NewestGood,
    /// Still in progress: never deleted.
    InProgress,
    /// A restore reads from it: never deleted.
    RestoreReading,
    /// Among the `keepLast` newest good backups.
    Last,
    /// The newest good backup of this day (`keepDaily`).
    Daily(NaiveDate),
    /// The newest good backup of this ISO week (`keepWeekly`).
    Weekly(IsoWeek),
    /// The newest good backup of this month (`keepMonthly`).
    Monthly { year: i32, month: u32 },
    /// The newest good backup of this year (`keepYearly`).
    Yearly(i32),
    /// The most recent failed backup, kept for diagnosis.
    NewestFailed,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewestGood => write!(f, "newest good backup"),
            Self::InProgress => write!(f, "in progress"),
            Self::RestoreReading => write!(f, "a restore reads from it"),
            Self::Last => write!(f, "keepLast"),
            Self::Daily(day) => write!(f, "keepDaily {day}"),
            Self::Weekly(week) => write!(f, "keepWeekly {}-W{:02}", week.year(), week.week()),
            Self::Monthly { year, month } => write!(f, "keepMonthly {year}-{month:02}"),
            Self::Yearly(year) => write!(f, "keepYearly {year}"),
            Self::NewestFailed => write!(f, "newest failed backup, kept for diagnosis"),
        }
    }
}

/// Why a backup is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// A good backup no rule keeps.
    NotKeptByAnyRule,
    /// A failed backup older than the server's most recent failed one.
    OlderFailure,
}

impl fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotKeptByAnyRule => write!(f, "no retention rule keeps it"),
            Self::OlderFailure => write!(f, "failed, and a more recent backup failed too"),
        }
    }
}

/// A backup to keep, with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub server: String,
    pub snapshot: String,
    pub reasons: Vec<KeepReason>,
}

/// A backup to delete, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub server: String,
    pub snapshot: String,
    pub reason: DeleteReason,
}

/// The outcome of retention: every backup given is in exactly one list,
/// ordered by server, then newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionPlan {
    pub keep: Vec<Kept>,
    pub delete: Vec<Deleted>,
}

/// Decides retention for a policy's backups. The rules apply per server
/// (each server keeps its own N days, and its own newest good backup), so
/// the backups of several servers may be passed together.
pub fn plan(backups: &[Backup], retention: &Retention, zone: Tz) -> RetentionPlan {
    let mut ordered: Vec<&Backup> = backups.iter().collect();
    // Server, then newest first; the snapshot name breaks ties so the
    // result never depends on the order the backups were listed in.
    ordered.sort_by(|a, b| {
        a.server
            .cmp(&b.server)
            .then(b.slot.cmp(&a.slot))
            .then(b.snapshot.cmp(&a.snapshot))
    });
    let mut result = RetentionPlan::default();
    for server in ordered.chunk_by(|a, b| a.server == b.server) {
        plan_server(server, retention, zone, &mut result);
    }
    result
}

/// Retention for one server's backups, already sorted newest first.
fn plan_server(newest_first: &[&Backup], retention: &Retention, zone: Tz, out: &mut RetentionPlan) {
    let mut reasons: Vec<Vec<KeepReason>> = vec![vec![]; newest_first.len()];
    let good: Vec<usize> = (0..newest_first.len())
        .filter(|&i| newest_first[i].is_good())
        .collect();

    if let Some(&newest) = good.first() {
        reasons[newest].push(KeepReason::NewestGood);
    }
    for &i in good.iter().take(count(retention.keep_last)) {
        reasons[i].push(KeepReason::Last);
    }
    let local = |i: usize| newest_first[i].slot.with_timezone(&zone);
    let mut bucket_rule = |n: Option<u32>, bucket: &dyn Fn(usize) -> KeepReason| {
        let mut seen = HashSet::new();
        for &i in &good {
            if seen.len() == count(n) {
                break;
            }
            let reason = bucket(i);
            // A set, not "differs from the previous one": where a zone's
            // clock goes back over midnight, the local date is not monotonic.
            if seen.insert(reason.clone()) {
                reasons[i].push(reason);
            }
        }
    };
    bucket_rule(retention.keep_daily, &|i| {
        KeepReason::Daily(local(i).date_naive())
    });
    bucket_rule(retention.keep_weekly, &|i| {
        KeepReason::Weekly(local(i).iso_week())
    });
    bucket_rule(retention.keep_monthly, &|i| KeepReason::Monthly {
        year: local(i).year(),
        month: local(i).month(),
    });
    bucket_rule(retention.keep_yearly, &|i| {
        KeepReason::Yearly(local(i).year())
    });

    let newest_failed =
        (0..newest_first.len()).find(|&i| newest_first[i].phase == BackupPhase::Failed);
    for (i, backup) in newest_first.iter().enumerate() {
        match backup.phase {
            BackupPhase::InProgress => reasons[i].push(KeepReason::InProgress),
            BackupPhase::Failed if Some(i) == newest_failed => {
                reasons[i].push(KeepReason::NewestFailed)
            }
            BackupPhase::Failed | BackupPhase::Succeeded => {}
        }
        if backup.restore_reading {
            reasons[i].push(KeepReason::RestoreReading);
        }
    }

    for (backup, reasons) in newest_first.iter().zip(reasons) {
        if reasons.is_empty() {
            out.delete.push(Deleted {
                server: backup.server.clone(),
                snapshot: backup.snapshot.clone(),
                reason: if backup.phase == BackupPhase::Failed {
                    DeleteReason::OlderFailure
                } else {
                    DeleteReason::NotKeptByAnyRule
                },
            });
        } else {
            out.keep.push(Kept {
                server: backup.server.clone(),
                snapshot: backup.snapshot.clone(),
                reasons,
            });
        }
    }
}

/// A rule's count; an unset rule keeps nothing.
fn count(rule: Option<u32>) -> usize {
    rule.map_or(0, |n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};
    use chrono_tz::Europe::Moscow;
    use chrono_tz::UTC;

    use BackupPhase::{Failed, InProgress, Succeeded};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// A backup of server "erp", named after its slot.
    fn b(slot: DateTime<Utc>, phase: BackupPhase) -> Backup {
        Backup {
            server: "erp".into(),
            snapshot: slot.format("%Y%m%d%H%M").to_string(),
            slot,
            phase,
            restore_reading: false,
        }
    }

    fn keep(last: u32, daily: u32, weekly: u32, monthly: u32, yearly: u32) -> Retention {
        let rule = |n: u32| (n > 0).then_some(n);
        Retention {
            keep_last: rule(last),
            keep_daily: rule(daily),
            keep_weekly: rule(weekly),
            keep_monthly: rule(monthly),
            keep_yearly: rule(yearly),
        }
    }

    fn kept(plan: &RetentionPlan) -> Vec<&str> {
        plan.keep.iter().map(|k| k.snapshot.as_str()).collect()
    }

    fn deleted(plan: &RetentionPlan) -> Vec<&str> {
        plan.delete.iter().map(|d| d.snapshot.as_str()).collect()
    }

    fn reasons<'a>(plan: &'a RetentionPlan, snapshot: &str) -> &'a [KeepReason] {
        &plan
            .keep
            .iter()
            .find(|k| k.snapshot == snapshot)
            .unwrap()
            .reasons
    }

    fn daily(days: u32, phase: BackupPhase) -> Vec<Backup> {
        (1..=days)
            .map(|d| b(utc(2026, 1, d, 2, 0), phase))
            .collect()
    }

    #[test]
    fn keep_last_keeps_the_newest_good_backups() {
        let plan = plan(&daily(5, Succeeded), &keep(3, 0, 0, 0, 0), UTC);
        assert_eq!(
            kept(&plan),
            ["202601050200", "202601040200", "202601030200"]
        );
        assert_eq!(deleted(&plan), ["202601020200", "202601010200"]);
        assert!(
            plan.delete
                .iter()
                .all(|d| d.reason == DeleteReason::NotKeptByAnyRule)
        );
        assert_eq!(
            reasons(&plan, "202601050200"),
            [KeepReason::NewestGood, KeepReason::Last]
        );
    }

    #[test]
    fn failed_backups_do_not_count_toward_keep_last() {
        let backups = vec![
            b(utc(2026, 1, 5, 2, 0), Failed),
            b(utc(2026, 1, 4, 2, 0), Failed),
            b(utc(2026, 1, 3, 2, 0), Succeeded),
            b(utc(2026, 1, 2, 2, 0), Succeeded),
            b(utc(2026, 1, 1, 2, 0), Succeeded),
        ];
        let plan = plan(&backups, &keep(2, 0, 0, 0, 0), UTC);
        assert_eq!(
            kept(&plan),
            ["202601050200", "202601030200", "202601020200"]
        );
        assert_eq!(reasons(&plan, "202601050200"), [KeepReason::NewestFailed]);
        assert_eq!(
            plan.delete,
            vec![
                Deleted {
                    server: "erp".into(),
                    snapshot: "202601040200".into(),
                    reason: DeleteReason::OlderFailure
                },
                Deleted {
                    server: "erp".into(),
                    snapshot: "202601010200".into(),
                    reason: DeleteReason::NotKeptByAnyRule
                },
            ]
        );
    }

    #[test]
    fn the_most_recent_failure_is_kept_even_when_older_than_good_backups() {
        let backups = vec![
            b(utc(2026, 1, 5, 2, 0), Succeeded),
            b(utc(2026, 1, 4, 2, 0), Failed),
            b(utc(2026, 1, 3, 2, 0), Failed),
        ];
        let plan = plan(&backups, &keep(1, 0, 0, 0, 0), UTC);
        assert_eq!(kept(&plan), ["202601050200", "202601040200"]);
        assert_eq!(deleted(&plan), ["202601030200"]);
    }

    #[test]
    fn the_newest_good_backup_is_kept_even_when_no_rule_keeps_anything() {
        // Admission refuses an all-zero retention; the guard holds anyway.
        let mut backups = daily(3, Succeeded);
        backups.push(b(utc(2026, 1, 9, 2, 0), Failed));
        let plan = plan(&backups, &keep(0, 0, 0, 0, 0), UTC);
        assert_eq!(kept(&plan), ["202601090200", "202601030200"]);
        assert_eq!(reasons(&plan, "202601030200"), [KeepReason::NewestGood]);
    }

    #[test]
    fn backups_in_progress_are_kept_and_do_not_count() {
        let mut backups = daily(3, Succeeded);
        backups.push(b(utc(2026, 1, 4, 2, 0), InProgress));
        backups.push(b(utc(2025, 12, 1, 2, 0), InProgress));
        let plan = plan(&backups, &keep(1, 0, 0, 0, 0), UTC);
        assert_eq!(
            kept(&plan),
            ["202601040200", "202601030200", "202512010200"]
        );
        assert_eq!(reasons(&plan, "202512010200"), [KeepReason::InProgress]);
    }

    #[test]
    fn a_backup_a_restore_reads_from_is_kept() {
        let mut backups = daily(3, Succeeded);
        backups[0].restore_reading = true;
        let mut failed = b(utc(2025, 12, 1, 2, 0), Failed);
        failed.restore_reading = true;
        backups.push(failed);
        backups.push(b(utc(2025, 12, 2, 2, 0), Failed));
        let plan = plan(&backups, &keep(1, 0, 0, 0, 0), UTC);
        assert_eq!(
            kept(&plan),
            [
                "202601030200",
                "202601010200",
                "202512020200",
                "202512010200"
            ]
        );
        assert_eq!(reasons(&plan, "202601010200"), [KeepReason::RestoreReading]);
        assert_eq!(reasons(&plan, "202512010200"), [KeepReason::RestoreReading]);
        assert_eq!(deleted(&plan), ["202601020200"]);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day_and_skips_days_without_backups() {
        let backups = vec![
            b(utc(2026, 1, 5, 14, 0), Succeeded),
            b(utc(2026, 1, 5, 2, 0), Succeeded),
            b(utc(2026, 1, 4, 2, 0), Succeeded),
            // No backup on the 3rd: it is not one of the "last 3 days".
            b(utc(2026, 1, 2, 20, 0), Succeeded),
            b(utc(2026, 1, 2, 2, 0), Succeeded),
            b(utc(2026, 1, 1, 2, 0), Succeeded),
        ];
        let plan = plan(&backups, &keep(0, 3, 0, 0, 0), UTC);
        assert_eq!(
            kept(&plan),
            ["202601051400", "202601040200", "202601022000"]
        );
        assert_eq!(
            reasons(&plan, "202601022000"),
            [KeepReason::Daily(
                NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()
            )]
        );
        assert_eq!(
            deleted(&plan),
            ["202601050200", "202601020200", "202601010200"]
        );
    }

    #[test]
    fn days_are_counted_in_the_policys_time_zone() {
        // 23:30 UTC on the 5th is 02:30 on the 6th in Moscow (UTC+3).
        let backups = vec![
            b(utc(2026, 1, 5, 23, 30), Succeeded),
            b(utc(2026, 1, 5, 20, 0), Succeeded),
        ];
        let in_utc = plan(&backups, &keep(0, 2, 0, 0, 0), UTC);
        assert_eq!(kept(&in_utc), ["202601052330"], "one UTC day");
        let in_moscow = plan(&backups, &keep(0, 2, 0, 0, 0), Moscow);
        assert_eq!(
            kept(&in_moscow),
            ["202601052330", "202601052000"],
            "two Moscow days"
        );
        assert_eq!(
            reasons(&in_moscow, "202601052330"),
            [
                KeepReason::NewestGood,
                KeepReason::Daily(NaiveDate::from_ymd_opt(2026, 1, 6).unwrap())
            ]
        );
    }

    #[test]
    fn keep_weekly_uses_iso_weeks_across_the_year_boundary() {
        // 2026-01-01 is a Thursday, so ISO week 2026-W01 runs from Monday
        // 2025-12-29; Sunday 2025-12-28 is the last day of 2025-W52.
        let backups = vec![
            b(utc(2026, 1, 2, 2, 0), Succeeded),
            b(utc(2025, 12, 30, 2, 0), Succeeded),
            b(utc(2025, 12, 28, 2, 0), Succeeded),
            b(utc(2025, 12, 22, 2, 0), Succeeded),
        ];
        let plan = plan(&backups, &keep(0, 0, 2, 0, 0), UTC);
        assert_eq!(kept(&plan), ["202601020200", "202512280200"]);
        assert_eq!(deleted(&plan), ["202512300200", "202512220200"]);
        let week = |r: &KeepReason| r.to_string();
        assert_eq!(
            week(&reasons(&plan, "202601020200")[1]),
            "keepWeekly 2026-W01"
        );
        assert_eq!(
            week(&reasons(&plan, "202512280200")[0]),
            "keepWeekly 2025-W52"
        );
    }

    #[test]
    fn a_53rd_iso_week_spans_new_year() {
        // 2020-12-31 (Thursday) and 2021-01-03 (Sunday) are both 2020-W53.
        let backups = vec![
            b(utc(2021, 1, 4, 2, 0), Succeeded),
            b(utc(2021, 1, 3, 2, 0), Succeeded),
            b(utc(2020, 12, 31, 2, 0), Succeeded),
            b(utc(2020, 12, 27, 2, 0), Succeeded),
        ];
        let plan = plan(&backups, &keep(0, 0, 3, 0, 0), UTC);
        assert_eq!(
            kept(&plan),
            ["202101040200", "202101030200", "202012270200"]
        );
        assert_eq!(
            reasons(&plan, "202101030200")[0].to_string(),
            "keepWeekly 2020-W53"
        );
    }

    #[test]
    fn iso_weeks_are_counted_in_the_policys_time_zone() {
        // 22:00 UTC on Sunday 2026-01-04 is already Monday (2026-W02) in Moscow.
        let backups = vec![
            b(utc(2026, 1, 4, 22, 0), Succeeded),
            b(utc(2026, 1, 4, 2, 0), Succeeded),
        ];
        assert_eq!(
            kept(&plan(&backups, &keep(0, 0, 2, 0, 0), UTC)),
            ["202601042200"]
        );
        assert_eq!(
            kept(&plan(&backups, &keep(0, 0, 2, 0, 0), Moscow)),
            ["202601042200", "202601040200"]
        );
    }

    #[test]
    fn keep_monthly_and_yearly_keep_the_newest_of_each_period() {
        let backups = vec![
            b(utc(2026, 2, 10, 2, 0), Succeeded),
            b(utc(2026, 2, 1, 2, 0), Succeeded),
            b(utc(2026, 1, 20, 2, 0), Succeeded),
            b(utc(2025, 12, 31, 2, 0), Succeeded),
            b(utc(2025, 6, 1, 2, 0), Succeeded),
            b(utc(2024, 3, 1, 2, 0), Succeeded),
            b(utc(2023, 3, 1, 2, 0), Succeeded),
        ];
        let monthly = plan(&backups, &keep(0, 0, 0, 3, 0), UTC);
        assert_eq!(
            kept(&monthly),
            ["202602100200", "202601200200", "202512310200"]
        );
        assert_eq!(
            reasons(&monthly, "202512310200"),
            [KeepReason::Monthly {
                year: 2025,
                month: 12
            }]
        );
        let yearly = plan(&backups, &keep(0, 0, 0, 0, 3), UTC);
        assert_eq!(
            kept(&yearly),
            ["202602100200", "202512310200", "202403010200"]
        );
        assert_eq!(reasons(&yearly, "202403010200"), [KeepReason::Yearly(2024)]);
    }

    #[test]
    fn months_and_years_are_counted_in_the_policys_time_zone() {
        // 22:30 UTC on 31 December 2025 is 01:30 on 1 January 2026 in Moscow.
        let backups = vec![
            b(utc(2025, 12, 31, 22, 30), Succeeded),
            b(utc(2025, 12, 31, 2, 0), Succeeded),
        ];
        assert_eq!(
            kept(&plan(&backups, &keep(0, 0, 0, 0, 2), UTC)),
            ["202512312230"]
        );
        let moscow = plan(&backups, &keep(0, 0, 0, 0, 2), Moscow);
        assert_eq!(kept(&moscow), ["202512312230", "202512310200"]);
        assert_eq!(
            reasons(&moscow, "202512312230")[1],
            KeepReason::Yearly(2026)
        );
        let monthly = plan(&backups, &keep(0, 0, 0, 2, 0), Moscow);
        assert_eq!(
            reasons(&monthly, "202512312230")[1],
            KeepReason::Monthly {
                year: 2026,
                month: 1
            }
        );
    }

    #[test]
    fn a_backup_kept_by_several_rules_lists_every_reason() {
        let plan = plan(&daily(2, Succeeded), &keep(1, 1, 1, 1, 1), UTC);
        let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        assert_eq!(
            reasons(&plan, "202601020200"),
            [
                KeepReason::NewestGood,
                KeepReason::Last,
                KeepReason::Daily(day),
                KeepReason::Weekly(day.iso_week()),
                KeepReason::Monthly {
                    year: 2026,
                    month: 1
                },
                KeepReason::Yearly(2026),
            ]
        );
        assert_eq!(deleted(&plan), ["202601010200"]);
    }

    #[test]
    fn rules_apply_per_server() {
        let mut backups = daily(3, Succeeded);
        for d in 1..=2 {
            let mut other = b(utc(2025, 6, d, 2, 0), Succeeded);
            other.server = "crm".into();
            backups.push(other);
        }
        let plan = plan(&backups, &keep(1, 0, 0, 0, 0), UTC);
        let kept: Vec<(&str, &str)> = plan
            .keep
            .iter()
            .map(|k| (k.server.as_str(), k.snapshot.as_str()))
            .collect();
        assert_eq!(kept, [("crm", "202506020200"), ("erp", "202601030200")]);
        assert_eq!(plan.delete.len(), 3);
    }

    #[test]
    fn the_result_does_not_depend_on_the_input_order() {
        let mut backups = daily(6, Succeeded);
        backups.push(b(utc(2026, 1, 3, 2, 0) + TimeDelta::hours(1), Failed));
        let forward = plan(&backups, &keep(2, 3, 0, 0, 0), UTC);
        backups.reverse();
        assert_eq!(plan(&backups, &keep(2, 3, 0, 0, 0), UTC), forward);
    }

    #[test]
    fn nothing_to_plan_for_no_backups() {
        assert_eq!(
            plan(&[], &Retention::default(), UTC),
            RetentionPlan::default()
        );
    }

    #[test]
    fn reasons_read_well_in_events() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        assert_eq!(KeepReason::Daily(day).to_string(), "keepDaily 2026-01-05");
        assert_eq!(
            KeepReason::Monthly {
                year: 2026,
                month: 1
            }
            .to_string(),
            "keepMonthly 2026-01"
        );
        assert_eq!(KeepReason::Yearly(2026).to_string(), "keepYearly 2026");
        assert_eq!(
            KeepReason::Weekly(day.iso_week()).to_string(),
            "keepWeekly 2026-W02"
        );
        assert_eq!(
            DeleteReason::NotKeptByAnyRule.to_string(),
            "no retention rule keeps it"
        );
    }

    /// A small deterministic generator (64-bit LCG, Knuth's MMIX constants)
    /// for the property test: no crate, same sequences on every run.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn over_generated_histories_the_safety_rules_always_hold() {
        let mut rng = Lcg(42);
        let zones = [
            UTC,
            Moscow,
            chrono_tz::America::New_York,
            chrono_tz::Pacific::Chatham,
        ];
        for case in 0..400 {
            let servers = ["erp", "crm", "files"];
            let n = rng.below(40) as usize;
            let mut backups = vec![];
            let mut slot = utc(2024, 12, 20, 0, 0);
            for i in 0..n {
                // Irregular gaps from minutes to weeks, across year ends and DST.
                slot += TimeDelta::minutes(rng.below(60 * 24 * 10) as i64 + 1);
                let phase = match rng.below(10) {
                    0..=5 => Succeeded,
                    6..=7 => Failed,
                    _ => InProgress,
                };
                backups.push(Backup {
                    server: servers[rng.below(3) as usize].into(),
                    snapshot: format!("s{i:03}"),
                    slot,
                    phase,
                    restore_reading: rng.below(8) == 0,
                });
            }
            let rule = |rng: &mut Lcg| match rng.below(3) {
                0 => None,
                _ => Some(rng.below(5) as u32),
            };
            let retention = Retention {
                keep_last: rule(&mut rng),
                keep_daily: rule(&mut rng),
                keep_weekly: rule(&mut rng),
                keep_monthly: rule(&mut rng),
                keep_yearly: rule(&mut rng),
            };
            let zone = zones[rng.below(zones.len() as u64) as usize];
            let result = plan(&backups, &retention, zone);
            let context = format!("case {case}: {retention:?} in {zone}");

            // Every backup is decided exactly once.
            let mut all: Vec<&str> = kept(&result).into_iter().chain(deleted(&result)).collect();
            all.sort();
            let mut expected: Vec<&str> = backups.iter().map(|b| b.snapshot.as_str()).collect();
            expected.sort();
            assert_eq!(all, expected, "{context}");

            let is_deleted = |b: &Backup| result.delete.iter().any(|d| d.snapshot == b.snapshot);
            for backup in &backups {
                if backup.phase == InProgress || backup.restore_reading {
                    assert!(!is_deleted(backup), "{context}: deleted {backup:?}");
                }
            }
            for server in servers {
                let of_server = || backups.iter().filter(move |b| b.server == server);
                if let Some(newest_good) =
                    of_server().filter(|b| b.is_good()).max_by_key(|b| b.slot)
                {
                    assert!(
                        !is_deleted(newest_good),
                        "{context}: deleted newest good {newest_good:?}"
                    );
                }
                if let Some(newest_failed) = of_server()
                    .filter(|b| b.phase == Failed)
                    .max_by_key(|b| b.slot)
                {
                    assert!(
                        !is_deleted(newest_failed),
                        "{context}: deleted newest failure"
                    );
                }
                // keepLast holds exactly.
                let mut good: Vec<&Backup> = of_server().filter(|b| b.is_good()).collect();
                good.sort_by_key(|b| std::cmp::Reverse(b.slot));
                for newest in good.iter().take(count(retention.keep_last)) {
                    assert!(
                        !is_deleted(newest),
                        "{context}: keepLast deleted {newest:?}"
                    );
                }
                // At most one failed backup survives, unless restores read others.
                let failed_kept = of_server()
                    .filter(|b| b.phase == Failed && !b.restore_reading && !is_deleted(b))
                    .count();
                assert!(failed_kept <= 1, "{context}: {failed_kept} failures kept");
                // Nothing good is kept beyond what the rules allow.
                let budget = 1
                    + count(retention.keep_last)
                    + count(retention.keep_daily)
                    + count(retention.keep_weekly)
                    + count(retention.keep_monthly)
                    + count(retention.keep_yearly);
                let good_kept = good
                    .iter()
                    .filter(|b| !b.restore_reading && !is_deleted(b))
                    .count();
                assert!(
                    good_kept <= budget,
                    "{context}: kept {good_kept} > {budget}"
                );
            }
            // Deleting is only ever of good or failed backups, with the right reason.
            for d in &result.delete {
                let backup = backups.iter().find(|b| b.snapshot == d.snapshot).unwrap();
                let expected = if backup.phase == Failed {
                    DeleteReason::OlderFailure
                } else {
                    DeleteReason::NotKeptByAnyRule
                };
                assert_eq!(d.reason, expected, "{context}");
            }
        }
    }
}
