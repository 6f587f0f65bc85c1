//! The key-value store with expiry, over the `store` import. Keys are
//! private to the plugin; values live in mcpd's session store (memory now,
//! shared across mcpd nodes later), so counters here are how a rate limit
//! holds across plugin instances.

use std::fmt;
use std::time::Duration;

use crate::host::store as raw;

/// A `ttl` that never expires.
pub const NEVER: Duration = Duration::ZERO;

/// The store refused or failed (the host's message).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// Adds `delta` to the integer at `key` and returns the new value. A missing
/// key starts at 0 and expires `ttl` after it is created (`NEVER`: never).
pub fn incr(key: &str, delta: i64, ttl: Duration) -> Result<i64, StoreError> {
    raw::incr(key, delta, ttl_ms(ttl)).map_err(StoreError)
}

/// The value at `key`, if it exists and has not expired.
pub fn get(key: &str) -> Result<Option<String>, StoreError> {
    raw::get(key).map_err(StoreError)
}

/// Sets `key` to `value`, expiring after `ttl` (`NEVER`: never).
pub fn set(key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
    raw::set(key, value, ttl_ms(ttl)).map_err(StoreError)
}

/// Removes `key`.
pub fn delete(key: &str) -> Result<(), StoreError> {
    raw::delete(key).map_err(StoreError)
}

/// The state of a token bucket after [`take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Whether the tokens were taken.
    pub allowed: bool,
    /// Tokens left.
    pub remaining: u64,
    /// When refused: how long until `cost` tokens are there.
    pub retry_after: Duration,
}

/// Takes `cost` tokens from the bucket at `key`, which holds at most
/// `capacity`, starts full and refills at `capacity` per `period`; takes
/// none if there are too few. Atomic across plugin instances (and nodes, with
/// a shared store): `take("ip:1.2.3.4", 100, Duration::from_secs(60), 1)` is
/// 100 requests a minute with bursts up to 100.
pub fn take(key: &str, capacity: u64, period: Duration, cost: u64) -> Result<Bucket, StoreError> {
    let bucket = raw::take(key, capacity, ttl_ms(period).max(1), cost).map_err(StoreError)?;
    Ok(Bucket {
        allowed: bucket.allowed,
        remaining: bucket.remaining,
        retry_after: Duration::from_millis(bucket.retry_after_ms),
    })
}

/// Milliseconds for the host, where 0 means "never": so a non-zero ttl
/// below a millisecond rounds up rather than becoming immortal.
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    match u64::try_from(ttl.as_millis()) {
        Ok(0) if !ttl.is_zero() => 1,
        Ok(ms) => ms,
        Err(_) => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_saturates() {
        assert_eq!(ttl_ms(NEVER), 0);
        assert_eq!(ttl_ms(Duration::from_micros(10)), 1);
        assert_eq!(ttl_ms(Duration::from_secs(60)), 60_000);
        assert_eq!(ttl_ms(Duration::MAX), u64::MAX);
    }
}
