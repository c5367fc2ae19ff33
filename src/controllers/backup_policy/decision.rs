//! Whether a slot runs now, how many were missed, and when to look again.
//!
//! The rules (DESIGN "BackupPolicy", ACCEPTANCE 10):
//! - Slots at or before the *anchor* never run. The anchor is when the
//!   current schedule took effect: the policy's creation, the last edit of
//!   `schedule` or `timeZone`, or the resume from `suspend`. So creating,
//!   editing or resuming a policy never fires a run; the first run is the
//!   next real slot. ("Run now" is the explicit way, see [`super::run_now`].)
//! - After downtime at most one catch-up run: only the latest slot that
//!   passed, and only if it is no older than `startingDeadlineSeconds`.
//!   Every other slot since the last started one is counted as missed.
//! - While suspended nothing runs and there is no next slot.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::schedule::Schedule;

/// At most this many missed slots are counted in one decision, so that the
/// cost stays bounded: `* * * * *` after a year of downtime would otherwise
/// mean walking half a million slots. A larger gap reports exactly this
/// many (about a week of every-minute slots, years of daily ones).
pub const MISSED_COUNT_LIMIT: u64 = 10_000;

/// What the decision needs to know, all of it from spec, status and the
/// injected clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// When the current schedule took effect (creation, last edit of
    /// `schedule`/`timeZone`, resume from `suspend`). Slots at or before it
    /// never run.
    pub anchor: DateTime<Utc>,
    /// The slot of the latest run started (`status.lastScheduleTime`).
    pub last_started: Option<DateTime<Utc>>,
    /// The injected current time.
    pub now: DateTime<Utc>,
    /// `spec.startingDeadlineSeconds`: how late a slot may still start.
    pub starting_deadline: TimeDelta,
    /// `spec.suspend`.
    pub suspended: bool,
}

/// What to do at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The slot to run now, if any.
    pub run: Option<DateTime<Utc>>,
    /// Slots since the last started one (and after the anchor) that will
    /// never run, not counting `run`. The figure is relative to
    /// `last_started`, not an increment: a decision that runs nothing
    /// reports the same slots again next time. Add it to
    /// `status.missedRuns` when recording `run` as `lastScheduleTime`, so
    /// each missed slot is counted exactly once. Capped at
    /// [`MISSED_COUNT_LIMIT`].
    pub missed: u64,
    /// The next slot after `now`; `None` while suspended.
    pub next: Option<DateTime<Utc>>,
    /// When to reconcile again to catch `next`; `None` when no time-based
    /// wake-up is needed (suspended: resuming is a spec change, which the
    /// watch delivers).
    pub requeue_after: Option<Duration>,
}

