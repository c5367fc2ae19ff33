//! `spec.schedule` read in `spec.timeZone`: which instants are slots.
//!
//! Parsing and searching are croner's (4.x). Its daylight-saving behaviour
//! is the Vixie cron / Open Cron Pattern Specification one, which is what a
//! person expects of a backup schedule:
//!
//! - **Spring forward** (a wall-clock hour does not exist): a job at a fixed
//!   time inside the gap (`30 2 * * *` in Europe/Berlin on the last Sunday of
//!   March) runs once, at the first instant after the gap (03:00 local).
//!   Jobs with a wildcard or step in minute or hour simply have no slots in
//!   the missing hour.
//! - **Fall back** (a wall-clock hour happens twice): a fixed-time job runs
//!   once, at the first of the two instants; a wildcard or step job runs at
//!   every matching instant, since every real hour still passes.
//!
//! So a daily backup neither skips nor doubles on a DST change. Slots are
//! always returned as UTC instants; they are whole seconds (minutes, in
//! fact, for a 5-field expression).

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Condition reason for a schedule or time zone that cannot be used.
pub const INVALID_SCHEDULE: &str = "InvalidSchedule";

/// Why `spec.schedule` / `spec.timeZone` cannot be scheduled. Admission
/// rejects most of these already; this is the run-time guard (for objects
/// stored before a validation existed, or croner refusing what the regular
/// expression allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "spec.schedule {expression:?} is not a 5-field cron expression (minute hour day-of-month month day-of-week) or a macro like @daily: {detail}"
    )]
    Malformed { expression: String, detail: String },
    #[error(
        "spec.schedule {expression:?} never matches a real date (like 30 February), so nothing would ever run"
    )]
    NeverMatches { expression: String },
    #[error("spec.timeZone {zone:?} is not an IANA time zone name such as Europe/Moscow or UTC")]
    UnknownTimeZone { zone: String },
}

impl ScheduleError {
    /// The condition reason every schedule error is reported under.
    pub fn reason(&self) -> &'static str {
        INVALID_SCHEDULE
    }
}

/// A parsed, usable schedule: a cron expression and the zone it runs in.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

