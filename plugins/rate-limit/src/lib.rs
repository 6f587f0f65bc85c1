//! mcpd's rate-limit plugin: token buckets keyed by principal, client
//! address, tool, session or route, several limits per route, each counting
//! the requests it applies to. A request over any limit is refused with
//! HTTP 429, `Retry-After` and JSON-RPC error -32002 (`LIMIT_EXCEEDED`).
//!
//! Buckets live in the host's store (`store::take`), which is atomic across
//! plugin instances and, with a shared store, across mcpd nodes; nothing
//! here keeps counts of its own. See README.md for the config.

mod config;
mod duration;
use mcpd_plugin_sdk::glob;
mod key;
mod metrics;

use std::time::Duration;

use mcpd_plugin_sdk::prelude::*;
use mcpd_plugin_sdk::reuse;
use mcpd_plugin_sdk::{MessageKind, serde_json::json};

use config::{Applies, Limit, OnStoreError};
use metrics::Metrics;

/// How long mcpd may reuse a verdict (its takes are repeated every time).
const REUSE: Duration = Duration::from_secs(60);

pub struct RateLimit {
    limits: Vec<Limit>,
    on_store_error: OnStoreError,
    metrics: Metrics,
}

impl Plugin for RateLimit {
    /// Of the optional parts it reads only the session (a key kind);
    /// names, principals and addresses are always there.
    fn info() -> Info {
        Info::new("rate-limit", env!("CARGO_PKG_VERSION"), Hooks::REQUEST).reads(Parts::SESSION)
    }

    fn new(config: Config) -> Result<Self, Error> {
        let checked = config::load(&config)?;
        Ok(RateLimit {
            limits: checked.limits,
            on_store_error: checked.on_store_error,
            metrics: Metrics::new(checked.metric_identities),
        })
    }

    fn on_request(&mut self, message: &Message) -> Decision {
        // Notifications and the client's answers to server requests have no
        // JSON-RPC error to carry a refusal; only requests count.
        if message.kind != MessageKind::Request {
            return Decision::proceed();
        }
        // The verdict depends on the buckets (mcpd takes their tokens again
        // for each reuse, and asks again once one runs dry) and on the
        // parts that pick them; the tool name picks which limits apply.
        reuse::decision(REUSE, key::vary(&self.limits, message), &[]);
        let who = key::who(message);
        let mut counted = false;
        // In config order, stopping at the first refusal: the tokens of the
        // limits before it are spent, those after it are not (the README
        // says to list narrow limits first).
        for limit in self.limits.iter().filter(|l| applies(l, message)) {
            if !counted {
                self.metrics.hit(&message.route, &who);
                counted = true;
            }
            match store::take(&key::bucket(limit, message), limit.capacity, limit.period, 1) {
                Ok(bucket) if bucket.allowed => {}
                Ok(bucket) => {
                    self.metrics.limited(&message.route, &limit.name, &who);
                    log::debug!("{} {} is over `{}`", who.via, who.id, limit.name);
                    return refuse(limit, bucket.retry_after);
                }
                Err(e) => {
                    self.metrics.store_error(&message.route);
                    log::warn!("cannot check `{}`: {e}", limit.name);
                    if self.on_store_error == OnStoreError::Closed {
                        return Decision::reject(503, codes::INTERNAL_ERROR, "rate limits cannot be checked")
                            .header("retry-after", "1");
                    }
                }
            }
        }
        Decision::proceed()
    }
}

/// Whether `limit` counts this request.
fn applies(limit: &Limit, message: &Message) -> bool {
    match &limit.applies {
        Applies::Methods(methods) => message.method().is_some_and(|m| glob::any(methods, m)),
        Applies::Tools(tools) => message.tool_name().is_some_and(|t| glob::any(tools, t)),
    }
}

/// The 429 for a request over `limit`; the client may try again after `wait`.
fn refuse(limit: &Limit, wait: Duration) -> Decision {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    // Retry-After is whole seconds; rounding down would invite a retry that
    // is refused again.
    let seconds = ms.div_ceil(1000).max(1);
    let data = json!({"limit": limit.name, "retry_after_ms": ms});
    Decision::reject(429, codes::LIMIT_EXCEEDED, format!("rate limit exceeded ({}); retry in {seconds} s", limit.name))
        .header("retry-after", seconds.to_string())
        .data(data.to_string())
}

mcpd_plugin_sdk::export_plugin!(RateLimit);

// Natively the SDK's in-memory store stands in for mcpd's: `take` is the
// same token bucket, per test thread. Each test also uses its own route,
// so no two tests could share a bucket even on one thread.
#[cfg(test)]
mod tests {
    use super::*;
    use mcpd_plugin_sdk::{Rejection, testing};
    use serde_json::{Value, json};

    fn plugin(config: Value) -> RateLimit {
        RateLimit::new(Config::from_json(config.to_string())).expect("valid config")
    }

    fn call(route: &str, tool: &str, principal: Option<&str>, client: &str) -> Message {
        let mut m = testing::tool_call(tool, json!({}));
        m.route = route.into();
        m.principal = principal.map(Into::into);
        m.client_address = client.into();
        m
    }