impl Schedule {
    /// Decides what the schedule wants at `state.now`.
    pub fn decide(&self, state: &ScheduleState) -> Decision {
        if state.suspended {
            return Decision {
                run: None,
                missed: 0,
                next: None,
                requeue_after: None,
            };
        }
        // Nothing at or before the anchor runs, nor anything already run;
        // a last run before the anchor (the schedule was since edited) does
        // not reopen the slots in between.
        let floor = state
            .last_started
            .map_or(state.anchor, |last| last.max(state.anchor));
        let next = self.next_slot_after(state.now.max(floor));
        let requeue_after = next.map(|slot| (slot - state.now).to_std().unwrap_or_default());
        let Some(latest) = self.latest_slot_at_or_before(state.now, floor) else {
            return Decision {
                run: None,
                missed: 0,
                next,
                requeue_after,
            };
        };
        let skipped_before_latest = self.count_slots_between(floor, latest, MISSED_COUNT_LIMIT);
        let (run, missed) = if state.now - latest <= state.starting_deadline {
            (Some(latest), skipped_before_latest)
        } else {
            (None, skipped_before_latest + 1)
        };
        Decision {
            run,
            missed: missed.min(MISSED_COUNT_LIMIT),
            next,
            requeue_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn daily_at_two() -> Schedule {
        Schedule::parse("0 2 * * *", "UTC").unwrap()
    }

    fn state(
        anchor: DateTime<Utc>,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> ScheduleState {
        ScheduleState {
            anchor,
            last_started: last,
            now,
            starting_deadline: TimeDelta::hours(1),
            suspended: false,
        }
    }

    /// How often the simulated controller reconciles.
    #[derive(Debug, Clone, Copy)]
    enum Pace {
        /// On a fixed period, as if woken by unrelated events.
        Every(TimeDelta),
        /// Only when the previous decision asked to be woken.
        AsRequeued,
    }

    /// Drives the decision the way the controller would: reconciles from
    /// `from` to `to` at `pace`, records each run as the last started slot
    /// and adds `missed` only when a run is recorded.
    fn drive(
        schedule: &Schedule,
        anchor: DateTime<Utc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        pace: Pace,
    ) -> (Vec<DateTime<Utc>>, u64) {
        let mut last = None;
        let mut runs = vec![];
        let mut missed = 0;
        let mut now = from;
        while now < to {
            let d = schedule.decide(&state(anchor, last, now));
            if let Some(slot) = d.run {
                runs.push(slot);
                missed += d.missed;
                last = Some(slot);
            }
            now += match pace {
                Pace::Every(step) => step,
                Pace::AsRequeued => match d.requeue_after {
                    Some(wait) => TimeDelta::from_std(wait).unwrap(),
                    None => break,
                },
            };
        }
        (runs, missed)
    }

    /// Both ways of being woken: polled every 7 minutes (which never lands
    /// on a slot exactly, so each run starts a little late) and on requeue.
    const PACES: [Pace; 2] = [Pace::Every(TimeDelta::minutes(7)), Pace::AsRequeued];

    #[test]
    fn creating_a_policy_right_after_a_slot_does_not_run_it() {
        // Created at 02:00:30, half a minute after today's slot.
        let created = utc(2026, 1, 5, 2, 0) + TimeDelta::seconds(30);
        let d = daily_at_two().decide(&state(created, None, created + TimeDelta::seconds(1)));
        assert_eq!(d.run, None);
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(utc(2026, 1, 6, 2, 0)));
    }

    #[test]
    fn a_slot_exactly_at_the_anchor_does_not_run() {
        let created = utc(2026, 1, 5, 2, 0);
        let d = daily_at_two().decide(&state(created, None, created));
        assert_eq!(d.run, None);
        assert_eq!(d.next, Some(utc(2026, 1, 6, 2, 0)));
    }

    #[test]
    fn the_first_real_slot_after_creation_runs() {
        let created = utc(2026, 1, 5, 12, 0);
        let at_slot = utc(2026, 1, 6, 2, 0);
        let d = daily_at_two().decide(&state(created, None, at_slot));
        assert_eq!(d.run, Some(at_slot));
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(utc(2026, 1, 7, 2, 0)));
        assert_eq!(d.requeue_after, Some(Duration::from_secs(24 * 3600)));
    }

    #[test]
    fn a_run_already_started_does_not_run_again() {
        let slot = utc(2026, 1, 6, 2, 0);
        let d = daily_at_two().decide(&state(
            utc(2026, 1, 1, 0, 0),
            Some(slot),
            slot + TimeDelta::minutes(5),
        ));
        assert_eq!(d.run, None);
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(utc(2026, 1, 7, 2, 0)));
    }

