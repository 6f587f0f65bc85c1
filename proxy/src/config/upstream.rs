//! Where a server's MCP traffic goes and how it is spread: a stdio command
//! (optionally `replicas` copies of it), HTTP instances (`url`, `urls`), or a
//! supervised command that listens on HTTP itself (`command` +
//! `upstream_url`); and `[server.NAME.upstream]`, the balancing, health and
//! connection settings. [`resolve`] checks these keys of one server.

use super::schema::RawServer;
use super::validate::{Checker, relative_to};
use super::{ConfigError, SessionSettings};
use http::{HeaderName, HeaderValue, Uri};
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// How new sessions pick an instance (or stdio replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    /// The instance with the fewest live sessions (then requests in flight).
    LeastConnections,
    /// A hash ring over the instances, keyed by the session id, or by this
    /// request header when set (and sent).
    ConsistentHash {
        header: Option<HeaderName>,
    },
}

/// What the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTransport {
    /// Streamable HTTP (`POST`/`GET`/`DELETE` on one endpoint).
    StreamableHttp,
    /// HTTP+SSE, 2024-11-05 (`GET /sse`, then `POST` to the endpoint it names).
    Sse,
    /// Streamable HTTP, else SSE if the instance refuses a Streamable HTTP `initialize`.
    Auto,
}

#[derive(Debug, Clone)]
pub struct HttpUpstreamSettings {
    /// One per instance, in the order written.
    pub urls: Vec<Uri>,
    pub transport: UpstreamTransport,
    /// Path probed with GET (2xx = healthy); `None`: an MCP `ping` over a probe session.
    pub health_check: Option<String>,
    pub health_interval: Duration,
    /// Client request headers passed upstream, lower case.
    pub forward_headers: Vec<HeaderName>,
    /// Headers added to every upstream request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Idle keep-alive connections kept per instance.
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
    /// HTTP/2 only (prior knowledge over `http://`, ALPN over `https://`).
    pub http2: bool,
    /// Connections are not reused past this age; `None`: no limit.
    pub pool_max_lifetime: Option<Duration>,
    pub connect_timeout: Duration,
    /// Extra CA certificates (PEM) trusted for `https` instances.
    pub ca_file: Option<PathBuf>,
    /// mcpd runs `command` and it listens at the one URL (`upstream_url`).
    pub supervised: bool,
}

/// The resolved upstream keys of one server.
pub(super) struct Resolved {
    pub http: Option<HttpUpstreamSettings>,
    pub replicas: Option<usize>,
    pub balance: Balance,
}

/// Headers mcpd manages itself on upstream requests.
const MANAGED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "mcp-session-id",
];

