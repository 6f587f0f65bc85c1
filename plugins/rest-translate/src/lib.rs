//! mcpd-rest-translate: an HTTP/JSON API served as MCP tools. A translator
//! (world `translator-plugin`): mcpd hands it a route's MCP requests, and
//! it answers `tools/list` from an OpenAPI 3 document or from tools
//! described in its config, and turns each `tools/call` into a request to
//! the API through mcpd's allow-listed outbound HTTP.
//!
//! ```toml
//! [server.users]
//! translator = { path = "target/wasm32-wasip2/release/mcpd_rest_translate.wasm", allow_hosts = ["127.0.0.1:9000"], config = { base_url = "http://127.0.0.1:9000", tools = [
//!     { name = "get_user", description = "Fetch a user", path = "/users/{id}" },
//! ] } }
//! ```
//!
//! The answer to a call: a 2xx JSON body as text (and `structuredContent`
//! when it is an object); a 4xx/5xx or a failed request as a tool result
//! with `isError: true`, since the tool ran and the model should see why it
//! failed; an unknown tool as JSON-RPC error -32602. See README.md for the
//! config keys.

mod answer;
mod catalog;
mod encode;
mod openapi;
mod operation;
mod settings;

use std::time::Duration;

use mcpd_plugin_sdk::prelude::*;
use mcpd_plugin_sdk::{Header, clock};
use serde_json::Value;

use crate::catalog::Catalog;
use crate::operation::{Target, put_header};
use crate::settings::Settings;

pub struct RestTranslate {
    settings: Settings,
    /// Config headers, lower case, ready to send.
    static_headers: Vec<Header>,
    /// Built at `new`, or on first use when the document is fetched
    /// (`openapi_url`); a failed fetch is retried on the next request.
    catalog: Option<Catalog>,
}

impl Translator for RestTranslate {
    fn info() -> Info {
        Info::translator("rest-translate", env!("CARGO_PKG_VERSION"))
    }

    fn new(config: Config) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        let mut static_headers = Vec::new();
        for (name, value) in &settings.headers {
            put_header(&mut static_headers, name, value.clone());
        }
        let inline = match &settings.openapi {
            None => None,
            Some(Value::String(text)) => {
                Some(serde_json::from_str(text).map_err(|e| Error::msg(format!("openapi: {e}")))?)
            }
            Some(doc @ Value::Object(_)) => Some(doc.clone()),
            Some(_) => return Err(Error::msg("openapi: give the document as JSON text or as a table")),
        };
        if inline.is_some() && settings.openapi_url.is_some() {
            return Err(Error::msg("give `openapi` or `openapi_url`, not both"));
        }
        let mut translator = RestTranslate { settings, static_headers, catalog: None };
        if translator.settings.openapi_url.is_none() {
            translator.install(Catalog::build(&translator.settings, inline.as_ref(), None).map_err(Error::msg)?);
        }
        Ok(translator)
    }

    fn instructions(&self) -> Option<String> {
        self.settings.instructions.clone()
    }

    fn handle(&mut self, request: &Message) -> Result<Value, RpcError> {
        match request.method().unwrap_or_default() {
            "tools/list" => Ok(self.catalog()?.tools_list.clone()),
            "tools/call" => self.call(request),
            method => Err(RpcError::method_not_found(method)),
        }
    }
}

impl RestTranslate {
    fn install(&mut self, catalog: Catalog) {
        for skipped in &catalog.skipped {
            log::warn!("left out {skipped}");
        }
        self.catalog = Some(catalog);
    }

    /// The tools, fetching the OpenAPI document first if that is still to do.
    fn catalog(&mut self) -> Result<&Catalog, RpcError> {
        if self.catalog.is_none() {
            let url = self.settings.openapi_url.clone().unwrap_or_default();
            let catalog = self.fetch_catalog(&url).map_err(|e| {
                log::error!("cannot load the OpenAPI document: {e}");
                RpcError::internal(format!("the API description at {url} could not be loaded"))
            })?;
            self.install(catalog);
        }
        self.catalog.as_ref().ok_or_else(|| RpcError::internal("no tools"))
    }

    fn fetch_catalog(&self, url: &str) -> Result<Catalog, String> {
        let mut request = http::Request::new("GET", url).timeout(Duration::from_millis(self.settings.timeout_ms));
        request.headers = self.static_headers.clone();
        let response = request.send().map_err(|e| e.to_string())?;
        if !response.ok() {
            return Err(format!("GET {url}: HTTP {}", response.status));
        }
        let doc: Value = response.json().map_err(|e| format!("GET {url}: not JSON: {e}"))?;
        Catalog::build(&self.settings, Some(&doc), Some(url))
    }

    fn call(&mut self, request: &Message) -> Result<Value, RpcError> {
        let call = request.tool_call()?;
        let mut headers = self.static_headers.clone();
        for name in &self.settings.forward_headers {
            if let Some(value) = request.header(name) {
                put_header(&mut headers, name, value.to_string());
            }
        }
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let catalog = self.catalog()?;
        let Some(operation) = catalog.find(&call.name) else {
            return Err(RpcError::invalid_params(format!("unknown tool: {}", call.name)));
        };
        let target = Target { base_url: &catalog.base_url, headers: &headers, timeout };
        let outbound = match operation.request(&call.arguments, &target) {
            Ok(outbound) => outbound,
            Err(problem) => return Ok(finish(&operation.name, "bad_arguments", 0, ToolResult::error(problem))),
        };
        let line = format!("{} {}", outbound.method, outbound.url);
        let started = clock::monotonic_nanos();
        let (outcome, result) = match outbound.send() {
            Ok(response) => {
                let outcome = if response.ok() { "ok" } else { "http_error" };
                (outcome, answer::tool_result(&response))
            }
            Err(e) => {
                log::debug!("{line} failed: {e}");
                ("network_error", ToolResult::error(format!("{line} failed: {}", e.0)))
            }
        };
        let elapsed = clock::monotonic_nanos().saturating_sub(started);
        Ok(finish(&operation.name, outcome, elapsed, result))
    }
}

/// Counts the call (tool names come from the config, so the label is
/// bounded) and times the API's answer.
fn finish(tool: &str, outcome: &str, elapsed_nanos: u64, result: ToolResult) -> Value {
    metrics::counter("tool_calls", &[("tool", tool), ("outcome", outcome)], 1);
    if elapsed_nanos > 0 {
        metrics::histogram("api_seconds", &[("tool", tool)], elapsed_nanos as f64 / 1e9);
    }
    result.into()
}

mcpd_plugin_sdk::export_translator!(RestTranslate);

#[cfg(test)]
mod tests;