    fn rejection(d: Decision) -> Rejection {
        match d {
            Decision::Reject(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// How many of `n` identical requests get through.
    fn allowed(p: &mut RateLimit, m: &Message, n: usize) -> usize {
        (0..n).filter(|_| p.on_request(m) == Decision::proceed()).count()
    }

    #[test]
    fn the_request_after_the_rate_is_refused_with_429() {
        let mut p = plugin(json!({"limits": [{"key": "principal", "rate": 3, "per": "1h"}]}));
        let m = call("exact", "echo", Some("ada"), "10.0.0.1");
        for i in 0..3 {
            assert_eq!(p.on_request(&m), Decision::proceed(), "call {i} is within the rate");
        }
        let r = rejection(p.on_request(&m));
        assert_eq!((r.status, r.error.code), (429, codes::LIMIT_EXCEEDED));
        // One token of 3 an hour comes back after 20 minutes.
        assert_eq!(r.headers.len(), 1);
        assert_eq!((r.headers[0].name.as_str(), r.headers[0].value.as_str()), ("retry-after", "1200"));
        let data: Value = serde_json::from_str(r.error.data.as_deref().unwrap_or("null")).unwrap();
        assert_eq!(data["limit"], "principal 3/1h");
        let ms = data["retry_after_ms"].as_u64().unwrap();
        assert!((1_199_000..=1_200_000).contains(&ms), "{ms}");
        assert!(r.error.message.contains("principal 3/1h"), "{}", r.error.message);
    }

    #[test]
    fn principals_have_their_own_buckets_and_anonymous_callers_share_their_address() {
        let mut p = plugin(json!({"limits": [{"key": "principal", "rate": 2, "per": "1h"}]}));
        assert_eq!(allowed(&mut p, &call("who", "echo", Some("ada"), "10.0.0.1"), 5), 2);
        assert_eq!(allowed(&mut p, &call("who", "echo", Some("grace"), "10.0.0.1"), 5), 2);
        // No principal: counted by address, apart from the principals there.
        assert_eq!(allowed(&mut p, &call("who", "echo", None, "10.0.0.1"), 5), 2);
        assert_eq!(allowed(&mut p, &call("who", "echo", None, "10.0.0.2"), 5), 2);
    }

    #[test]
    fn burst_sets_the_bucket_size() {
        let mut p = plugin(json!({"limits": [{"key": "client", "rate": 1, "per": "1h", "burst": 4}]}));
        let m = call("burst", "echo", None, "10.0.0.1");
        assert_eq!(allowed(&mut p, &m, 10), 4);
        let r = rejection(p.on_request(&m));
        // Refills at 1 an hour whatever the burst.
        let seconds: u64 = r.headers[0].value.parse().unwrap();
        assert!((3599..=3600).contains(&seconds), "{seconds}");
    }

    #[test]
    fn a_tool_limit_counts_only_its_tools_and_the_broad_limit_still_applies() {
        let mut p = plugin(json!({"limits": [
            {"key": "principal", "tools": ["expensive_*"], "rate": 2, "per": "1h"},
            {"key": "principal", "rate": 5, "per": "1h"},
        ]}));
        let expensive = call("tools", "expensive_search", Some("ada"), "10.0.0.1");
        let cheap = call("tools", "echo", Some("ada"), "10.0.0.1");
        assert_eq!(allowed(&mut p, &expensive, 2), 2);
        let r = rejection(p.on_request(&expensive));
        assert!(r.error.data.unwrap_or_default().contains("tools=expensive_*"));
        // The refused call spent nothing of the broad limit (listed after
        // the narrow one): 5 - 2 calls left.
        assert_eq!(allowed(&mut p, &cheap, 10), 3);
        let r = rejection(p.on_request(&expensive));
        assert!(r.error.data.unwrap_or_default().contains("tools=expensive_*"), "the narrow limit refuses first");
    }

    #[test]
    fn only_configured_methods_count() {
        let mut p = plugin(json!({"limits": [{"key": "client", "rate": 1, "per": "1h"}]}));
        let mut list = testing::request("tools/list", json!({}));
        list.route = "methods".into();
        assert_eq!(allowed(&mut p, &list, 5), 5, "tools/list is not counted by default");
        let echo = call("methods", "echo", None, "127.0.0.1");
        assert_eq!(allowed(&mut p, &echo, 5), 1);

        let mut all = plugin(json!({"methods": ["*"], "limits": [{"key": "client", "rate": 2, "per": "1h"}]}));
        list.route = "all-methods".into();
        let mut echo = echo.clone();
        echo.route = "all-methods".into();
        assert_eq!(allowed(&mut all, &list, 1) + allowed(&mut all, &echo, 5), 2, "every request counts");
    }

    #[test]
    fn notifications_never_count() {
        let mut p = plugin(json!({"methods": ["*"], "limits": [{"key": "client", "rate": 1, "per": "1h"}]}));
        let mut note = testing::request("notifications/initialized", json!({}));
        note.kind = MessageKind::Notification;
        note.route = "notes".into();
        assert_eq!(allowed(&mut p, &note, 5), 5);
    }

    #[test]
    fn per_tool_and_per_route_keys() {
        let mut p = plugin(json!({"limits": [{"key": "tool", "rate": 1, "per": "1h"}]}));
        assert_eq!(allowed(&mut p, &call("per-tool", "echo", Some("ada"), "10.0.0.1"), 3), 1);
        assert_eq!(
            allowed(&mut p, &call("per-tool", "echo", Some("grace"), "10.0.0.2"), 3),
            0,
            "shared by all callers"
        );
        assert_eq!(allowed(&mut p, &call("per-tool", "sleep", Some("ada"), "10.0.0.1"), 3), 1);
        // The same config on another route has buckets of its own.
        assert_eq!(allowed(&mut p, &call("per-tool-2", "echo", Some("ada"), "10.0.0.1"), 3), 1);
    }

    #[test]
    fn a_bad_config_does_not_load() {
        let e = RateLimit::new(Config::from_json(r#"{"limits": [{"key": "ip", "rate": 1, "per": "1s"}]}"#)).err();
        assert!(e.is_some_and(|e| e.to_string().contains("unknown key `ip`")));
    }
}
