//! The SDK's example plugin: a small policy for one route.
//!
//! ```toml
//! [[server.everything.plugins]]
//! path = "target/wasm32-wasip2/release/mcpd_plugin_example.wasm"
//! config = { deny_tools = ["crash"], redact = "secret", principal_header = "x-user" }
//! ```
//!
//! - `principal_header`: on the HTTP request, the value of this header (if
//!   present and not empty) becomes the principal, for later plugins and logs.
//! - `deny_tools`: a `tools/call` of one of these tools is rejected with HTTP
//!   403 and JSON-RPC error `codes::FORBIDDEN` (-32011); the server never
//!   sees it. Every tool call counts in `mcpd_plugin_<name>_tool_calls` with
//!   label `outcome` = `allowed` or `denied`.
//! - `redact`: in every message from the server, each occurrence of this
//!   text in a string value is replaced with `[redacted]`, counted in
//!   `mcpd_plugin_<name>_redactions`.
//!
//! Every key is optional; unknown keys are an error, so a typo in mcpd.toml
//! shows up in mcpd's log at load instead of silently doing nothing.

use mcpd_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    deny_tools: Vec<String>,
    redact: Option<String>,
    principal_header: Option<String>,
}

pub struct Example {
    settings: Settings,
}

impl Plugin for Example {
    fn info() -> Info {
        let hooks = Hooks::HTTP_REQUEST | Hooks::REQUEST | Hooks::RESPONSE;
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), hooks)
    }

    fn new(config: Config) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        // An empty needle would "match" between every character.
        if settings.redact.as_deref() == Some("") {
            return Err(Error::msg("`redact` must not be empty"));
        }
        Ok(Example { settings })
    }

    fn on_http_request(&mut self, request: &HttpRequest) -> Decision {
        let header = self.settings.principal_header.as_deref();
        match header.and_then(|name| request.header(name)) {
            Some(user) if !user.is_empty() => Decision::modify().principal(user),
            _ => Decision::proceed(),
        }
    }

    fn on_request(&mut self, message: &Message) -> Decision {
        let Some(tool) = message.tool_name() else {
            return Decision::proceed();
        };
        let denied = self.settings.deny_tools.iter().any(|t| t == tool);
        // Not the tool name as a label: clients choose it, so its values
        // would be unbounded.
        let outcome = if denied { "denied" } else { "allowed" };
        metrics::counter("tool_calls", &[("outcome", outcome)], 1);
        if !denied {
            return Decision::proceed();
        }
        log::info!("denied a call of {tool} by {:?}", message.principal);
        Decision::reject(403, codes::FORBIDDEN, format!("tool {tool} is not allowed here"))
    }

    fn on_response(&mut self, message: &Message) -> Decision {
        let Some(secret) = self.settings.redact.as_deref() else {
            return Decision::proceed();
        };
        let mut result = match message.params_json() {
            Ok(result) => result,
            // mcpd hands over parsed JSON, so this is not expected; but a
            // redactor that cannot look must not let the message through.
            Err(e) => {
                log::error!("cannot parse a server message: {e}");
                return Decision::reject(502, codes::INTERNAL_ERROR, "unreadable server message");
            }
        };
        let found = redact(&mut result, secret);
        if found == 0 {
            return Decision::proceed();
        }
        metrics::counter("redactions", &[], found);
        Decision::modify().params_json(&result)
    }
}

/// Replaces `secret` in every string inside `value`; returns how many.
fn redact(value: &mut Value, secret: &str) -> u64 {
    match value {
        Value::String(s) if s.contains(secret) => {
            let n = s.matches(secret).count() as u64;
            *s = s.replace(secret, "[redacted]");
            n
        }
        Value::Array(items) => items.iter_mut().map(|v| redact(v, secret)).sum(),
        Value::Object(map) => map.values_mut().map(|v| redact(v, secret)).sum(),
        _ => 0,
    }
}

mcpd_plugin_sdk::export_plugin!(Example);

// Native unit tests: the SDK stands in for the host.
#[cfg(test)]
mod tests {
    use super::*;
    use mcpd_plugin_sdk::testing;
    use serde_json::json;

    fn plugin() -> Example {
        let config = r#"{"deny_tools":["crash"],"redact":"secret","principal_header":"x-user"}"#;
        Example::new(Config::from_json(config)).expect("valid config")
    }

    #[test]
    fn principal_from_header() {
        let d = plugin().on_http_request(&testing::http_request(&[("X-User", "ada")]));
        assert_eq!(d, Decision::modify().principal("ada"));
        let d = plugin().on_http_request(&testing::http_request(&[]));
        assert_eq!(d, Decision::proceed());
    }

    #[test]
    fn denies_listed_tools_only() {
        let mut p = plugin();
        let d = p.on_request(&testing::tool_call("crash", json!({})));
        assert!(matches!(d, Decision::Reject(r) if r.status == 403 && r.error.code == -32011));
        let d = p.on_request(&testing::tool_call("echo", json!({})));
        assert_eq!(d, Decision::proceed());
    }

    #[test]
    fn redacts_strings_in_results() {
        let result = json!({"content": [{"type": "text", "text": "a secret, another secret"}]});
        let d = plugin().on_response(&testing::response(result));
        let want = json!({"content": [{"type": "text", "text": "a [redacted], another [redacted]"}]});
        assert_eq!(d, Decision::modify().params_json(&want));
        let d = plugin().on_response(&testing::response(json!({"content": []})));
        assert_eq!(d, Decision::proceed());
    }

    #[test]
    fn bad_config_is_an_error() {
        let e = Example::new(Config::from_json(r#"{"deny_tool":[]}"#)).err().unwrap();
        assert!(e.to_string().contains("unknown field `deny_tool`"), "{e}");
        assert!(Example::new(Config::from_json(r#"{"redact":""}"#)).is_err());
    }
}
