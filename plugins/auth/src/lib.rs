//! mcpd's auth plugin (work in progress).

use mcpd_plugin_sdk::prelude::*;

struct Auth;

impl Plugin for Auth {
    fn info() -> Info {
        Info::new("auth", env!("CARGO_PKG_VERSION"), Hooks::REQUEST)
    }

    fn new(_config: Config) -> Result<Self, Error> {
        Ok(Auth)
    }
}

mcpd_plugin_sdk::export_plugin!(Auth);
