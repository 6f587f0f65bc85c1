//! Checks serde cannot do, and defaults: turns a [`RawConfig`] into a
//! [`Config`], or a [`ConfigError`] pointing at the line to fix.

use super::error::{ConfigError, Location};
use super::schema::{RawConfig, RawPlugin, RawServer};
use super::{
    Config, GatewaySettings, HttpSettings, OnError, PluginSettings, ServerSettings, SessionSettings, StoreSettings,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Parses the TOML text into the raw schema, keeping the key path of errors.
pub fn deserialize(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError::Invalid {
        location: Location::of(path, text, e.span()),
        key: "(syntax)".into(),
        message: e.message().trim().to_string(),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = key_path(e.path());
        let inner = e.into_inner();
        ConfigError::Invalid {
            location: Location::of(path, text, inner.span()),
            key,
            message: inner.message().trim().to_string(),
        }
    })
}

/// `server.a.http.max_body`, without the markers `Spanned` leaves in the path.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key: k } if k.starts_with("$__") => {}
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    if key.is_empty() { "(top level)".into() } else { key }
}

/// Where the check is: builds errors with the right file and line.
pub(super) struct Checker<'a> {
    pub path: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    pub fn error(&self, span: Option<Range<usize>>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: Location::of(self.path, self.text, span),
            key: key.into(),
            message: message.into(),
        }
    }

    fn not_yet<T>(&self, value: &Option<Spanned<T>>, key: String, what: &str) -> Result<(), ConfigError> {
        match value {
            Some(v) => Err(self.error(Some(v.span()), key, format!("{what} is not supported yet"))),
            None => Ok(()),
        }
    }

    /// A count that may be 0.
    pub fn count(&self, value: &Option<Spanned<i64>>, key: String, default: usize) -> Result<usize, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() >= 0 => Ok(*v.get_ref() as usize),
            Some(v) => Err(self.error(Some(v.span()), key, format!("must be 0 or more, got {}", v.get_ref()))),
        }
    }

    pub fn positive(&self, value: &Option<Spanned<i64>>, key: String, default: usize) -> Result<usize, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() >= 1 => Ok(*v.get_ref() as usize),
            Some(v) => Err(self.error(Some(v.span()), key, format!("must be at least 1, got {}", v.get_ref()))),
        }
    }
}

