//! mcpd's tool-policy plugin: which tools, resources and prompts each
//! caller may use, by principal and scopes (set by an earlier plugin, e.g.
//! auth), with optional tool renaming.
//!
//! - Requests (`tools/call`, `prompts/get`, `resources/read`,
//!   `resources/subscribe`) for something the policy denies are refused
//!   with HTTP 403 and JSON-RPC error -32011 (`FORBIDDEN`).
//! - List results (`tools/list`, `prompts/list`, `resources/list`,
//!   `resources/templates/list`) are filtered in `on_response`, so a client
//!   only sees what it may use.
//! - With `prefix` or `rename`, tools are listed under their new names and
//!   calls are mapped back to the server's names.
//!
//! Rules and their semantics: `policy.rs`; the config: README.md.

mod config;
mod lists;
mod names;
mod policy;

use mcpd_plugin_sdk::prelude::*;
use mcpd_plugin_sdk::reuse::{self, Vary};
use mcpd_plugin_sdk::{MessageKind, serde_json::json};
use serde_json::Value;
use std::time::Duration;

use names::Names;
use policy::{Caller, Kind, Policy};

/// How long mcpd may reuse a request's verdict without asking again.
const REUSE: Duration = Duration::from_secs(60);

pub struct ToolPolicy {
    policy: Policy,
    names: Names,
}

impl Plugin for ToolPolicy {
    fn info() -> Info {
        Info::new("tool-policy", env!("CARGO_PKG_VERSION"), Hooks::REQUEST | Hooks::RESPONSE)
    }

    fn new(config: Config) -> Result<Self, Error> {
        let checked = config::load(&config)?;
        Ok(ToolPolicy { policy: checked.policy, names: checked.names })
    }

    /// Requests that name a tool, prompt or resource, and list answers:
    /// nothing else reaches the hooks. Params are read to filter lists and
    /// to rename calls.
    fn describe(&self) -> Info {
        Self::info()
            .request_methods(["tools/call", "prompts/get", "resources/read", "resources/subscribe"])
            .response_methods(lists::LISTS.iter().map(|(method, _)| *method))
            .reads(Parts::PARAMS)
    }

    fn on_request(&mut self, message: &Message) -> Decision {
        if message.kind != MessageKind::Request {
            return Decision::proceed();
        }
        // The verdict depends on who asks for which name, and on the policy
        // (a new policy is a reload, which drops kept decisions). A name
        // mcpd could not read comes from the params: not reused then.
        // Nor are renamed calls, whose new params carry the arguments.
        let renamed = message.name.as_deref().is_some_and(|name| self.names.server_name(name) != Some(name));
        if message.name.is_some() && !renamed {
            reuse::decision(REUSE, Vary::NAME | Vary::PRINCIPAL | Vary::SCOPES, &[]);
        }
        let kind = match message.method() {
            Some("tools/call") => return self.tool_call(message),
            Some("prompts/get") => Kind::Prompt,
            // Unsubscribing is let through: it only stops updates.
            Some("resources/read" | "resources/subscribe") => Kind::Resource,
            _ => return Decision::proceed(),
        };
        let Some(name) = subject(message, kind) else {
            return missing(kind);
        };
        self.check(message, kind, &name, &name)
    }

    fn on_response(&mut self, message: &Message) -> Decision {
        if message.kind != MessageKind::Response || message.params.is_none() {
            return Decision::proceed();
        }
        // Answers to anything but a list (e.g. every tools/call result) are
        // none of this hook's business: do not parse them.
        if message.method().is_some_and(|method| !lists::is_list_method(method)) {
            return Decision::proceed();
        }
        let mut result = match message.params_json() {
            Ok(result) => result,
            // mcpd hands over parsed JSON, so this is not expected; but a
            // filter that cannot look must not let the list through.
            Err(e) => {
                log::error!("cannot parse a server result: {e}");
                return Decision::reject(502, codes::INTERNAL_ERROR, "unreadable server result");
            }
        };
        let Some(list) = lists::of(message.method(), &result) else {
            return Decision::proceed();
        };
        let caller = caller(message);
        match lists::filter(list, &mut result, &self.policy, &self.names, &caller) {
            None => Decision::proceed(),
            Some(hidden) => {
                metrics::counter("hidden_total", &[("route", &message.route), ("kind", list.kind.name())], hidden);
                Decision::modify().params_json(&result)
            }
        }
    }
}

impl ToolPolicy {
    /// A `tools/call`: map the client's name back, check it, and pass the
    /// server's name on.
    fn tool_call(&self, message: &Message) -> Decision {
        let Some(called) = subject(message, Kind::Tool) else {
            return missing(Kind::Tool);
        };
        let Some(server_name) = self.names.server_name(&called) else {
            metrics::counter(
                "decisions_total",
                &[("route", &message.route), ("kind", "tool"), ("outcome", "unknown")],
                1,
            );
            // What the server says for a tool it does not have (MCP: -32602).
            return Decision::reject(400, codes::INVALID_PARAMS, format!("unknown tool: {called}"))
                .data(json!({"kind": "tool", "name": called}).to_string());
        };
        let decision = self.check(message, Kind::Tool, server_name, &called);
        if server_name == called || decision != Decision::proceed() {
            return decision;
        }
        let mut params = match message.params_json() {
            Ok(Value::Object(params)) => params,
            _ => return missing(Kind::Tool),
        };
        params.insert("name".into(), Value::String(server_name.to_string()));
        Decision::modify().params_json(&Value::Object(params))
    }

