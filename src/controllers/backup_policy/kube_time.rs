//! Conversion between Kubernetes `Time` and chrono.
//!
//! k8s-openapi keeps timestamps as `jiff::Timestamp`, while croner and
//! chrono-tz (schedules, time zones, calendar buckets) work in chrono. The
//! decisions take and return `DateTime<Utc>`; the driver converts at the
//! edge with these two functions.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A Kubernetes time as a chrono UTC time. jiff's range (years -9999 to
/// 9999) lies inside chrono's, so every value converts exactly.
pub fn to_utc(time: &Time) -> DateTime<Utc> {
    let Time(timestamp) = time;
    // jiff gives a negative fraction before the epoch (-1.5 s is -1 s and
    // -0.5 s); chrono wants whole seconds rounded down and a positive fraction.
    let (mut seconds, mut nanos) = (timestamp.as_second(), timestamp.subsec_nanosecond());
    if nanos < 0 {
        seconds -= 1;
        nanos += 1_000_000_000;
    }
    DateTime::from_timestamp(seconds, nanos.unsigned_abs()).unwrap_or(if seconds < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// A chrono UTC time as a Kubernetes time. Times beyond jiff's range (past
/// the year 9999, which no schedule reaches: croner stops at 5000) are
/// clamped to its ends rather than failing.
pub fn to_time(time: DateTime<Utc>) -> Time {
    // chrono carries a leap second as a fraction of 1e9 or more; jiff has
    // no leap seconds, so it becomes the last nanosecond of its second.
    let nanos = i32::try_from(time.timestamp_subsec_nanos().min(999_999_999)).unwrap_or(0);
    Time(
        Timestamp::new(time.timestamp(), nanos).unwrap_or(if time.timestamp() < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_time_survives_the_round_trip_through_kubernetes() {
        let t = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()
            + chrono::TimeDelta::milliseconds(250);
        assert_eq!(to_utc(&to_time(t)), t);
        let k8s = Time("2026-03-29T01:00:00Z".parse().unwrap());
        assert_eq!(
            to_utc(&k8s),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()
        );
    }

    #[test]
    fn times_before_the_epoch_convert_too() {
        let t =
            Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::nanoseconds(5);
        assert_eq!(to_utc(&to_time(t)), t);
    }

    #[test]
    fn a_fraction_of_a_second_before_the_epoch_is_not_lost() {
        let k8s = Time("1969-12-31T23:59:58.5Z".parse().unwrap());
        assert_eq!(
            to_utc(&k8s),
            Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 58).unwrap()
                + chrono::TimeDelta::milliseconds(500)
        );
    }

    #[test]
    fn times_beyond_kubernetes_range_are_clamped() {
        assert_eq!(to_time(DateTime::<Utc>::MAX_UTC).0, Timestamp::MAX);
        assert_eq!(to_time(DateTime::<Utc>::MIN_UTC).0, Timestamp::MIN);
    }
}
