//! The plugin's config: the schema operators write in mcpd.toml, and its
//! checking into the [`Limit`]s the hooks use. Every mistake is refused at
//! load with the path of the field at fault (`limits[2].per: ...`), so a typo
//! never becomes a limit that silently does nothing.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use mcpd_plugin_sdk::{Config, Error};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::duration;
use mcpd_plugin_sdk::glob::Glob;

/// The config table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Which requests count, unless a limit says otherwise.
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    limits: Vec<LimitSettings>,
    #[serde(default)]
    on_store_error: OnStoreError,
    /// Principals and client addresses that get their own metric label.
    #[serde(default)]
    metric_identities: Vec<String>,
}

fn default_methods() -> Vec<String> {
    vec!["tools/call".into()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitSettings {
    name: Option<String>,
    key: KeyList,
    rate: u64,
    per: String,
    burst: Option<u64>,
    tools: Option<Vec<String>>,
    methods: Option<Vec<String>>,
}

/// What a bucket is keyed by; several make a compound key (per principal
/// and tool, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The principal an earlier plugin set; else the client address.
    Principal,
    /// The client's IP address.
    Client,
    /// The tool a `tools/call` calls; for other methods, the method.
    Tool,
    /// The `Mcp-Session-Id`; else the client address.
    Session,
    /// Nothing: one bucket for the whole route.
    Route,
}

impl KeyKind {
    const NAMES: [(&'static str, KeyKind); 5] = [
        ("principal", KeyKind::Principal),
        ("client", KeyKind::Client),
        ("tool", KeyKind::Tool),
        ("session", KeyKind::Session),
        ("route", KeyKind::Route),
    ];

    fn parse(name: &str) -> Result<KeyKind, String> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k).ok_or_else(|| {
            format!("unknown key `{name}`: use principal, client, tool, session or route (or a list of them)")
        })
    }

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }
}

/// `key = "principal"` or `key = ["principal", "tool"]`, kept as text here
/// so that a wrong name gets our message rather than serde's.
struct KeyList(Vec<String>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key (\"principal\", \"client\", \"tool\", \"session\", \"route\") or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyList, E> {
                Ok(KeyList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<String>()? {
                    keys.push(key);
                }
                Ok(KeyList(keys))
            }
        }
        deserializer.deserialize_any(KeysVisitor)
    }
}

/// What to do when the store fails (e.g. a shared store is unreachable).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Let the request through (logged and counted): an outage of the
    /// store should not take every route down with it.
    #[default]
    Open,
    /// Refuse it with 503.
    Closed,
}

/// Which requests a limit counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Applies {
    /// Requests whose method matches one of these.
    Methods(Vec<Glob>),
    /// `tools/call` of a tool matching one of these.
    Tools(Vec<Glob>),
}

/// One checked limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Names its buckets, and the limit in errors and metrics.
    pub name: String,
    pub keys: Vec<KeyKind>,
    /// Bucket size: the burst.
    pub capacity: u64,
    /// How long the bucket takes to refill from empty (the host's bucket
    /// refills `capacity` tokens per `period`).
    pub period: Duration,
    pub applies: Applies,
}

/// The whole checked config.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub limits: Vec<Limit>,
    pub on_store_error: OnStoreError,
    pub metric_identities: HashSet<String>,
}

/// Parses and checks the plugin's config.
pub fn load(config: &Config) -> Result<Checked, Error> {
    let settings: Settings = config.parse()?;
    check(settings).map_err(Error::msg)
}

fn check(settings: Settings) -> Result<Checked, String> {
    if settings.limits.is_empty() {
        return Err("invalid plugin config at `limits`: no limits, so the plugin would do nothing".into());
    }
    let default_methods = globs(&settings.methods).map_err(|e| format!("invalid plugin config at `methods`: {e}"))?;
    let mut limits: Vec<Limit> = Vec::new();
    for (i, limit) in settings.limits.into_iter().enumerate() {
        let limit =
            check_limit(limit, &default_methods).map_err(|e| format!("invalid plugin config at `limits[{i}]{e}"))?;
        if let Some(j) = limits.iter().position(|l| l.name == limit.name) {
            return Err(format!(
                "invalid plugin config at `limits[{i}]`: limits[{j}] has the same name `{}`, so they would share \
                 buckets; give one a `name`",
                limit.name
            ));
        }
        limits.push(limit);
    }
    Ok(Checked {
        limits,
        on_store_error: settings.on_store_error,
        metric_identities: settings.metric_identities.into_iter().collect(),
    })
}

