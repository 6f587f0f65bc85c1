//! mcpd's rate-limit plugin (work in progress).

use mcpd_plugin_sdk::prelude::*;

struct RateLimit;

impl Plugin for RateLimit {
    fn info() -> Info {
        Info::new("rate-limit", env!("CARGO_PKG_VERSION"), Hooks::REQUEST)
    }

    fn new(_config: Config) -> Result<Self, Error> {
        Ok(RateLimit)
    }
}

mcpd_plugin_sdk::export_plugin!(RateLimit);
