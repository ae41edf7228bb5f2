//! Time as stored (microseconds since the Unix epoch, an `i64` column that
//! sorts and compares the same on SQLite and PostgreSQL) and as sent
//! (`google.protobuf.Timestamp`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;

/// A day, in microseconds (the unit of stored times).
pub const DAY: i64 = 86_400_000_000;

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// `micros` plus a duration.
pub fn add(micros: i64, duration: Duration) -> i64 {
    micros.saturating_add(duration.as_micros() as i64)
}

/// Stored microseconds as a protobuf timestamp.
pub fn to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// Seconds of the earliest `google.protobuf.Timestamp`,
/// 0001-01-01T00:00:00Z.
pub const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Seconds of the latest `google.protobuf.Timestamp`,
/// 9999-12-31T23:59:59Z.
pub const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A protobuf timestamp taken from a message as microseconds, checked:
/// `INVALID_ARGUMENT` naming `field` outside the range a `Timestamp` may
/// hold (years 1 to 9999) or with `nanos` outside `0..1e9`. Within that
/// range microseconds fit an `i64` with room to spare (±3·10¹⁷), so
/// differences and sums of a few of them cannot overflow.
pub fn from_timestamp(ts: &prost_types::Timestamp, field: &str) -> Result<i64, Error> {
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&ts.seconds) {
        return Err(Error::invalid(
            field,
            "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ));
    }
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(Error::invalid(field, "nanos must be 0 to 999999999"));
    }
    Ok(ts.seconds * 1_000_000 + i64::from(ts.nanos / 1000))
}

/// Seconds of the longest `google.protobuf.Duration`, about 10,000 years.
pub const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// A protobuf duration taken from a message, checked: `INVALID_ARGUMENT`
/// naming `field` when negative or outside the range a `Duration` may hold
/// (prost's own conversion panics on some of them).
pub fn from_duration(d: &prost_types::Duration, field: &str) -> Result<Duration, Error> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Error::invalid(field, "must not be negative"));
    }
    if d.seconds > MAX_DURATION_SECONDS || d.nanos >= 1_000_000_000 {
        return Err(Error::invalid(
            field,
            "must be at most 315576000000 s, with nanos below 1000000000",
        ));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// [`from_timestamp`] of an optional field.
pub fn from_optional_timestamp(
    ts: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<i64>, Error> {
    ts.map(|ts| from_timestamp(ts, field)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_checked_before_conversion() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(from_duration(&d(5, 7), "d").unwrap(), Duration::new(5, 7));
        for bad in [
            d(-1, 0),
            d(0, -1),
            d(i64::MIN, 0),
            d(i64::MIN, i32::MIN),
            d(MAX_DURATION_SECONDS + 1, 0),
            d(1, 1_000_000_000),
            d(i64::MAX, i32::MAX),
        ] {
            assert!(from_duration(&bad, "d").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trips() {
        for micros in [0, 1, 1_700_000_000_123_456, -5] {
            assert_eq!(from_timestamp(&to_timestamp(micros), "t").unwrap(), micros);
        }
    }

    #[test]
    fn timestamps_outside_the_protobuf_range_are_refused() {
        let ts = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        for bad in [
            ts(i64::MIN, 0),
            ts(i64::MAX, 0),
            ts(MIN_TIMESTAMP_SECONDS - 1, 0),
            ts(MAX_TIMESTAMP_SECONDS + 1, 0),
            ts(0, -1),
            ts(0, 1_000_000_000),
            ts(0, i32::MIN),
        ] {
            let err = from_timestamp(&bad, "start_time").unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument(v) if v[0].field == "start_time"),
                "{bad:?}: {err:?}"
            );
        }
        let low = from_timestamp(&ts(MIN_TIMESTAMP_SECONDS, 0), "t").unwrap();
        let high = from_timestamp(&ts(MAX_TIMESTAMP_SECONDS, 999_999_999), "t").unwrap();
        assert!(high.checked_sub(low).is_some());
    }
}
