//! Which path each route's MCP endpoint has. `on-request` is not told the
//! HTTP path, but the metadata URL in a 403 challenge needs it; the HTTP
//! hook, which sees every request first, records it here. Kept in the
//! store too, since the two hooks of one request may run in different
//! instances.

use std::collections::HashMap;

use mcpd_plugin_sdk::{log, store};

#[derive(Default)]
pub struct RoutePaths {
    known: HashMap<String, String>,
}

impl RoutePaths {
    pub fn remember(&mut self, route: &str, path: &str) {
        let path = path.trim_end_matches('/');
        if self.known.get(route).is_some_and(|p| p == path) {
            return;
        }
        if let Err(e) = store::set(&key(route), path, store::NEVER) {
            log::warn!("cannot record the path of route {route}: {e}");
        }
        self.known.insert(route.to_string(), path.to_string());
    }

    pub fn lookup(&mut self, route: &str) -> Option<String> {
        if let Some(path) = self.known.get(route) {
            return Some(path.clone());
        }
        let path = store::get(&key(route)).ok().flatten()?;
        self.known.insert(route.to_string(), path.clone());
        Some(path)
    }
}

fn key(route: &str) -> String {
    format!("path:{route}")
}
