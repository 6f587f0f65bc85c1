//! Logging to mcpd's log (tagged with the plugin's name):
//! `log::info!("denied {tool}")`, or `log::log(Level::Warn, "...")`.
//! Plugins have no stderr worth writing to; use these.

pub use crate::bindings::mcpd::plugin::host::Level;

/// Writes one line to mcpd's log.
pub fn log(level: Level, message: &str) {
    crate::host::log(level, message);
}

// `#[macro_export]` puts macros at the crate root; the hidden names are
// re-exported below so that plugins write `log::info!`.

#[doc(hidden)]
#[macro_export]
macro_rules! __mcpd_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mcpd_trace {
    ($($arg:tt)+) => { $crate::__mcpd_log!(Trace, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mcpd_debug {
    ($($arg:tt)+) => { $crate::__mcpd_log!(Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mcpd_info {
    ($($arg:tt)+) => { $crate::__mcpd_log!(Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mcpd_warn {
    ($($arg:tt)+) => { $crate::__mcpd_log!(Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __mcpd_error {
    ($($arg:tt)+) => { $crate::__mcpd_log!(Error, $($arg)+) };
}

/// `log::debug!("format {}", args)`: a debug line in mcpd's log.
pub use crate::__mcpd_debug as debug;
/// `log::error!("format {}", args)`: an error in mcpd's log.
pub use crate::__mcpd_error as error;
/// `log::info!("format {}", args)`: an info line in mcpd's log.
pub use crate::__mcpd_info as info;
/// `log::trace!("format {}", args)`: a trace line in mcpd's log.
pub use crate::__mcpd_trace as trace;
/// `log::warn!("format {}", args)`: a warning in mcpd's log.
pub use crate::__mcpd_warn as warn;