pub fn resolve(path: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let check = Checker { path, text };
    let g = &raw.gateway;

    let bind: IpAddr = match &g.bind {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(b) => b.get_ref().parse().map_err(|_| {
            check.error(Some(b.span()), "gateway.bind", format!("{:?} is not an IP address", b.get_ref()))
        })?,
    };
    let listen: SocketAddr = match &g.listen {
        None => DEFAULT_LISTEN.parse().expect("default listen address parses"),
        Some(l) => l.get_ref().parse().map_err(|_| {
            check.error(
                Some(l.span()),
                "gateway.listen",
                format!("{:?} is not an address such as \"127.0.0.1:8080\"", l.get_ref()),
            )
        })?,
    };
    let threads = match g.threads {
        Some(0) => return Err(check.error(None, "gateway.threads", "must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };

    if raw.server.is_empty() {
        return Err(check.error(None, "server", "no [server.NAME] section: there is nothing to serve"));
    }

    let mut servers = Vec::new();
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    let mut uses_shared_listener = false;
    for (name, server) in &raw.server {
        let settings = resolve_server(&check, name, server, bind, listen)?;
        match settings.mount.is_empty() {
            true => {
                let port = settings.listen.port();
                if let Some(other) = ports.insert(port, name.clone()) {
                    let span = server.get_ref().port.as_ref().map(|p| p.span());
                    return Err(check.error(
                        span,
                        format!("server.{name}.port"),
                        format!("port {port} is already used by server {other:?}"),
                    ));
                }
            }
            false => uses_shared_listener = true,
        }
        servers.push(Arc::new(settings));
    }
    if uses_shared_listener && ports.contains_key(&listen.port()) && listen.ip() == bind {
        let owner = &ports[&listen.port()];
        return Err(check.error(
            g.listen.as_ref().map(|l| l.span()),
            "gateway.listen",
            format!("port {} is also the own port of server {owner:?}", listen.port()),
        ));
    }

    Ok(Config {
        path: path.to_path_buf(),
        gateway: GatewaySettings {
            listen: uses_shared_listener.then_some(listen),
            bind,
            max_sessions: g.max_sessions.unwrap_or(1000).max(1),
            threads,
            shutdown_timeout: g.shutdown_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
            plugin_cache: Some(
                g.plugin_cache
                    .as_ref()
                    .map(|p| relative_to(path, p))
                    .unwrap_or_else(|| std::env::temp_dir().join("mcpd-plugin-cache")),
            ),
            watch_plugins: g.watch_plugins.unwrap_or(true),
            store: match &g.store {
                None => StoreSettings::Memory,
                Some(s) if s.get_ref() == "memory" => StoreSettings::Memory,
                Some(s) if s.get_ref().starts_with("redis://") => StoreSettings::Redis(s.get_ref().clone()),
                Some(s) => {
                    return Err(check.error(
                        Some(s.span()),
                        "gateway.store",
                        format!("{:?} is not \"memory\" or a redis:// URL", s.get_ref()),
                    ));
                }
            },
            pid_file: g.pid_file.as_ref().map(|p| relative_to(path, p)).unwrap_or_else(|| default_pid_file(path)),
        },
        servers,
    })
}

fn resolve_server(
    check: &Checker,
    name: &str,
    server: &Spanned<RawServer>,
    bind: IpAddr,
    shared: SocketAddr,
) -> Result<ServerSettings, ConfigError> {
    let key = |k: &str| format!("server.{name}.{k}");
    let s = server.get_ref();

    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(check.error(
            Some(server.span()),
            format!("server.{name}"),
            "a server name may use only letters, digits, '-' and '_' (it becomes a URL path)",
        ));
    }
    check.not_yet(&s.tls, key("tls"), "TLS (and auto_cert)")?;

    let translator = match &s.translator {
        Some(t) => Some(resolve_plugin(check, t, key("translator"), Duration::from_secs(1))?),
        None => None,
    };
    let command = match (&s.command, &translator) {
        (Some(c), Some(_)) => {
            return Err(check.error(Some(c.span()), key("command"), "use either `command` or `translator`, not both"));
        }
        (None, Some(_)) => String::new(),
        (Some(c), None) if !c.get_ref().trim().is_empty() => c.get_ref().clone(),
        (Some(c), None) => return Err(check.error(Some(c.span()), key("command"), "must not be empty")),
        // `upstream_url` without `command` is refused with its own message below.
        (None, None) if s.url.is_some() || s.urls.is_some() || s.upstream_url.is_some() => String::new(),
        (None, None) => {
            return Err(check.error(
                Some(server.span()),
                format!("server.{name}"),
                "missing `command`: the stdio MCP server to run (or `url`/`urls` of an HTTP server, or a `translator` plugin)",
            ));
        }
    };

    let (listen, mount) = match &s.port {
        None => (shared, format!("/{name}")),
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(port) if port > 0 => (SocketAddr::new(bind, port), String::new()),
            _ => {
                return Err(check.error(
                    Some(p.span()),
                    key("port"),
                    format!("{} is not a TCP port (1-65535)", p.get_ref()),
                ));
            }
        },
    };

    let health_path = match &s.health_check {
        None => "/health".to_string(),
        Some(h) if h.get_ref().starts_with('/') && h.get_ref() != "/mcp" => h.get_ref().clone(),
        Some(h) => {
            return Err(check.error(
                Some(h.span()),
                key("health_check"),
                format!("{:?} must be a path starting with '/' other than /mcp", h.get_ref()),
            ));
        }
    };

    let transports = super::transport::resolve(check, name, s, &["/mcp", health_path.as_str()])?;

    if let Some(storage) = &s.session.storage {
        match storage.get_ref().as_str() {
            "memory" => {}
            "redis" => {
                return Err(check.error(
                    Some(storage.span()),
                    key("session.storage"),
                    "\"redis\" session storage is not supported yet (use \"memory\")",
                ));
            }
            other => {
                return Err(check.error(
                    Some(storage.span()),
                    key("session.storage"),
                    format!("unknown storage {other:?} (expected \"memory\")"),
                ));
            }
        }
    }

    let h = &s.http;
    let http = HttpSettings {
        chunked_encoding: h.chunked_encoding.unwrap_or(true),
        max_request_size: h.max_request_size.map(|b| b.0).unwrap_or(4 << 20),
        request_timeout: h.request_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(300)),
        keepalive_timeout: h.keepalive_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(60)),
        max_concurrent_requests: check.positive(
            &h.max_concurrent_requests,
            key("http.max_concurrent_requests"),
            256,
        )?,
        sse_keepalive: h.sse_keepalive.map(|d| d.0).unwrap_or(Duration::from_secs(15)),
        sse_replay_buffer: match &h.sse_replay_buffer {
            None => 256,
            Some(v) if (0..=65536).contains(v.get_ref()) => *v.get_ref() as usize,
            Some(v) => {
                let text = format!("must be between 0 (off) and 65536 events, got {}", v.get_ref());
                return Err(check.error(Some(v.span()), key("http.sse_replay_buffer"), text));
            }
        },
        sse_retry: h.sse_retry.map(|d| d.0).unwrap_or(Duration::from_secs(1)),
        edge: super::edge::resolve(check, name, h, listen)?,
    };
    if http.request_timeout.is_zero() {
        return Err(check.error(None, key("http.request_timeout"), "must be longer than zero"));
    }

    let session = SessionSettings {
        enabled: s.session.enabled.unwrap_or(true),
        idle_timeout: s.session.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(3600)),
        max_per_client: check.positive(&s.session.max_per_client, key("session.max_per_client"), 16)?,
    };
    let upstream = super::upstream::resolve(check, name, server, translator.is_some(), &session)?;
    let enabled = session.enabled;
    // Without sessions, `replicas` is the size of the shared pool.
    let pool_size = match (upstream.replicas, &s.pool.size) {
        (Some(replicas), Some(size)) if *size.get_ref() != replicas as i64 => {
            return Err(check.error(
                Some(size.span()),
                key("pool.size"),
                format!("disagrees with replicas = {replicas}; set one of them"),
            ));
        }
        (Some(replicas), _) => replicas,
        (None, _) => check.positive(&s.pool.size, key("pool.size"), 2)?,
    };

    Ok(ServerSettings {
        name: name.to_string(),
        command,
        args: s.args.clone(),
        env: s.env.clone(),
        cwd: s.cwd.clone(),
        listen,
        mount,
        health_path,
        transports,
        health_interval: s.health_check_interval.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
        http,
        session,
        pool_size,
        replicas: upstream.replicas.filter(|_| enabled),
        http_upstream: upstream.http,
        balance: upstream.balance,
        plugins: s
            .plugins
            .iter()
            .enumerate()
            .map(|(i, p)| resolve_plugin(check, p, format!("server.{name}.plugins[{i}]"), Duration::from_millis(50)))
            .collect::<Result<_, _>>()?,
        // Translators answer session-era requests only (their clients fall back).
        stateless: s.stateless.unwrap_or(true) && translator.is_none(),
        translator,
    })
}

