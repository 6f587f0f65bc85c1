//! Which client-facing transports a server speaks (`transport`) and where
//! the legacy HTTP+SSE (2024-11-05) endpoints live (`[server.NAME.sse]`).
//! [`resolve`] checks these keys of one server; nothing here knows HTTP.

use super::ConfigError;
use super::schema::RawServer;
use super::validate::Checker;
use toml::Spanned;

/// The client-facing transports of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transports {
    /// Streamable HTTP at `/mcp` (every era mcpd speaks there).
    pub streamable_http: bool,
    /// The 2024-11-05 HTTP+SSE endpoints, when `"sse"` is listed.
    pub sse: Option<SsePaths>,
}

/// Paths of the legacy endpoints, below the server's mount (`/NAME` on the
/// shared listener, nothing on its own port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsePaths {
    /// `GET` opens the stream (the session); default `/sse`.
    pub stream: String,
    /// `POST ?sessionId=…` carries the client's messages; default `/message`.
    pub message: String,
}

pub const DEFAULT_SSE_PATH: &str = "/sse";
pub const DEFAULT_MESSAGE_PATH: &str = "/message";

impl super::ServerSettings {
    /// The legacy endpoints' full paths on the listener: (stream, message),
    /// e.g. `/NAME/sse` and `/NAME/message` on the shared listener.
    pub fn sse_routes(&self) -> Option<(String, String)> {
        let paths = self.transports.sse.as_ref()?;
        Some((format!("{}{}", self.mount, paths.stream), format!("{}{}", self.mount, paths.message)))
    }
}

/// `transport` (a name or a list) and `[server.NAME.sse]` of server `name`.
/// `taken` are the server's other paths (MCP, health), which the legacy
/// endpoints may not shadow.
pub(super) fn resolve(
    check: &Checker,
    name: &str,
    server: &RawServer,
    taken: &[&str],
) -> Result<Transports, ConfigError> {
    let key = |k: &str| format!("server.{name}.{k}");
    let mut transports = Transports { streamable_http: true, sse: None };
    let mut sse = false;
    if let Some(value) = &server.transport {
        let names: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if names.is_empty() {
            return Err(check.error(Some(value.span()), key("transport"), "lists no transport"));
        }
        transports.streamable_http = false;
        for item in names {
            match item.as_str() {
                Some("streamable-http") => transports.streamable_http = true,
                Some("sse") => sse = true,
                Some(other) => {
                    return Err(check.error(
                        Some(value.span()),
                        key("transport"),
                        format!("unknown transport {other:?} (expected \"streamable-http\" or \"sse\")"),
                    ));
                }
                None => {
                    return Err(check.error(
                        Some(value.span()),
                        key("transport"),
                        "expected a transport name or a list of them",
                    ));
                }
            }
        }
    }
    let raw = &server.sse;
    if !sse {
        if let Some(path) = raw.path.as_ref().or(raw.message_path.as_ref()) {
            return Err(check.error(
                Some(path.span()),
                key("sse"),
                "the legacy SSE endpoints are off: add \"sse\" to `transport` to serve them",
            ));
        }
        return Ok(transports);
    }
    let stream = path(check, &raw.path, key("sse.path"), DEFAULT_SSE_PATH, taken)?;
    let message = path(check, &raw.message_path, key("sse.message_path"), DEFAULT_MESSAGE_PATH, taken)?;
    if stream == message {
        return Err(check.error(
            raw.message_path.as_ref().or(raw.path.as_ref()).map(Spanned::span),
            key("sse.message_path"),
            format!("{message:?} is also the SSE stream path"),
        ));
    }
    transports.sse = Some(SsePaths { stream, message });
    Ok(transports)
}

fn path(
    check: &Checker,
    value: &Option<Spanned<String>>,
    key: String,
    default: &str,
    taken: &[&str],
) -> Result<String, ConfigError> {
    let Some(value) = value else { return Ok(default.to_string()) };
    let path = value.get_ref();
    let valid = path.len() > 1
        && path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains(['?', '#', ' '])
        && !taken.contains(&path.as_str());
    match valid {
        true => Ok(path.clone()),
        false => Err(check.error(
            Some(value.span()),
            key,
            format!(
                "{path:?} must be a path like \"/sse\" (no query, no trailing '/'), other than {}",
                taken.join(" and ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    fn server(text: &str) -> Result<crate::config::Config, String> {
        parse(Path::new("t.toml"), &format!("[server.a]\ncommand = \"x\"\n{text}")).map_err(|e| e.to_string())
    }

    #[test]
    fn sse_is_off_unless_listed_and_has_default_paths() {
        let plain = server("").unwrap();
        assert!(plain.servers[0].transports.streamable_http && plain.servers[0].transports.sse.is_none());
        let both = server("transport = [\"streamable-http\", \"sse\"]\n").unwrap();
        let paths = both.servers[0].transports.sse.clone().unwrap();
        assert_eq!((paths.stream.as_str(), paths.message.as_str()), ("/sse", "/message"));
        let only =
            server("transport = \"sse\"\n[server.a.sse]\npath = \"/events\"\nmessage_path = \"/rpc\"\n").unwrap();
        assert!(!only.servers[0].transports.streamable_http);
        assert_eq!(only.servers[0].transports.sse.clone().unwrap().stream, "/events");
    }

    #[test]
    fn bad_transport_settings_are_refused_with_their_key() {
        let e = server("transport = \"websocket\"\n").unwrap_err();
        assert!(e.contains("server.a.transport: unknown transport \"websocket\""), "{e}");
        let e = server("[server.a.sse]\npath = \"/events\"\n").unwrap_err();
        assert!(e.contains("server.a.sse: the legacy SSE endpoints are off"), "{e}");
        let e = server("transport = [\"sse\"]\n[server.a.sse]\npath = \"/mcp\"\n").unwrap_err();
        assert!(e.contains("server.a.sse.path: \"/mcp\" must be a path"), "{e}");
        let e = server("transport = [\"sse\"]\n[server.a.sse]\nmessage_path = \"/sse\"\n").unwrap_err();
        assert!(e.contains("server.a.sse.message_path: \"/sse\" is also the SSE stream path"), "{e}");
        let e = server("transport = []\n").unwrap_err();
        assert!(e.contains("server.a.transport: lists no transport"), "{e}");
    }
}
