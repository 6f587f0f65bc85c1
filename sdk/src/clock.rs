//! Time, as mcpd tells it (the same clocks its own logs and limits use).

use crate::host;

/// Wall-clock time: milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    host::now_millis()
}

/// A monotonic clock in nanoseconds, for measuring durations.
pub fn monotonic_nanos() -> u64 {
    host::monotonic_nanos()
}