/// `$TMPDIR/mcpd-<hash of the config's absolute path>.pid`: one per config,
/// found again by `mcpd reload -c` with the same file.
fn default_pid_file(config: &Path) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let absolute = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    absolute.hash(&mut hasher);
    std::env::temp_dir().join(format!("mcpd-{:016x}.pid", hasher.finish()))
}

/// `path` as written in the config, relative to the config file's directory.
pub(super) fn relative_to(config: &Path, path: &Path) -> std::path::PathBuf {
    match config.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Decisions a plugin may keep for reuse per hook, unless its table says.
const DECISION_CACHE: usize = 10_000;

/// `timeout` is the default CPU time per call.
fn resolve_plugin(
    check: &Checker,
    plugin: &Spanned<RawPlugin>,
    key: String,
    timeout: Duration,
) -> Result<PluginSettings, ConfigError> {
    let p = plugin.get_ref();
    let path = relative_to(check.path, Path::new(p.path.get_ref()));
    if !path.is_file() {
        return Err(check.error(
            Some(p.path.span()),
            format!("{key}.path"),
            format!("no plugin file at {} (build plugins with ./dev plugins)", path.display()),
        ));
    }
    let on_error = match p.on_error.as_ref().map(|o| o.get_ref().as_str()) {
        None | Some("closed") => OnError::Closed,
        Some("open") => OnError::Open,
        Some(other) => {
            let span = p.on_error.as_ref().map(|o| o.span());
            return Err(check.error(
                span,
                format!("{key}.on_error"),
                format!("{other:?} is not \"closed\" or \"open\""),
            ));
        }
    };
    let max_memory = p.max_memory.map(|b| b.0).unwrap_or(64 << 20);
    if max_memory > crate::plugin::engine::MEMORY_CEILING {
        return Err(check.error(None, format!("{key}.max_memory"), "must be at most 1GB"));
    }
    let mut config = match &p.config_file {
        Some(file) => read_config_file(check, file, &key)?,
        None => toml::Table::new(),
    };
    config.extend(p.config.clone());
    let config_json =
        serde_json::to_string(&config).map_err(|e| check.error(None, format!("{key}.config"), e.to_string()))?;
    let allow_hosts = p
        .allow_hosts
        .iter()
        .map(|h| {
            let host = h.get_ref().trim().to_ascii_lowercase();
            match host.is_empty() || host.contains('/') || host.contains('*') {
                true => Err(check.error(
                    Some(h.span()),
                    format!("{key}.allow_hosts"),
                    format!("{:?} is not a host or host:port (no scheme, path or wildcard)", h.get_ref()),
                )),
                false => Ok(host),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PluginSettings {
        path,
        on_error,
        timeout: p.timeout.map(|d| d.0).unwrap_or(timeout),
        start_timeout: p.start_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10)),
        max_memory: max_memory as usize,
        max_output: p.max_output.map(|b| b.0).unwrap_or(4 << 20) as usize,
        instances: check.positive(&p.instances, format!("{key}.instances"), 2)?,
        decision_cache: check.count(&p.decision_cache, format!("{key}.decision_cache"), DECISION_CACHE)?,
        headers: p.headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
        config_json,
        allow_hosts,
        methods: p.methods.clone(),
    })
}

/// A plugin's `config_file`: a TOML table, or a JSON object if it ends in `.json`.
fn read_config_file(check: &Checker, file: &Spanned<String>, key: &str) -> Result<toml::Table, ConfigError> {
    let path = relative_to(check.path, Path::new(file.get_ref()));
    let fail = |message: String| check.error(Some(file.span()), format!("{key}.config_file"), message);
    let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str::<toml::Table>(&text).map_err(|e| format!("{e}")),
        _ => toml::from_str::<toml::Table>(&text).map_err(|e| format!("{e}")),
    };
    parsed.map_err(|e| fail(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn err(text: &str) -> String {
        parse(Path::new("t.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn seed_style_without_tls_is_accepted() {
        let config = parse(
            Path::new("t.toml"),
            r#"
[server.api-tools]
command = "python"
args = ["-m", "my_mcp_server"]
transport = "streamable-http"
port = 8443
health_check = "/health"
health_check_interval = "30s"
[server.api-tools.http]
chunked_encoding = true
max_request_size = "10MB"
request_timeout = "300s"
keepalive_timeout = "60s"
max_concurrent_requests = 100
[server.api-tools.session]
enabled = true
timeout = "3600s"
max_per_client = 5
storage = "memory"
"#,
        )
        .unwrap();
        let s = &config.servers[0];
        assert_eq!(s.http.max_request_size, 10 << 20);
        assert_eq!(s.http.max_concurrent_requests, 100);
        assert_eq!(s.session.max_per_client, 5);
        assert_eq!(s.listen.port(), 8443);
        assert_eq!(s.mcp_path(), "/mcp");
        assert!(config.gateway.listen.is_none());
    }

    #[test]
    fn unknown_key_names_line_and_path() {
        let e = err("[server.a]\ncommand = \"x\"\n[server.a.http]\nmax_body = 3\n");
        assert!(e.starts_with("t.toml:4:1: server.a.http.max_body: unknown field `max_body`"), "{e}");
    }

    #[test]
    fn bad_unit_names_line_and_path() {
        let e = err("[server.a]\ncommand = \"x\"\n[server.a.http]\nmax_request_size = \"10XB\"\n");
        assert!(e.starts_with("t.toml:4:20: server.a.http.max_request_size: invalid size"), "{e}");
    }

    #[test]
    fn tls_is_not_supported_yet() {
        let e = err("[server.a]\ncommand = \"x\"\n[server.a.tls]\nauto_cert = true\n");
        assert!(e.contains("server.a.tls: TLS (and auto_cert) is not supported yet"), "{e}");
    }

    #[test]
    fn servers_without_port_share_the_listener() {
        let config = parse(Path::new("t.toml"), "[server.a]\ncommand = \"x\"\n").unwrap();
        assert_eq!(config.servers[0].mcp_path(), "/a/mcp");
        assert_eq!(config.gateway.listen.map(|l| l.port()), Some(8080));
    }
}