pub(super) fn resolve(
    check: &Checker,
    name: &str,
    server: &Spanned<RawServer>,
    has_translator: bool,
    session: &SessionSettings,
) -> Result<Resolved, ConfigError> {
    let key = |k: &str| format!("server.{name}.{k}");
    let s = server.get_ref();
    let u = &s.upstream;

    if let (Some(up), true) = (&s.upstream_url, s.url.is_some() || s.urls.is_some()) {
        return Err(check.error(
            Some(up.span()),
            key("upstream_url"),
            "`upstream_url` goes with `command` (a process mcpd runs), not with `url`/`urls`",
        ));
    }
    // Each URL with the key that names it in messages.
    let urls: Vec<(&Spanned<String>, String)> = match (&s.url, &s.urls, &s.upstream_url) {
        (Some(_), Some(urls), _) => {
            return Err(check.error(Some(urls.span()), key("urls"), "use either `url` or `urls`, not both"));
        }
        (Some(url), None, _) => vec![(url, key("url"))],
        (None, Some(urls), _) if urls.get_ref().is_empty() => {
            return Err(check.error(Some(urls.span()), key("urls"), "needs at least one URL"));
        }
        (None, Some(urls), _) => {
            urls.get_ref().iter().enumerate().map(|(i, u)| (u, key(&format!("urls[{i}]")))).collect()
        }
        (None, None, Some(up)) if s.command.is_none() => {
            return Err(check.error(
                Some(up.span()),
                key("upstream_url"),
                "needs `command`: the process that listens at this URL",
            ));
        }
        (None, None, Some(up)) => vec![(up, key("upstream_url"))],
        (None, None, None) => Vec::new(),
    };
    let supervised = s.upstream_url.is_some();
    let is_http = !urls.is_empty();
    if is_http && !supervised {
        let span = s.url.as_ref().map(|u| u.span()).or(s.urls.as_ref().map(|u| u.span()));
        let which = if s.url.is_some() { "url" } else { "urls" };
        if s.command.is_some() {
            return Err(check.error(
                span,
                key(which),
                "use either `command` (a stdio server) or `url`/`urls` (an HTTP server); \
                 a command that listens on HTTP itself takes `upstream_url`",
            ));
        }
        if has_translator {
            return Err(check.error(span, key(which), "use either `translator` or `url`/`urls`, not both"));
        }
    }

    let replicas = match &s.replicas {
        None => None,
        Some(r) if is_http => {
            return Err(check.error(
                Some(r.span()),
                key("replicas"),
                "`replicas` runs copies of a stdio server; list the instances of an HTTP server in `urls`",
            ));
        }
        Some(r) if has_translator => {
            return Err(check.error(Some(r.span()), key("replicas"), "a translator plugin has no replicas"));
        }
        Some(r) => Some(check.positive(&Some(r.clone()), key("replicas"), 1)?),
    };

    let balance = resolve_balance(check, name, s)?;
    if !is_http && replicas.is_none() && s.upstream.lb.is_some() {
        let span = u.lb.as_ref().map(|l| l.span());
        return Err(check.error(
            span,
            key("upstream.lb"),
            "there is nothing to balance: set `urls` (HTTP instances) or `replicas` (stdio copies)",
        ));
    }

    if !is_http {
        let http_only = [
            ("transport", u.transport.as_ref().map(|v| v.span())),
            ("health_check", u.health_check.as_ref().map(|v| v.span())),
            ("forward_headers", u.forward_headers.first().map(|v| v.span())),
            ("headers", u.headers.values().next().map(|v| v.span())),
            ("pool_max_idle", u.pool_max_idle.as_ref().map(|v| v.span())),
            ("http2", u.http2.as_ref().map(|v| v.span())),
            ("ca_file", u.ca_file.as_ref().map(|v| v.span())),
        ];
        let timing = u.health_check_interval.is_some()
            || u.pool_idle_timeout.is_some()
            || u.pool_max_lifetime.is_some()
            || u.connect_timeout.is_some();
        if let Some((k, span)) = http_only.into_iter().find(|(_, span)| span.is_some()) {
            return Err(check.error(span, key(&format!("upstream.{k}")), "only applies to HTTP upstreams"));
        }
        if timing {
            return Err(check.error(
                None,
                key("upstream"),
                "connection and health timings only apply to HTTP upstreams",
            ));
        }
        return Ok(Resolved { http: None, replicas, balance });
    }

    if !session.enabled {
        return Err(check.error(
            Some(server.span()),
            key("session.enabled"),
            "an HTTP upstream without client sessions (session.enabled = false) is not supported yet",
        ));
    }

    let mut parsed = Vec::new();
    for (url, url_key) in urls {
        parsed.push(parse_url(check, url, url_key)?);
    }

    let transport = match u.transport.as_ref().map(|t| (t, t.get_ref().as_str())) {
        None | Some((_, "streamable-http")) => UpstreamTransport::StreamableHttp,
        Some((_, "sse")) => UpstreamTransport::Sse,
        Some((_, "auto")) => UpstreamTransport::Auto,
        Some((t, other)) => {
            return Err(check.error(
                Some(t.span()),
                key("upstream.transport"),
                format!("unknown upstream transport {other:?} (expected \"streamable-http\", \"sse\" or \"auto\")"),
            ));
        }
    };

    let health_check = match &u.health_check {
        None => None,
        Some(h) if h.get_ref() == "ping" => None,
        Some(h) if h.get_ref().starts_with('/') && h.get_ref().parse::<http::uri::PathAndQuery>().is_ok() => {
            Some(h.get_ref().clone())
        }
        Some(h) => {
            return Err(check.error(
                Some(h.span()),
                key("upstream.health_check"),
                format!("{:?} is not a path starting with '/' (or \"ping\" for an MCP ping)", h.get_ref()),
            ));
        }
    };

    let mut forward_headers = Vec::new();
    for h in &u.forward_headers {
        let lower = h.get_ref().trim().to_ascii_lowercase();
        let fail = |m: String| check.error(Some(h.span()), key("upstream.forward_headers"), m);
        let name =
            HeaderName::from_bytes(lower.as_bytes()).map_err(|_| fail(format!("{lower:?} is not a header name")))?;
        if MANAGED.contains(&name.as_str()) {
            return Err(fail(format!("mcpd sets {lower:?} itself on upstream requests")));
        }
        forward_headers.push(name);
    }
    let mut headers = Vec::new();
    for (n, v) in &u.headers {
        let fail = |m: String| check.error(Some(v.span()), key(&format!("upstream.headers.{n}")), m);
        let name = HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes())
            .map_err(|_| fail(format!("{n:?} is not a header name")))?;
        if MANAGED.contains(&name.as_str()) {
            return Err(fail(format!("mcpd sets {n:?} itself on upstream requests")));
        }
        let value = HeaderValue::from_str(v.get_ref()).map_err(|_| fail("not a valid header value".into()))?;
        headers.push((name, value));
    }

    let ca_file = match &u.ca_file {
        None => None,
        Some(file) => {
            let path = relative_to(check.path, std::path::Path::new(file.get_ref()));
            let fail = |m: String| check.error(Some(file.span()), key("upstream.ca_file"), m);
            let count = crate::upstream::http::client::read_ca_file(&path).map_err(fail)?;
            if count == 0 {
                return Err(fail(format!("{} holds no PEM certificate", path.display())));
            }
            Some(path)
        }
    };

    let settings = HttpUpstreamSettings {
        urls: parsed,
        transport,
        health_check,
        health_interval: nonzero(check, u.health_check_interval, key("upstream.health_check_interval"), 10)?,
        forward_headers,
        headers,
        pool_max_idle: match &u.pool_max_idle {
            None => 32,
            Some(n) if *n.get_ref() >= 0 => *n.get_ref() as usize,
            Some(n) => return Err(check.error(Some(n.span()), key("upstream.pool_max_idle"), "cannot be negative")),
        },
        pool_idle_timeout: nonzero(check, u.pool_idle_timeout, key("upstream.pool_idle_timeout"), 90)?,
        http2: u.http2.as_ref().is_some_and(|v| *v.get_ref()),
        pool_max_lifetime: match u.pool_max_lifetime {
            None => None,
            some => Some(nonzero(check, some, key("upstream.pool_max_lifetime"), 0)?),
        },
        connect_timeout: nonzero(check, u.connect_timeout, key("upstream.connect_timeout"), 5)?,
        ca_file,
        supervised,
    };
    Ok(Resolved { http: Some(settings), replicas, balance })
}