/// Errors start with the field (`.per`) so the caller can prefix the limit.
fn check_limit(limit: LimitSettings, default_methods: &[Glob]) -> Result<Limit, String> {
    let mut keys = Vec::new();
    for name in &limit.key.0 {
        let kind = KeyKind::parse(name).map_err(|e| format!(".key`: {e}"))?;
        if keys.contains(&kind) {
            return Err(format!(".key`: `{name}` is listed twice"));
        }
        keys.push(kind);
    }
    if keys.is_empty() {
        return Err(".key`: empty; name at least one key".into());
    }
    if limit.rate == 0 {
        return Err(".rate`: must be at least 1".into());
    }
    let per = duration::parse(&limit.per).map_err(|e| format!(".per`: {e}"))?;
    let burst = limit.burst.unwrap_or(limit.rate);
    if burst == 0 {
        return Err(".burst`: must be at least 1".into());
    }
    // `rate` per `per`, in a bucket of `burst`: the host refills a full
    // bucket per period, so the period is the time `burst` tokens take.
    let period_ms = (per.as_millis() * u128::from(burst) + u128::from(limit.rate) / 2) / u128::from(limit.rate);
    if period_ms == 0 {
        return Err(format!(".burst`: {burst} tokens refill in under a millisecond at this rate; raise `burst`"));
    }
    let period = Duration::from_millis(u64::try_from(period_ms).unwrap_or(u64::MAX));
    let applies = match (&limit.tools, &limit.methods) {
        (Some(_), Some(_)) => {
            return Err("`: give `tools` or `methods`, not both (`tools` already means tools/call)".into());
        }
        (Some(tools), None) => Applies::Tools(globs(tools).map_err(|e| format!(".tools`: {e}"))?),
        (None, Some(methods)) => Applies::Methods(globs(methods).map_err(|e| format!(".methods`: {e}"))?),
        (None, None) => Applies::Methods(default_methods.to_vec()),
    };
    let name = match limit.name {
        Some(name) if name.trim().is_empty() => return Err(".name`: must not be empty".into()),
        Some(name) => name,
        None => default_name(&keys, limit.rate, &limit.per, &limit.tools, &limit.methods),
    };
    Ok(Limit { name, keys, capacity: burst, period, applies })
}

/// `principal 100/1m`, `principal+tool 10/1m tools=expensive_*`: readable
/// in a client's error and a metric label, and unique unless two limits
/// really are the same.
fn default_name(
    keys: &[KeyKind],
    rate: u64,
    per: &str,
    tools: &Option<Vec<String>>,
    methods: &Option<Vec<String>>,
) -> String {
    let keys: Vec<&str> = keys.iter().map(|k| k.name()).collect();
    let mut name = format!("{} {rate}/{}", keys.join("+"), per.trim());
    if let Some(tools) = tools {
        name += &format!(" tools={}", tools.join(","));
    }
    if let Some(methods) = methods {
        name += &format!(" methods={}", methods.join(","));
    }
    name
}

