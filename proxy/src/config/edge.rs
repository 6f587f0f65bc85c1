//! `allowed_hosts` and `allowed_origins` (`[server.NAME.http]`): which
//! `Host` and `Origin` headers the MCP endpoint accepts, the spec's defence
//! against DNS rebinding (a page on another site whose name resolves to a
//! local address must not reach a local server).
//!
//! Owns the patterns, their defaults, their parsing with config errors and
//! the matching; the front answers 403 when a match fails.
//!
//! - A host pattern is `name`, `name:port`, `[v6]` or `[v6]:port`, or `*`
//!   (any). Without a port it matches any port.
//! - An origin pattern is `scheme://name[:port]`, `null`, or `*`. Without a
//!   port it matches any port.
//! - Defaults: hosts `localhost`, `127.0.0.1`, `[::1]` (and the listener's
//!   own address) when the server listens on a loopback address, any host
//!   otherwise; origins the same names over http and https, whatever the
//!   listener. A request without `Origin` (every non-browser client)
//!   passes the origin check.

use super::validate::Checker;
use super::{ConfigError, schema::RawHttp};
use std::net::SocketAddr;
use toml::Spanned;

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowList {
    Any,
    Only(Vec<Pattern>),
}

/// One allowed host or origin; names are lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// For origins: `http`, `https`…; `None` for hosts.
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSettings {
    pub hosts: AllowList,
    pub origins: AllowList,
}

impl EdgeSettings {
    /// Whether a request's `Host` (or HTTP/2 authority) value is allowed.
    pub fn allows_host(&self, value: &str) -> bool {
        match &self.hosts {
            AllowList::Any => true,
            AllowList::Only(patterns) => match split_host_port(value.trim()) {
                Some((host, port)) => patterns.iter().any(|p| p.matches(None, &host, port)),
                None => false,
            },
        }
    }

    /// Whether a request's `Origin` value is allowed.
    pub fn allows_origin(&self, value: &str) -> bool {
        let value = value.trim();
        match &self.origins {
            AllowList::Any => true,
            AllowList::Only(patterns) if value.eq_ignore_ascii_case("null") => {
                patterns.iter().any(|p| p.host == "null" && p.scheme.is_none())
            }
            AllowList::Only(patterns) => match parse_origin(value) {
                Ok((scheme, host, port)) => {
                    // An origin without a port is on its scheme's default one.
                    let port = port.or(match scheme.as_str() {
                        "http" | "ws" => Some(80),
                        "https" | "wss" => Some(443),
                        _ => None,
                    });
                    patterns.iter().any(|p| p.matches(Some(&scheme), &host, port))
                }
                Err(_) => false,
            },
        }
    }
}

impl Pattern {
    fn matches(&self, scheme: Option<&str>, host: &str, port: Option<u16>) -> bool {
        self.scheme.as_deref() == scheme && self.host == host && self.port.is_none_or(|p| Some(p) == port)
    }
}

/// `name`, `name:port`, `[v6]`, `[v6]:port` → (lower-case name, port).
fn split_host_port(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.to_ascii_lowercase();
    let (host, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            let port = &rest[end + 1..];
            (format!("[{}]", &rest[..end]), port.strip_prefix(':').or(port.is_empty().then_some("")))
        }
        None => match value.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (value.clone(), Some("")),
        },
    };
    let port = match port? {
        "" => None,
        digits => Some(digits.parse::<u16>().ok()?),
    };
    let valid = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    valid.then_some((host, port))
}

/// `scheme://name[:port]` → (scheme, name, port), lower case.
fn parse_origin(value: &str) -> Result<(String, String, Option<u16>), &'static str> {
    let (scheme, rest) = value.split_once("://").ok_or("an origin is scheme://host[:port]")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return Err("an origin is scheme://host[:port]");
    }
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err("an origin has no path (scheme://host[:port])");
    }
    let (host, port) = split_host_port(rest).ok_or("not a host or host:port after the scheme")?;
    Ok((scheme, host, port))
}

fn defaults(listen: SocketAddr) -> EdgeSettings {
    let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|h| h.to_string()).collect();
    // A loopback listener on another address (127.0.0.2) is reached by that name.
    let own = match listen.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    if listen.ip().is_loopback() && !names.contains(&own) {
        names.push(own);
    }
    let hosts = match listen.ip().is_loopback() {
        true => {
            AllowList::Only(names.iter().map(|host| Pattern { scheme: None, host: host.clone(), port: None }).collect())
        }
        false => AllowList::Any,
    };
    let origins = ["http", "https"]
        .into_iter()
        .flat_map(|scheme| {
            names.iter().map(move |host| Pattern { scheme: Some(scheme.into()), host: host.clone(), port: None })
        })
        .collect();
    EdgeSettings { hosts, origins: AllowList::Only(origins) }
}

/// Reads `allowed_hosts` and `allowed_origins`, or their defaults for a
/// server listening on `listen`.
pub(super) fn resolve(
    check: &Checker,
    server: &str,
    http: &RawHttp,
    listen: SocketAddr,
) -> Result<EdgeSettings, ConfigError> {
    let mut edge = defaults(listen);
    if let Some(list) = &http.allowed_hosts {
        edge.hosts = allow_list(check, list, &format!("server.{server}.http.allowed_hosts"), |value| {
            if value.contains("://") || value.contains('/') {
                return Err("a host has no scheme or path (host or host:port)");
            }
            let (host, port) = split_host_port(value).ok_or("not a host, host:port, [v6] or [v6]:port")?;
            Ok(Pattern { scheme: None, host, port })
        })?;
    }
    if let Some(list) = &http.allowed_origins {
        edge.origins = allow_list(check, list, &format!("server.{server}.http.allowed_origins"), |value| {
            if value.eq_ignore_ascii_case("null") {
                return Ok(Pattern { scheme: None, host: "null".into(), port: None });
            }
            let (scheme, host, port) = parse_origin(value)?;
            Ok(Pattern { scheme: Some(scheme), host, port })
        })?;
    }
    Ok(edge)
}