    /// Allows or refuses `name` (the server's), naming it as the client did.
    fn check(&self, message: &Message, kind: Kind, name: &str, client_name: &str) -> Decision {
        let allowed = self.policy.allows(&caller(message), kind, name);
        let outcome = if allowed { "allowed" } else { "denied" };
        metrics::counter(
            "decisions_total",
            &[("route", &message.route), ("kind", kind.name()), ("outcome", outcome)],
            1,
        );
        if allowed {
            return Decision::proceed();
        }
        let who = message.principal.as_deref().unwrap_or("an anonymous caller");
        log::debug!("denied {} {name} to {who}", kind.name());
        Decision::reject(403, codes::FORBIDDEN, format!("{} {client_name} is not allowed", kind.name()))
            .data(json!({"kind": kind.name(), "name": client_name}).to_string())
    }
}

fn caller(message: &Message) -> Caller<'_> {
    Caller { principal: message.principal.as_deref().filter(|p| !p.is_empty()), scopes: &message.scopes }
}

/// The tool or prompt name, or resource URI, a request is about: as mcpd
/// read it, else from the params.
fn subject(message: &Message, kind: Kind) -> Option<String> {
    if let Some(name) = message.name.as_deref() {
        return Some(name.to_string());
    }
    let field = if kind == Kind::Resource { "uri" } else { "name" };
    message.params_json().ok()?.get(field)?.as_str().map(str::to_string)
}

/// A request that does not say what it is about cannot be checked, so it
/// does not pass.
fn missing(kind: Kind) -> Decision {
    let field = if kind == Kind::Resource { "uri" } else { "name" };
    Decision::reject(400, codes::INVALID_PARAMS, format!("params.{field} is missing"))
}

