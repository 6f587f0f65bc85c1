//! mcpd's tool-policy plugin (work in progress).

use mcpd_plugin_sdk::prelude::*;

struct ToolPolicy;

impl Plugin for ToolPolicy {
    fn info() -> Info {
        Info::new("tool-policy", env!("CARGO_PKG_VERSION"), Hooks::REQUEST)
    }

    fn new(_config: Config) -> Result<Self, Error> {
        Ok(ToolPolicy)
    }
}

mcpd_plugin_sdk::export_plugin!(ToolPolicy);
