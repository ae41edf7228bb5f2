//! Time as stored (microseconds since the Unix epoch, an `i64` column that
//! sorts and compares the same on SQLite and PostgreSQL) and as sent
//! (`google.protobuf.Timestamp`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// A protobuf timestamp as microseconds.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for micros in [0, 1, 1_700_000_000_123_456, -5] {
            assert_eq!(from_timestamp(&to_timestamp(micros)), micros);
        }
    }
}