mcpd_plugin_sdk::export_plugin!(ToolPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpd_plugin_sdk::testing;
    use serde_json::json;

    fn plugin(config: Value) -> ToolPolicy {
        ToolPolicy::new(Config::from_json(config.to_string())).expect("valid config")
    }

    fn status(d: &Decision) -> Option<(u16, i32)> {
        match d {
            Decision::Reject(r) => Some((r.status, r.error.code)),
            _ => None,
        }
    }

    fn as_user(mut m: Message, principal: &str, scopes: &[&str]) -> Message {
        m.principal = Some(principal.into());
        m.scopes = scopes.iter().map(|s| s.to_string()).collect();
        m
    }

    /// A response to `method` with this result, as mcpd hands it over.
    fn answer(method: &str, result: Value, principal: &str) -> Message {
        let mut m = as_user(testing::response(result), principal, &[]);
        m.method = Some(method.into());
        m
    }

    fn example() -> ToolPolicy {
        plugin(json!({"rules": [
            {"action": "allow", "principals": ["admin"], "tools": ["*"], "resources": ["*"], "prompts": ["*"]},
            {"action": "deny", "tools": ["crash"]},
            {"action": "allow", "scopes": ["tools:write"], "tools": ["sleep"]},
            {"action": "allow", "tools": ["echo", "log"], "resources": ["test://public/*"]},
        ]}))
    }

    #[test]
    fn answers_that_are_not_lists_pass_unparsed() {
        let mut p = example();
        let mut m = answer("tools/call", json!({}), "ada");
        m.params = Some("not json: a list filter would refuse this".into());
        assert_eq!(p.on_response(&m), Decision::proceed());
        m.method = Some("tools/list".into());
        assert_eq!(status(&p.on_response(&m)), Some((502, codes::INTERNAL_ERROR)));
    }

    #[test]
    fn denies_with_403_and_names_the_tool() {
        let mut p = example();
        let d = p.on_request(&as_user(testing::tool_call("crash", json!({})), "ada", &[]));
        assert_eq!(status(&d), Some((403, codes::FORBIDDEN)));
        let Decision::Reject(r) = d else { unreachable!() };
        assert_eq!(r.error.message, "tool crash is not allowed");
        assert_eq!(r.error.data.as_deref(), Some(r#"{"kind":"tool","name":"crash"}"#));
        assert_eq!(p.on_request(&as_user(testing::tool_call("echo", json!({})), "ada", &[])), Decision::proceed());
        assert_eq!(p.on_request(&as_user(testing::tool_call("crash", json!({})), "admin", &[])), Decision::proceed());
    }

    #[test]
    fn scopes_grant_tools() {
        let mut p = example();
        let sleep = testing::tool_call("sleep", json!({}));
        assert_eq!(status(&p.on_request(&as_user(sleep.clone(), "ada", &[]))), Some((403, codes::FORBIDDEN)));
        assert_eq!(p.on_request(&as_user(sleep, "ada", &["tools:write"])), Decision::proceed());
    }

    #[test]
    fn prompts_and_resources_are_checked_too() {
        let mut p = example();
        let mut get = testing::request("prompts/get", json!({"name": "greet"}));
        get.name = Some("greet".into());
        assert_eq!(status(&p.on_request(&get)), Some((403, codes::FORBIDDEN)), "no rule allows prompts: default deny");
        assert_eq!(p.on_request(&as_user(get, "admin", &[])), Decision::proceed());
        // Without `name` filled in by mcpd, the params say it.
        let read = testing::request("resources/read", json!({"uri": "test://public/a"}));
        assert_eq!(p.on_request(&read), Decision::proceed());
        let read = testing::request("resources/read", json!({"uri": "test://hello"}));
        assert_eq!(status(&p.on_request(&read)), Some((403, codes::FORBIDDEN)));
        let nameless = testing::request("resources/read", json!({}));
        assert_eq!(status(&p.on_request(&nameless)), Some((400, codes::INVALID_PARAMS)));
        // Other methods are none of this plugin's business.
        assert_eq!(p.on_request(&testing::request("tools/list", json!({}))), Decision::proceed());
    }

    #[test]
    fn lists_show_only_what_the_caller_may_use() {
        let mut p = example();
        let tools = json!({"tools": [{"name": "echo"}, {"name": "crash"}, {"name": "sleep"}, {"name": "log"}]});
        let d = p.on_response(&answer("tools/list", tools.clone(), "ada"));
        assert_eq!(d, Decision::modify().params_json(&json!({"tools": [{"name": "echo"}, {"name": "log"}]})));
        assert_eq!(p.on_response(&answer("tools/list", tools, "admin")), Decision::proceed(), "nothing to hide");
        let prompts = json!({"prompts": [{"name": "greet"}]});
        let d = p.on_response(&answer("prompts/list", prompts, "ada"));
        assert_eq!(d, Decision::modify().params_json(&json!({"prompts": []})));
        // A tools/call result is left alone, whatever it holds.
        let call = json!({"content": [], "tools": [{"name": "crash"}]});
        assert_eq!(p.on_response(&answer("tools/call", call, "ada")), Decision::proceed());
    }

    #[test]
    fn without_the_method_a_list_is_known_by_its_shape() {
        let mut p = example();
        let d = p.on_response(&testing::response(json!({"tools": [{"name": "crash"}]})));
        assert_eq!(d, Decision::modify().params_json(&json!({"tools": []})));
    }

    #[test]
    fn renaming_round_trip() {
        let mut p = plugin(json!({"default": "allow", "prefix": "fx_", "rename": {"echo": "say"},
                                  "rules": [{"action": "deny", "tools": ["crash"]}]}));
        let tools = json!({"tools": [{"name": "echo"}, {"name": "sleep"}, {"name": "crash"}]});
        let d = p.on_response(&answer("tools/list", tools, "ada"));
        assert_eq!(d, Decision::modify().params_json(&json!({"tools": [{"name": "say"}, {"name": "fx_sleep"}]})));

        let call = testing::tool_call("say", json!({"text": "hi"}));
        let want = json!({"name": "echo", "arguments": {"text": "hi"}});
        assert_eq!(p.on_request(&call), Decision::modify().params_json(&want));
        let call = testing::tool_call("fx_sleep", json!({}));
        assert_eq!(p.on_request(&call), Decision::modify().params_json(&json!({"name": "sleep", "arguments": {}})));
        // Rules use the server's names, whatever the client calls the tool.
        assert_eq!(status(&p.on_request(&testing::tool_call("fx_crash", json!({})))), Some((403, codes::FORBIDDEN)));
        // Names the client was never shown are unknown.
        for name in ["echo", "fx_echo", "sleep"] {
            let d = p.on_request(&testing::tool_call(name, json!({})));
            assert_eq!(status(&d), Some((400, codes::INVALID_PARAMS)), "{name}");
        }
    }

    #[test]
    fn verdicts_may_be_reused_by_name_and_caller_but_not_renamed_calls() {
        use mcpd_plugin_sdk::reuse::{self, Vary};
        let mut p = example();
        for tool in ["echo", "crash"] {
            p.on_request(&as_user(testing::tool_call(tool, json!({})), "ada", &[]));
            let asked = reuse::last_requested().expect("reusable");
            assert_eq!(asked.vary, Vary::NAME | Vary::PRINCIPAL | Vary::SCOPES, "{tool}");
        }
        let mut renaming = plugin(json!({"default": "allow", "rename": {"echo": "say"}}));
        renaming.on_request(&testing::tool_call("say", json!({"text": "hi"})));
        assert_eq!(reuse::last_requested(), None, "the new params carry the arguments");
        renaming.on_request(&testing::tool_call("sleep", json!({})));
        assert!(reuse::last_requested().is_some(), "a name kept as it is");
    }

    #[test]
    fn a_bad_config_does_not_load() {
        let e = ToolPolicy::new(Config::from_json(r#"{"rules": [{"action": "allow", "tool": ["x"]}]}"#)).err();
        assert!(e.is_some_and(|e| e.to_string().contains("unknown field `tool`")));
    }
}