fn globs(patterns: &[String]) -> Result<Vec<Glob>, String> {
    if patterns.is_empty() {
        return Err("empty, so it would match nothing; list at least one (\"*\" for all)".into());
    }
    if patterns.iter().any(|p| p.is_empty()) {
        return Err("an empty pattern matches nothing".into());
    }
    Ok(patterns.iter().map(|p| Glob::new(p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_json(json: &str) -> Result<Checked, String> {
        load(&Config::from_json(json)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_documented_example() {
        let checked = load_json(
            r#"{"limits": [
                {"key": "principal", "rate": 100, "per": "1m"},
                {"key": "client", "rate": 10, "per": "1s", "burst": 20},
                {"key": "principal", "tools": ["expensive_*"], "rate": 10, "per": "1m"}
            ]}"#,
        )
        .unwrap();
        let [a, b, c] = &checked.limits[..] else { panic!("{checked:?}") };
        assert_eq!((a.name.as_str(), a.capacity, a.period), ("principal 100/1m", 100, Duration::from_secs(60)));
        assert_eq!(a.applies, Applies::Methods(vec![Glob::new("tools/call")]));
        // 10 a second in a bucket of 20: it refills from empty in 2 s.
        assert_eq!((b.capacity, b.period), (20, Duration::from_secs(2)));
        assert_eq!(c.name, "principal 10/1m tools=expensive_*");
        assert_eq!(c.applies, Applies::Tools(vec![Glob::new("expensive_*")]));
        assert_eq!(checked.on_store_error, OnStoreError::Open);
    }

    #[test]
    fn compound_keys_and_methods() {
        let checked = load_json(
            r#"{"methods": ["*"], "on_store_error": "closed", "limits": [
                {"key": ["principal", "tool"], "rate": 5, "per": "1h"},
                {"name": "lists", "key": "session", "rate": 1, "per": "1s", "methods": ["*/list"]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(checked.limits[0].keys, [KeyKind::Principal, KeyKind::Tool]);
        assert_eq!(checked.limits[0].applies, Applies::Methods(vec![Glob::new("*")]));
        assert_eq!(checked.limits[1].name, "lists");
        assert_eq!(checked.on_store_error, OnStoreError::Closed);
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            (r#"{}"#, "missing field `limits`"),
            (r#"{"limits": []}"#, "`limits`: no limits"),
            (
                r#"{"limits": [{"key": "principle", "rate": 1, "per": "1s"}]}"#,
                "`limits[0].key`: unknown key `principle`",
            ),
            (r#"{"limits": [{"key": 3, "rate": 1, "per": "1s"}]}"#, "limits[0].key"),
            (r#"{"limits": [{"key": [], "rate": 1, "per": "1s"}]}"#, "`limits[0].key`: empty"),
            (r#"{"limits": [{"key": ["client", "client"], "rate": 1, "per": "1s"}]}"#, "listed twice"),
            (r#"{"limits": [{"key": "client", "rate": 0, "per": "1s"}]}"#, "`limits[0].rate`: must be at least 1"),
            (r#"{"limits": [{"key": "client", "rate": 1, "per": "60"}]}"#, "`limits[0].per`: `60` is not a period"),
            (r#"{"limits": [{"key": "client", "rate": 1, "per": "1s", "burst": 0}]}"#, "`limits[0].burst`"),
            (r#"{"limits": [{"key": "client", "rate": 5000, "per": "1s", "burst": 1}]}"#, "under a millisecond"),
            (r#"{"limits": [{"key": "client", "rate": 1, "per": "1s", "tools": []}]}"#, "`limits[0].tools`: empty"),
            (
                r#"{"limits": [{"key": "client", "rate": 1, "per": "1s", "tools": ["a"], "methods": ["b"]}]}"#,
                "not both",
            ),
            (r#"{"limits": [{"key": "client", "rate": 1, "per": "1s", "name": " "}]}"#, "`limits[0].name`"),
            (r#"{"limits": [{"key": "client", "rate": 1, "per": "1s", "pre": "1s"}]}"#, "unknown field `pre`"),
            (r#"{"methods": [], "limits": [{"key": "client", "rate": 1, "per": "1s"}]}"#, "`methods`: empty"),
            (r#"{"on_store_error": "maybe", "limits": []}"#, "on_store_error"),
            (
                r#"{"limits": [{"key": "client", "rate": 1, "per": "1s"}, {"key": "client", "rate": 1, "per": "1s"}]}"#,
                "`limits[1]`: limits[0] has the same name",
            ),
        ];
        for (json, want) in cases {
            let e = load_json(json).unwrap_err();
            assert!(e.contains(want), "{json}\n  gave: {e}\n  want: {want}");
        }
    }
}