/// The macros `spec.schedule` accepts, as the 5-field expressions they mean.
/// Expanded here rather than by croner because croner does not know
/// `@midnight`, which admission (like Kubernetes CronJob) accepts.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// Parses a schedule and its time zone.
    ///
    /// Exactly five fields, or one of the macros. Steps written from a start
    /// value (`5/15`) are accepted, as the admission rule accepts them and
    /// Vixie cron reads them (every 15 minutes from minute 5). A pattern that
    /// can never match (`0 0 30 2 *`) is refused here, so later searches
    /// always find a slot within a few years.
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let zone: Tz = time_zone
            .parse()
            .map_err(|_| ScheduleError::UnknownTimeZone {
                zone: time_zone.to_string(),
            })?;
        let malformed = |detail: String| ScheduleError::Malformed {
            expression: expression.to_string(),
            detail,
        };
        let trimmed = expression.trim();
        let fields = if trimmed.starts_with('@') {
            MACROS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
                .map(|(_, fields)| *fields)
                .ok_or_else(|| {
                    malformed(
                        "unknown macro; use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"
                            .to_string(),
                    )
                })?
        } else {
            trimmed
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .sloppy_ranges(true)
            .build()
            .parse(fields)
            .map_err(|e| malformed(e.to_string()))?;
        let schedule = Self { cron, zone };
        // Croner searches up to the year 5000 before giving up; a valid
        // pattern matches at least every 28 years, so one search from a
        // fixed instant tells an impossible pattern apart.
        if schedule.next_slot_after(DateTime::UNIX_EPOCH).is_none() {
            return Err(ScheduleError::NeverMatches {
                expression: expression.to_string(),
            });
        }
        Ok(schedule)
    }

    /// The time zone the schedule runs in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first slot strictly after `t`.
    ///
    /// `None` only past croner's search horizon (the year 5000).
    pub fn next_slot_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Slots are whole seconds, so the first slot after `t` is the first
        // after `t` rounded down to its second.
        let from = t.trunc_subsecs(0).with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&from, false)
            .ok()
            .map(|slot| slot.with_timezone(&Utc))
    }

    /// The latest slot in `(after, t]`: at or before `t`, strictly after
    /// `after`. Slots at or before `after` (the anchor, or the slot last
    /// run) never qualify.
    pub fn latest_slot_at_or_before(
        &self,
        t: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if t <= after {
            return None;
        }
        let from = t.trunc_subsecs(0).with_timezone(&self.zone);
        self.cron
            .find_previous_occurrence(&from, true)
            .ok()
            .map(|slot| slot.with_timezone(&Utc))
            .filter(|slot| *slot > after)
    }

    /// How many slots lie strictly between `after` and `before`, counting
    /// at most `limit` of them: the cost stays bounded however long the gap
    /// (`* * * * *` after a year of downtime is half a million slots).
    pub fn count_slots_between(
        &self,
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: u64,
    ) -> u64 {
        let mut count = 0;
        let mut cursor = after;
        while count < limit {
            match self.next_slot_after(cursor) {
                Some(slot) if slot < before => {
                    count += 1;
                    cursor = slot;
                }
                _ => break,
            }
        }
        count
    }

    /// `t` in RFC 3339 with the schedule's UTC offset, the way
    /// `status.nextScheduleTime` shows it (`2026-03-29T03:00:00+02:00`):
    /// a person reads the local time of the slot and the offset in one go.
    pub fn local_rfc3339(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.zone)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn local(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Every slot in `[from, to)`, walked one after another.
    fn slots(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = vec![];
        let mut cursor = from - TimeDelta::seconds(1);
        while let Some(slot) = schedule.next_slot_after(cursor) {
            if slot >= to {
                break;
            }
            out.push(slot);
            cursor = slot;
        }
        out
    }

    #[test]
    fn a_daily_schedule_runs_at_its_local_time() {
        let s = Schedule::parse("0 2 * * *", "Europe/Moscow").unwrap();
        // 02:00 in Moscow (UTC+3) is 23:00 UTC the day before.
        assert_eq!(
            s.next_slot_after(utc(2026, 1, 5, 12, 0)),
            Some(utc(2026, 1, 5, 23, 0))
        );
    }

    #[test]
    fn the_next_slot_is_strictly_after_the_given_time() {
        let s = Schedule::parse("0 2 * * *", "UTC").unwrap();
        assert_eq!(
            s.next_slot_after(utc(2026, 1, 5, 2, 0)),
            Some(utc(2026, 1, 6, 2, 0))
        );
        let just_before = utc(2026, 1, 5, 2, 0) - TimeDelta::milliseconds(1);
        assert_eq!(s.next_slot_after(just_before), Some(utc(2026, 1, 5, 2, 0)));
        let just_after = utc(2026, 1, 5, 2, 0) + TimeDelta::milliseconds(1);
        assert_eq!(s.next_slot_after(just_after), Some(utc(2026, 1, 6, 2, 0)));
    }

    #[test]
    fn the_latest_slot_includes_the_given_time_and_excludes_the_lower_bound() {
        let s = Schedule::parse("0 2 * * *", "UTC").unwrap();
        let long_ago = utc(2020, 1, 1, 0, 0);
        assert_eq!(
            s.latest_slot_at_or_before(utc(2026, 1, 5, 2, 0), long_ago),
            Some(utc(2026, 1, 5, 2, 0))
        );
        assert_eq!(
            s.latest_slot_at_or_before(utc(2026, 1, 5, 1, 59), long_ago),
            Some(utc(2026, 1, 4, 2, 0))
        );
        let half_second_late = utc(2026, 1, 5, 2, 0) + TimeDelta::milliseconds(500);
        assert_eq!(
            s.latest_slot_at_or_before(half_second_late, long_ago),
            Some(utc(2026, 1, 5, 2, 0))
        );
        // A slot at the bound itself does not count.
        assert_eq!(
            s.latest_slot_at_or_before(utc(2026, 1, 5, 3, 0), utc(2026, 1, 5, 2, 0)),
            None
        );
        assert_eq!(
            s.latest_slot_at_or_before(utc(2026, 1, 5, 3, 0), utc(2026, 1, 5, 1, 0)),
            Some(utc(2026, 1, 5, 2, 0))
        );
    }

    #[test]
    fn macros_mean_their_five_field_forms() {
        let after = utc(2026, 1, 5, 12, 30); // a Monday
        for (macro_, expected) in [
            ("@hourly", utc(2026, 1, 5, 13, 0)),
            ("@daily", utc(2026, 1, 6, 0, 0)),
            ("@midnight", utc(2026, 1, 6, 0, 0)),
            ("@weekly", utc(2026, 1, 11, 0, 0)), // Sunday
            ("@monthly", utc(2026, 2, 1, 0, 0)),
            ("@yearly", utc(2027, 1, 1, 0, 0)),
            ("@annually", utc(2027, 1, 1, 0, 0)),
            ("@DAILY", utc(2026, 1, 6, 0, 0)),
        ] {
            let s = Schedule::parse(macro_, "UTC").unwrap();
            assert_eq!(s.next_slot_after(after), Some(expected), "{macro_}");
        }
    }

    #[test]
    fn steps_from_a_start_value_are_read_as_vixie_cron_does() {
        let s = Schedule::parse("5/15 * * * *", "UTC").unwrap();
        assert_eq!(
            slots(&s, utc(2026, 1, 5, 10, 0), utc(2026, 1, 5, 11, 0)),
            vec![
                utc(2026, 1, 5, 10, 5),
                utc(2026, 1, 5, 10, 20),
                utc(2026, 1, 5, 10, 35),
                utc(2026, 1, 5, 10, 50)
            ]
        );
    }

    #[test]
    fn names_of_days_and_months_are_understood() {
        let s = Schedule::parse("0 3 * jan mon-fri", "UTC").unwrap();
        // 2026-01-10 is a Saturday: the next run is Monday the 12th.
        assert_eq!(
            s.next_slot_after(utc(2026, 1, 10, 0, 0)),
            Some(utc(2026, 1, 12, 3, 0))
        );
    }

    #[test]
    fn malformed_schedules_are_refused_with_a_readable_reason() {
        for bad in [
            "0 0 * * * *",
            "* * * *",
            "61 * * * *",
            "0 24 * * *",
            "0 2 * * 8",
            "every day",
            "",
            "@reboot",
            "@fortnightly",
        ] {
            let err = Schedule::parse(bad, "UTC").unwrap_err();
            assert!(
                matches!(err, ScheduleError::Malformed { .. }),
                "{bad:?}: {err}"
            );
            assert_eq!(err.reason(), INVALID_SCHEDULE);
            let message = err.to_string();
            assert!(message.starts_with("spec.schedule"), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
        }
    }

    #[test]
    fn a_schedule_that_never_matches_is_refused() {
        let err = Schedule::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert_eq!(
            err,
            ScheduleError::NeverMatches {
                expression: "0 0 30 2 *".into()
            }
        );
        assert_eq!(err.reason(), INVALID_SCHEDULE);
        // Rare but real dates are fine.
        let leap = Schedule::parse("0 0 29 2 *", "UTC").unwrap();
        assert_eq!(
            leap.next_slot_after(utc(2026, 1, 1, 0, 0)),
            Some(utc(2028, 2, 29, 0, 0))
        );
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        for bad in ["Mars/Olympus_Mons", "", "europe/moscow", "+03:00"] {
            let err = Schedule::parse("0 2 * * *", bad).unwrap_err();
            assert_eq!(err, ScheduleError::UnknownTimeZone { zone: bad.into() });
            assert!(err.to_string().contains("spec.timeZone"));
        }
    }

    #[test]
    fn the_next_slot_is_shown_with_the_zones_offset() {
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let winter = s.next_slot_after(utc(2026, 1, 5, 0, 0)).unwrap();
        assert_eq!(s.local_rfc3339(winter), "2026-01-05T02:30:00+01:00");
        let summer = s.next_slot_after(utc(2026, 7, 5, 0, 0)).unwrap();
        assert_eq!(s.local_rfc3339(summer), "2026-07-05T02:30:00+02:00");
    }

    #[test]
    fn counting_slots_is_exact_below_the_limit_and_stops_at_it() {
        let s = Schedule::parse("0 * * * *", "UTC").unwrap();
        let from = utc(2026, 1, 5, 0, 0);
        // Strictly between 00:00 and 05:00: 01, 02, 03, 04.
        assert_eq!(s.count_slots_between(from, utc(2026, 1, 5, 5, 0), 100), 4);
        assert_eq!(s.count_slots_between(from, utc(2026, 1, 5, 5, 0), 3), 3);
        assert_eq!(s.count_slots_between(from, from, 100), 0);
        let every_minute = Schedule::parse("* * * * *", "UTC").unwrap();
        let a_year_later = from + TimeDelta::days(365);
        assert_eq!(every_minute.count_slots_between(from, a_year_later, 50), 50);
    }

    // Daylight saving: Europe/Berlin springs forward on 2026-03-29 at 02:00
    // (to 03:00) and falls back on 2026-10-25 at 03:00 (to 02:00).
    // America/New_York springs forward on 2026-03-08 at 02:00 and falls back
    // on 2026-11-01 at 02:00 (to 01:00).

    #[test]
    fn berlin_spring_forward_day_runs_a_daily_job_once_just_after_the_gap() {
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let runs = slots(&s, utc(2026, 3, 28, 0, 0), utc(2026, 3, 31, 0, 0));
        assert_eq!(
            runs,
            vec![
                utc(2026, 3, 28, 1, 30), // 02:30 CET
                utc(2026, 3, 29, 1, 0),  // 02:30 does not exist: 03:00 CEST
                utc(2026, 3, 30, 0, 30), // 02:30 CEST
            ]
        );
        assert_eq!(s.local_rfc3339(runs[1]), "2026-03-29T03:00:00+02:00");
    }

    #[test]
    fn berlin_fall_back_day_runs_a_daily_job_once_at_the_first_pass() {
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let runs = slots(&s, utc(2026, 10, 24, 0, 0), utc(2026, 10, 27, 0, 0));
        assert_eq!(
            runs,
            vec![
                utc(2026, 10, 24, 0, 30), // 02:30 CEST
                utc(2026, 10, 25, 0, 30), // 02:30 CEST, the first 02:30
                utc(2026, 10, 26, 1, 30), // 02:30 CET
            ]
        );
        // The second 02:30 (CET, 01:30 UTC) is not a slot, looking back either.
        assert_eq!(
            s.latest_slot_at_or_before(utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 0, 30)),
            None
        );
    }

    #[test]
    fn new_york_spring_forward_day_runs_a_daily_job_once_just_after_the_gap() {
        let s = Schedule::parse("30 2 * * *", "America/New_York").unwrap();
        let runs = slots(&s, utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0));
        assert_eq!(
            runs,
            vec![
                utc(2026, 3, 7, 7, 30), // 02:30 EST
                utc(2026, 3, 8, 7, 0),  // 02:30 does not exist: 03:00 EDT
                utc(2026, 3, 9, 6, 30), // 02:30 EDT
            ]
        );
        assert_eq!(s.local_rfc3339(runs[1]), "2026-03-08T03:00:00-04:00");
    }

    #[test]
    fn new_york_fall_back_day_runs_a_daily_job_once_at_the_first_pass() {
        let s = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
        let runs = slots(&s, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0));
        assert_eq!(
            runs,
            vec![
                utc(2026, 10, 31, 5, 30), // 01:30 EDT
                utc(2026, 11, 1, 5, 30),  // 01:30 EDT, the first 01:30
                utc(2026, 11, 2, 6, 30),  // 01:30 EST
            ]
        );
        assert_eq!(
            local(New_York, 2026, 11, 1, 1, 30),
            utc(2026, 11, 1, 5, 30),
            "the first 01:30 is the EDT one"
        );
    }

    #[test]
    fn an_hourly_job_follows_real_hours_across_both_changes() {
        let s = Schedule::parse("0 * * * *", "Europe/Berlin").unwrap();
        let day = |y, m, d| {
            let start = local(Berlin, y, m, d, 0, 0);
            let end = local(Berlin, y, m, d + 1, 0, 0);
            slots(&s, start, end).len()
        };
        assert_eq!(day(2026, 3, 29), 23, "the missing hour has no slot");
        assert_eq!(day(2026, 10, 25), 25, "the repeated hour runs twice");
        assert_eq!(day(2026, 10, 26), 24);
    }

    #[test]
    fn a_daily_job_runs_once_on_each_day_around_a_leap_day() {
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let from = local(Berlin, 2028, 2, 27, 0, 0);
        let to = local(Berlin, 2028, 3, 2, 0, 0);
        assert_eq!(
            slots(&s, from, to),
            vec![
                local(Berlin, 2028, 2, 27, 2, 30),
                local(Berlin, 2028, 2, 28, 2, 30),
                local(Berlin, 2028, 2, 29, 2, 30),
                local(Berlin, 2028, 3, 1, 2, 30),
            ]
        );
        // In a common year February 28 is followed by March 1.
        let from = local(Berlin, 2027, 2, 27, 0, 0);
        let to = local(Berlin, 2027, 3, 2, 0, 0);
        assert_eq!(slots(&s, from, to).len(), 3);
    }

    #[test]
    fn a_job_on_the_31st_skips_the_months_without_one() {
        let s = Schedule::parse("0 3 31 * *", "America/New_York").unwrap();
        let from = local(New_York, 2026, 1, 1, 0, 0);
        let to = local(New_York, 2027, 1, 1, 0, 0);
        let months: Vec<u32> = slots(&s, from, to)
            .iter()
            .map(|t| chrono::Datelike::month(&t.with_timezone(&New_York)))
            .collect();
        assert_eq!(months, vec![1, 3, 5, 7, 8, 10, 12]);
    }

    #[test]
    fn a_monthly_job_on_the_first_crosses_month_and_year_ends_in_local_time() {
        // 00:15 on the 1st in Berlin is still the last day of the month in UTC.
        let s = Schedule::parse("15 0 1 * *", "Europe/Berlin").unwrap();
        assert_eq!(
            s.next_slot_after(utc(2026, 12, 31, 12, 0)),
            Some(utc(2026, 12, 31, 23, 15)),
            "New Year's slot, one hour before UTC's midnight"
        );
        assert_eq!(
            s.next_slot_after(utc(2027, 2, 28, 12, 0)),
            Some(utc(2027, 2, 28, 23, 15))
        );
    }

    #[test]
    fn a_job_on_the_29th_of_february_comes_every_four_years() {
        let s = Schedule::parse("0 1 29 2 *", "UTC").unwrap();
        let from = utc(2024, 3, 1, 0, 0);
        let to = utc(2033, 1, 1, 0, 0);
        assert_eq!(
            slots(&s, from, to),
            vec![utc(2028, 2, 29, 1, 0), utc(2032, 2, 29, 1, 0)]
        );
    }
}