fn nonzero(
    check: &Checker,
    value: Option<super::units::HumanDuration>,
    key: String,
    default_secs: u64,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_secs(default_secs)),
        Some(d) if d.0.is_zero() => Err(check.error(None, key, "must be longer than zero")),
        Some(d) => Ok(d.0),
    }
}

fn resolve_balance(check: &Checker, name: &str, s: &RawServer) -> Result<Balance, ConfigError> {
    let key = |k: &str| format!("server.{name}.upstream.{k}");
    let u = &s.upstream;
    let header = match &u.hash_header {
        None => None,
        Some(h) => Some(HeaderName::from_bytes(h.get_ref().trim().to_ascii_lowercase().as_bytes()).map_err(|_| {
            check.error(Some(h.span()), key("hash_header"), format!("{:?} is not a header name", h.get_ref()))
        })?),
    };
    let balance = match u.lb.as_ref().map(|l| (l, l.get_ref().as_str())) {
        None | Some((_, "round_robin")) => Balance::RoundRobin,
        Some((_, "least_connections")) => Balance::LeastConnections,
        Some((_, "consistent_hash")) => return Ok(Balance::ConsistentHash { header }),
        Some((l, other)) => {
            return Err(check.error(
                Some(l.span()),
                key("lb"),
                format!("unknown balancing {other:?} (expected \"round_robin\", \"least_connections\" or \"consistent_hash\")"),
            ));
        }
    };
    match &u.hash_header {
        Some(h) => Err(check.error(Some(h.span()), key("hash_header"), "only applies with lb = \"consistent_hash\"")),
        None => Ok(balance),
    }
}