    #[test]
    fn editing_the_schedule_does_not_fire_the_slots_it_opens() {
        // Ran at 02:00; at 10:00 the schedule becomes hourly. The hours
        // 03:00..10:00 are before the new anchor: none runs, none is missed.
        let hourly = Schedule::parse("0 * * * *", "UTC").unwrap();
        let edited = utc(2026, 1, 6, 10, 0) + TimeDelta::seconds(5);
        let d = hourly.decide(&state(edited, Some(utc(2026, 1, 6, 2, 0)), edited));
        assert_eq!(d.run, None);
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(utc(2026, 1, 6, 11, 0)));
        let at_eleven = hourly.decide(&state(
            edited,
            Some(utc(2026, 1, 6, 2, 0)),
            utc(2026, 1, 6, 11, 0),
        ));
        assert_eq!(at_eleven.run, Some(utc(2026, 1, 6, 11, 0)));
        assert_eq!(at_eleven.missed, 0);
    }

    #[test]
    fn resuming_does_not_run_or_count_the_slots_of_the_pause() {
        // Suspended for three days; resumed (the new anchor) at 12:00.
        let resumed = utc(2026, 1, 9, 12, 0);
        let d = daily_at_two().decide(&state(resumed, Some(utc(2026, 1, 6, 2, 0)), resumed));
        assert_eq!(d.run, None);
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(utc(2026, 1, 10, 2, 0)));
    }

    #[test]
    fn resuming_shortly_after_a_slot_does_not_catch_it_up() {
        let resumed = utc(2026, 1, 9, 2, 10);
        let d = daily_at_two().decide(&state(resumed, Some(utc(2026, 1, 6, 2, 0)), resumed));
        assert_eq!(
            d.run, None,
            "02:00 is within the deadline but before the resume"
        );
    }

    #[test]
    fn while_suspended_nothing_runs_and_nothing_is_next() {
        let mut s = state(utc(2026, 1, 1, 0, 0), None, utc(2026, 1, 6, 2, 0));
        s.suspended = true;
        let d = daily_at_two().decide(&s);
        assert_eq!(
            d,
            Decision {
                run: None,
                missed: 0,
                next: None,
                requeue_after: None
            }
        );
    }

    #[test]
    fn after_downtime_only_the_latest_slot_is_caught_up_and_the_rest_counted() {
        // Last ran on the 2nd; down until 02:30 on the 6th: the 3rd, 4th and
        // 5th are missed, the 6th (30 min late, deadline 1 h) runs.
        let d = daily_at_two().decide(&state(
            utc(2026, 1, 1, 0, 0),
            Some(utc(2026, 1, 2, 2, 0)),
            utc(2026, 1, 6, 2, 30),
        ));
        assert_eq!(d.run, Some(utc(2026, 1, 6, 2, 0)));
        assert_eq!(d.missed, 3);
        assert_eq!(d.next, Some(utc(2026, 1, 7, 2, 0)));
        assert_eq!(d.requeue_after, Some(Duration::from_secs(23 * 3600 + 1800)));
    }

    #[test]
    fn a_slot_later_than_the_starting_deadline_is_missed_not_run() {
        let d = daily_at_two().decide(&state(
            utc(2026, 1, 1, 0, 0),
            Some(utc(2026, 1, 2, 2, 0)),
            utc(2026, 1, 6, 3, 0) + TimeDelta::seconds(1),
        ));
        assert_eq!(d.run, None);
        assert_eq!(d.missed, 4, "3rd, 4th, 5th and 6th");
        assert_eq!(d.next, Some(utc(2026, 1, 7, 2, 0)));
    }

    #[test]
    fn a_slot_exactly_at_the_deadline_still_runs() {
        let d = daily_at_two().decide(&state(
            utc(2026, 1, 1, 0, 0),
            Some(utc(2026, 1, 5, 2, 0)),
            utc(2026, 1, 6, 3, 0),
        ));
        assert_eq!(d.run, Some(utc(2026, 1, 6, 2, 0)));
    }

    #[test]
    fn missed_slots_are_counted_once_when_the_next_run_is_recorded() {
        // Down from the 2nd 03:00 to the 6th 12:00 (past the deadline of the
        // 6th), then running again: the 3rd..6th are missed, counted once,
        // at the run of the 7th.
        let s = daily_at_two();
        let anchor = utc(2026, 1, 1, 12, 0);
        let (before, _) = drive(&s, anchor, anchor, utc(2026, 1, 2, 3, 0), Pace::AsRequeued);
        assert_eq!(before, vec![utc(2026, 1, 2, 2, 0)]);
        let mut last = Some(utc(2026, 1, 2, 2, 0));
        let mut missed_total = 0;
        let mut runs = vec![];
        let mut now = utc(2026, 1, 6, 12, 0);
        while now < utc(2026, 1, 9, 0, 0) {
            let d = s.decide(&state(anchor, last, now));
            if let Some(slot) = d.run {
                missed_total += d.missed;
                runs.push(slot);
                last = Some(slot);
            }
            now += TimeDelta::minutes(10);
        }
        assert_eq!(runs, vec![utc(2026, 1, 7, 2, 0), utc(2026, 1, 8, 2, 0)]);
        assert_eq!(missed_total, 4);
    }

    #[test]
    fn missed_counting_stays_bounded_after_a_year_of_every_minute() {
        let every_minute = Schedule::parse("* * * * *", "UTC").unwrap();
        let last = utc(2025, 1, 1, 0, 0);
        let now = utc(2026, 1, 1, 0, 0) + TimeDelta::seconds(10);
        let started = std::time::Instant::now();
        let d = every_minute.decide(&state(utc(2024, 1, 1, 0, 0), Some(last), now));
        assert_eq!(d.run, Some(utc(2026, 1, 1, 0, 0)));
        assert_eq!(d.missed, MISSED_COUNT_LIMIT);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_clock_behind_the_anchor_waits_for_the_first_slot_after_the_anchor() {
        // The API server stamped creation at 01:59:50; our clock says 01:59:40.
        let created = utc(2026, 1, 6, 1, 59) + TimeDelta::seconds(50);
        let now = utc(2026, 1, 6, 1, 59) + TimeDelta::seconds(40);
        let d = daily_at_two().decide(&state(created, None, now));
        assert_eq!(d.run, None);
        assert_eq!(d.next, Some(utc(2026, 1, 6, 2, 0)));
        assert_eq!(d.requeue_after, Some(Duration::from_secs(20)));
    }

    #[test]
    fn requeue_lands_on_the_next_slot_to_the_subsecond() {
        let now = utc(2026, 1, 6, 1, 59) + TimeDelta::milliseconds(59_250);
        let d = daily_at_two().decide(&state(utc(2026, 1, 1, 0, 0), None, now));
        assert_eq!(d.requeue_after, Some(Duration::from_millis(750)));
    }

    #[test]
    fn reconciling_every_minute_runs_each_daily_slot_exactly_once() {
        let (runs, missed) = drive(
            &daily_at_two(),
            utc(2026, 1, 1, 12, 0),
            utc(2026, 1, 1, 12, 0),
            utc(2026, 1, 5, 0, 0),
            Pace::Every(TimeDelta::minutes(1)),
        );
        assert_eq!(
            runs,
            vec![
                utc(2026, 1, 2, 2, 0),
                utc(2026, 1, 3, 2, 0),
                utc(2026, 1, 4, 2, 0)
            ]
        );
        assert_eq!(missed, 0);
    }

    #[test]
    fn berlin_daily_job_runs_once_on_both_dst_days() {
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        for pace in PACES {
            let from = utc(2026, 3, 28, 12, 0);
            let (spring, missed) = drive(&s, from, from, utc(2026, 3, 30, 12, 0), pace);
            assert_eq!(
                spring,
                vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
                "{pace:?}"
            );
            assert_eq!(missed, 0);
            let from = utc(2026, 10, 24, 12, 0);
            let (fall, missed) = drive(&s, from, from, utc(2026, 10, 26, 12, 0), pace);
            assert_eq!(
                fall,
                vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
                "{pace:?}"
            );
            assert_eq!(missed, 0);
        }
    }

    #[test]
    fn new_york_daily_job_runs_once_on_both_dst_days() {
        for pace in PACES {
            let s = Schedule::parse("30 2 * * *", "America/New_York").unwrap();
            let from = utc(2026, 3, 7, 12, 0);
            let (spring, missed) = drive(&s, from, from, utc(2026, 3, 9, 12, 0), pace);
            assert_eq!(
                spring,
                vec![utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
                "{pace:?}"
            );
            assert_eq!(missed, 0);
            let s = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
            let from = utc(2026, 10, 31, 12, 0);
            let (fall, missed) = drive(&s, from, from, utc(2026, 11, 2, 12, 0), pace);
            assert_eq!(
                fall,
                vec![utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
                "{pace:?}"
            );
            assert_eq!(missed, 0);
        }
    }

    #[test]
    fn an_hourly_job_on_fall_back_day_runs_every_real_hour_once() {
        let s = Schedule::parse("0 * * * *", "Europe/Berlin").unwrap();
        // From 23:30 CEST the day before to the end of the local day
        // (00:00 CET on the 26th, 23:00 UTC): 25 real hours.
        let from = utc(2026, 10, 24, 21, 30);
        let (runs, missed) = drive(&s, from, from, utc(2026, 10, 25, 23, 0), Pace::AsRequeued);
        assert_eq!(runs.len(), 25, "{runs:?}");
        assert_eq!(missed, 0);
    }
}