fn allow_list(
    check: &Checker,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
    parse: impl Fn(&str) -> Result<Pattern, &'static str>,
) -> Result<AllowList, ConfigError> {
    let mut patterns = Vec::new();
    for item in list.get_ref() {
        let value = item.get_ref().trim();
        if value == "*" {
            return Ok(AllowList::Any);
        }
        let error = |why: &str| check.error(Some(item.span()), key, format!("{:?}: {why}", item.get_ref()));
        if value.contains('*') {
            return Err(error("wildcards are not supported, only \"*\" alone (allow all)"));
        }
        patterns.push(parse(value).map_err(error)?);
    }
    Ok(AllowList::Only(patterns))
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn settings(http: &str) -> super::EdgeSettings {
        let text = format!("[server.a]\ncommand = \"x\"\nport = 9000\n[server.a.http]\n{http}\n");
        parse(Path::new("t.toml"), &text).unwrap().servers[0].http.edge.clone()
    }

    fn error(http: &str) -> String {
        let text = format!("[server.a]\ncommand = \"x\"\nport = 9000\n[server.a.http]\n{http}\n");
        parse(Path::new("t.toml"), &text).unwrap_err().to_string()
    }

    #[test]
    fn loopback_listeners_accept_only_loopback_hosts_and_origins_by_default() {
        let edge = settings("");
        for host in ["localhost", "localhost:9000", "127.0.0.1:9000", "[::1]:9000", "LOCALHOST:1"] {
            assert!(edge.allows_host(host), "{host}");
        }
        for host in ["evil.example.com", "evil.example.com:9000", "127.0.0.1.evil.com", "", "[::1", "a:b"] {
            assert!(!edge.allows_host(host), "{host}");
        }
        for origin in ["http://localhost:3000", "https://127.0.0.1", "http://[::1]:9000"] {
            assert!(edge.allows_origin(origin), "{origin}");
        }
        for origin in ["http://evil.example.com", "null", "localhost", "http://localhost.evil.com", "file://"] {
            assert!(!edge.allows_origin(origin), "{origin}");
        }
    }

    #[test]
    fn another_loopback_address_is_allowed_by_its_own_name() {
        let text = "[gateway]\nbind = \"127.0.0.2\"\n[server.a]\ncommand = \"x\"\nport = 9000\n";
        let edge = parse(Path::new("t.toml"), text).unwrap().servers[0].http.edge.clone();
        assert!(edge.allows_host("127.0.0.2:9000") && edge.allows_host("localhost:9000"));
        assert!(edge.allows_origin("http://127.0.0.2:9000") && !edge.allows_host("evil.example.com"));
    }

    #[test]
    fn other_listeners_accept_any_host_by_default() {
        let text = "[gateway]\nbind = \"0.0.0.0\"\n[server.a]\ncommand = \"x\"\nport = 9000\n";
        let edge = parse(Path::new("t.toml"), text).unwrap().servers[0].http.edge.clone();
        assert!(edge.allows_host("mcp.example.com"));
        assert!(!edge.allows_origin("https://evil.example.com"));
    }

    #[test]
    fn configured_lists_replace_the_defaults() {
        let edge = settings(
            r#"allowed_hosts = ["mcp.example.com", "10.0.0.5:8443"]
allowed_origins = ["https://app.example.com", "http://localhost:5173", "null"]"#,
        );
        assert!(edge.allows_host("MCP.example.com:443") && edge.allows_host("10.0.0.5:8443"));
        assert!(!edge.allows_host("10.0.0.5:80") && !edge.allows_host("localhost"));
        assert!(edge.allows_origin("https://app.example.com") && edge.allows_origin("https://app.example.com:443"));
        // No port in the pattern: any port; but the scheme must match.
        assert!(edge.allows_origin("https://app.example.com:8443") && !edge.allows_origin("http://app.example.com"));
        assert!(edge.allows_origin("http://localhost:5173") && !edge.allows_origin("http://localhost:3000"));
        assert!(edge.allows_origin("null"));
        let any = settings(
            r#"allowed_hosts = ["*"]
allowed_origins = ["*"]"#,
        );
        assert!(any.allows_host("anything") && any.allows_origin("https://evil.example.com"));
    }

    #[test]
    fn bad_patterns_name_file_line_and_key() {
        let e = error(r#"allowed_origins = ["https://app.example.com/path"]"#);
        assert!(
            e.starts_with(
                "t.toml:5:20: server.a.http.allowed_origins: \"https://app.example.com/path\": an origin has no path"
            ),
            "{e}"
        );
        let e = error(r#"allowed_origins = ["app.example.com"]"#);
        assert!(
            e.contains("server.a.http.allowed_origins: \"app.example.com\": an origin is scheme://host[:port]"),
            "{e}"
        );
        let e = error(r#"allowed_hosts = ["*.example.com"]"#);
        assert!(e.starts_with("t.toml:5:18: server.a.http.allowed_hosts: \"*.example.com\": wildcards"), "{e}");
        let e = error(r#"allowed_hosts = ["http://example.com"]"#);
        assert!(e.contains("a host has no scheme or path"), "{e}");
        let e = error(r#"allowed_hosts = ["example.com:99999"]"#);
        assert!(e.contains("\"example.com:99999\": not a host"), "{e}");
    }
}