fn parse_url(check: &Checker, url: &Spanned<String>, key: String) -> Result<Uri, ConfigError> {
    let fail = |m: String| check.error(Some(url.span()), key.clone(), m);
    let text = url.get_ref().trim();
    let uri: Uri = text.parse().map_err(|e| fail(format!("{text:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(fail(format!("{text:?}: only http:// and https:// URLs are supported"))),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(fail(format!("{text:?} names no host")));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use crate::config::{Balance, UpstreamTransport, parse};
    use std::path::Path;

    fn err(text: &str) -> String {
        parse(Path::new("t.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn http_instances_resolve_with_defaults() {
        let config = parse(
            Path::new("t.toml"),
            "[server.a]\nurls = [\"http://127.0.0.1:9001/mcp\", \"https://h.example/mcp\"]\n\
             [server.a.upstream]\nlb = \"consistent_hash\"\nhash_header = \"X-User\"\nforward_headers = [\"Authorization\"]\n",
        )
        .unwrap();
        let http = config.servers[0].http_upstream.as_ref().unwrap();
        assert_eq!(http.urls.len(), 2);
        assert_eq!(http.transport, UpstreamTransport::StreamableHttp);
        assert_eq!(http.forward_headers[0].as_str(), "authorization");
        assert_eq!(http.pool_max_idle, 32);
        assert!(matches!(&config.servers[0].balance, Balance::ConsistentHash { header: Some(h) } if h == "x-user"));
    }

    #[test]
    fn bad_upstream_keys_name_line_and_key() {
        let e = err("[server.a]\nurls = [\"http://x/mcp\", \"ftp://y\"]\n");
        assert!(e.starts_with("t.toml:2:25: server.a.urls[1]: \"ftp://y\": only http"), "{e}");
        let e = err("[server.a]\ncommand = \"x\"\nurl = \"http://x/mcp\"\n");
        assert!(e.starts_with("t.toml:3:7: server.a.url: use either `command`"), "{e}");
        let e = err("[server.a]\nurl = \"http://x/mcp\"\n[server.a.upstream]\nlb = \"random\"\n");
        assert!(e.starts_with("t.toml:4:6: server.a.upstream.lb: unknown balancing"), "{e}");
        let e = err("[server.a]\ncommand = \"x\"\n[server.a.upstream]\nforward_headers = [\"x\"]\n");
        assert!(e.contains("server.a.upstream.forward_headers: only applies to HTTP upstreams"), "{e}");
        let e = err("[server.a]\nurl = \"http://x/mcp\"\nreplicas = 2\n");
        assert!(e.starts_with("t.toml:3:12: server.a.replicas:"), "{e}");
        let e = err("[server.a]\nupstream_url = \"http://x/mcp\"\n");
        assert!(e.contains("server.a.upstream_url: needs `command`"), "{e}");
        let e = err("[server.a]\nurl = \"http://x/mcp\"\n[server.a.upstream]\nforward_headers = [\"host\"]\n");
        assert!(e.contains("mcpd sets \"host\" itself"), "{e}");
    }

    #[test]
    fn replicas_are_for_stdio_and_size_the_pool_without_sessions() {
        let config = parse(Path::new("t.toml"), "[server.a]\ncommand = \"x\"\nreplicas = 3\n").unwrap();
        assert_eq!(config.servers[0].replicas, Some(3));
        let text = "[server.a]\ncommand = \"x\"\nreplicas = 3\n[server.a.session]\nenabled = false\n";
        let config = parse(Path::new("t.toml"), text).unwrap();
        assert_eq!(config.servers[0].pool_size, 3);
        let e = err("[server.a]\ncommand = \"x\"\nreplicas = 0\n");
        assert!(e.contains("server.a.replicas: must be at least 1"), "{e}");
    }
}
