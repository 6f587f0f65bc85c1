//! `Mcp-Param-*` headers of a bridged `tools/call`: mcpd stands in for the
//! server that processes the body, so it checks them against the tool's
//! `x-mcp-header` annotations. The tools' input schemas come from the
//! server's `tools/list`, kept for [`FRESH_FOR`] and fetched again after
//! (or at once for a tool not seen yet).

use crate::mcp::era::{self, Envelope, Refusal};
use crate::route::Route;
use crate::upstream::bridge::{Target, ToolSchemas};
use http::HeaderMap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a fetched tool list is trusted.
const FRESH_FOR: Duration = Duration::from_secs(10);
/// Pages of `tools/list` read at most.
const MAX_PAGES: usize = 20;

pub(super) async fn check(
    route: &Route,
    target: &Target,
    envelope: &Envelope,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let Some(name) = envelope.params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let schemas = match cached(route).filter(|(at, s)| at.elapsed() < FRESH_FOR && s.contains_key(name)) {
        Some((_, schemas)) => schemas,
        None => match fetch(route, target).await {
            Some(schemas) => schemas,
            // The tool list is not to be had: the server itself judges the call.
            None => return Ok(()),
        },
    };
    let Some(schema) = schemas.get(name) else {
        return Ok(());
    };
    let empty = Value::Object(Default::default());
    let arguments = envelope.params.get("arguments").unwrap_or(&empty);
    era::check_params(schema, arguments, headers)
}

fn cached(route: &Route) -> Option<ToolSchemas> {
    route.bridge.tool_schemas.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn fetch(route: &Route, target: &Target) -> Option<Arc<HashMap<String, Value>>> {
    let timeout = route.settings.http.request_timeout;
    let mut schemas = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| serde_json::json!({ "cursor": c }).to_string());
        let result = match target.request("tools/list", params.as_deref(), timeout).await {
            Ok(result) => result,
            Err(error) => {
                tracing::debug!(server = %route.name, "cannot list tools to check Mcp-Param headers: {error}");
                return None;
            }
        };
        let result: Value = serde_json::from_str(result.get()).ok()?;
        for tool in result.get("tools").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(name), Some(schema)) = (tool.get("name").and_then(Value::as_str), tool.get("inputSchema")) {
                schemas.insert(name.to_owned(), schema.clone());
            }
        }
        cursor = result.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let schemas = Arc::new(schemas);
    *route.bridge.tool_schemas.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), Arc::clone(&schemas)));
    Some(schemas)
}
