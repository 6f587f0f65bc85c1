//! The route's public URL: what the plugin writes about itself (the PRM
//! document's `resource`, `resource_metadata` in `WWW-Authenticate`) and the
//! audience a token must carry.
//!
//! In order: `public_url` from the config; else the scheme and host a
//! trusted proxy reports (`Forwarded`, then `X-Forwarded-Proto` /
//! `X-Forwarded-Host`) when the client address is in `trusted_proxies`;
//! else `http://` and the `Host` header. Forwarding headers from anyone else
//! are ignored: a client must not choose the audience it is checked against.

use mcpd_plugin_sdk::Header;

use crate::cidr::{self, Cidr};

/// Where RFC 9728 puts the metadata of a resource: between host and path.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Stands in for a missing or unusable `Host` (HTTP/1.0 clients); such a
/// URL is wrong, so operators who see it set `public_url`.
const FALLBACK_HOST: &str = "localhost";

/// The headers [`Origins::resource`] may read when trusted proxies are
/// configured, and when they are not. Keep in step with `resource`: a
/// decision keyed by these (see [`Origins::reads`]) is reused for requests
/// that agree on them, so one missing here would hand a client the
/// verdict of another audience.
const FORWARDING_HEADERS: &[&str] = &["host", "forwarded", "x-forwarded-proto", "x-forwarded-host"];
const HOST_HEADER: &[&str] = &["host"];

/// What [`Origins::resource`] reads of a request besides its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// The client's address (whether it is a trusted proxy).
    pub client_address: bool,
    /// Header names (lower case).
    pub headers: &'static [&'static str],
}

/// A protected resource's URL, split so that the metadata URL can be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `https://mcp.example.com` (scheme and authority, no trailing slash).
    pub origin: String,
    /// `/mcp`, or empty for a resource at the root.
    pub path: String,
}

impl Resource {
    /// The canonical resource URI (`https://mcp.example.com/mcp`).
    pub fn uri(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }

    /// The protected resource metadata URL for it.
    pub fn metadata_url(&self) -> String {
        format!("{}{WELL_KNOWN}{}", self.origin, self.path)
    }
}

/// How the plugin finds its public URL (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    configured: Option<Resource>,
    trusted: Vec<Cidr>,
}

impl Origins {
    pub fn new(public_url: Option<Resource>, trusted: Vec<Cidr>) -> Origins {
        Origins { configured: public_url, trusted }
    }

    /// Whether the operator gave `public_url` (then nothing depends on headers).
    pub fn is_configured(&self) -> bool {
        self.configured.is_some()
    }

    /// What [`Origins::resource`] reads of a request besides its path:
    /// nothing with `public_url`; the `Host` header; and, with trusted
    /// proxies, the client address and the forwarding headers (an untrusted
    /// client's are ignored, but the address tells which it is).
    pub fn reads(&self) -> Inputs {
        match (&self.configured, self.trusted.is_empty()) {
            (Some(_), _) => Inputs { client_address: false, headers: &[] },
            (None, true) => Inputs { client_address: false, headers: HOST_HEADER },
            (None, false) => Inputs { client_address: true, headers: FORWARDING_HEADERS },
        }
    }

    /// The resource served at `path` for a request with these headers from `client`.
    pub fn resource(&self, headers: &[Header], client: &str, path: &str) -> Resource {
        if let Some(configured) = &self.configured {
            return configured.clone();
        }
        let mut scheme = None;
        let mut host = None;
        if cidr::any_contains(&self.trusted, client) {
            if let Some(forwarded) = header(headers, "forwarded") {
                (scheme, host) = from_forwarded(forwarded, &self.trusted);
            }
            scheme = scheme.or_else(|| header(headers, "x-forwarded-proto").and_then(|v| proto(last_item(v))));
            host = host.or_else(|| header(headers, "x-forwarded-host").and_then(|v| authority(last_item(v))));
        }
        let scheme = scheme.unwrap_or("http");
        let host = host.or_else(|| header(headers, "host").and_then(authority)).unwrap_or(FALLBACK_HOST);
        let path = path.trim_end_matches('/');
        Resource { origin: format!("{scheme}://{}", host.to_ascii_lowercase()), path: clean_path(path) }
    }
}

/// Parses `public_url` (`https://mcp.example.com/mcp`).
pub fn parse_public_url(url: &str) -> Result<Resource, String> {
    let (scheme, rest) = url.split_once("://").ok_or("must start with http:// or https://")?;
    let scheme = proto(scheme).ok_or("must start with http:// or https://")?;
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    let (host, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let host = authority(host).ok_or("has no valid host")?;
    let path = path.trim_end_matches('/');
    if clean_path(path) != path {
        return Err("has characters a URL path cannot have".into());
    }
    Ok(Resource { origin: format!("{scheme}://{}", host.to_ascii_lowercase()), path: path.to_string() })
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

/// The element of a `Forwarded` header that describes the client's own
/// request: walking from the right (the hop closest to mcpd), skip the
/// elements added by trusted proxies on behalf of other trusted proxies.
fn from_forwarded<'a>(value: &'a str, trusted: &[Cidr]) -> (Option<&'static str>, Option<&'a str>) {
    let elements = split_unquoted(value, ',');
    let mut chosen = None;
    for element in elements.iter().rev() {
        chosen = Some(*element);
        let from_trusted = pairs(element).any(|(k, v)| k.eq_ignore_ascii_case("for") && cidr::any_contains(trusted, v));
        if !from_trusted {
            break;
        }
    }
    let Some(element) = chosen else { return (None, None) };
    let mut scheme = None;
    let mut host = None;
    for (key, value) in pairs(element) {
        if key.eq_ignore_ascii_case("proto") {
            scheme = proto(value);
        } else if key.eq_ignore_ascii_case("host") {
            host = authority(value);
        }
    }
    (scheme, host)
}

/// `key=value` pairs of one `Forwarded` element, quotes removed.
fn pairs(element: &str) -> impl Iterator<Item = (&str, &str)> {
    split_unquoted(element, ';').into_iter().filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        Some((key.trim(), value))
    })
}

/// Splits at `separator` outside double quotes (`host="a,b"` stays whole).
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(text[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The last of a comma-separated list: the value the proxy next to mcpd set.
fn last_item(value: &str) -> &str {
    value.rsplit(',').next().unwrap_or(value).trim()
}

fn proto(value: &str) -> Option<&'static str> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("https") => Some("https"),
        v if v.eq_ignore_ascii_case("http") => Some("http"),
        _ => None,
    }
}

/// A host (and port) that can go into a URL and a quoted header value
/// unchanged; anything else (quotes, spaces, slashes, `@`) is refused.
fn authority(value: &str) -> Option<&str> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 255
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    ok.then_some(value)
}

/// The path with every byte a quoted header value or URL must not carry
/// percent-encoded.
fn clean_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'"' | b'\\' | b' ' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^' => out.push_str(&format!("%{b:02X}")),
            b if b.is_ascii_control() || !b.is_ascii() => out.push_str(&format!("%{b:02X}")),
            b => out.push(char::from(b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter().map(|(n, v)| Header { name: n.to_string(), value: v.to_string() }).collect()
    }

    fn proxies() -> Origins {
        Origins::new(None, vec![Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("127.0.0.1").unwrap()])
    }

    #[test]
    fn host_header_without_proxies() {
        let h = headers(&[("host", "MCP.example.com:8080"), ("x-forwarded-proto", "https")]);
        let r = Origins::default().resource(&h, "10.1.1.1", "/mcp");
        assert_eq!(r.uri(), "http://mcp.example.com:8080/mcp", "forwarding headers need a trusted proxy");
        assert_eq!(r.metadata_url(), "http://mcp.example.com:8080/.well-known/oauth-protected-resource/mcp");
    }

    #[test]
    fn trusted_proxy_headers_win() {
        let h = headers(&[
            ("host", "internal:3000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mcp.example.com"),
        ]);
        assert_eq!(proxies().resource(&h, "10.2.3.4", "/mcp").uri(), "https://mcp.example.com/mcp");
        // Only the protocol forwarded: the host comes from Host.
        let h = headers(&[("host", "mcp.example.com"), ("x-forwarded-proto", "https")]);
        assert_eq!(proxies().resource(&h, "127.0.0.1", "/a/mcp").uri(), "https://mcp.example.com/a/mcp");
        // The same headers from an untrusted client change nothing.
        assert_eq!(proxies().resource(&h, "192.0.2.1", "/a/mcp").uri(), "http://mcp.example.com/a/mcp");
    }

    #[test]
    fn forwarded_header_beats_x_forwarded() {
        let h = headers(&[
            ("host", "internal"),
            ("forwarded", r#"for=192.0.2.60;proto=https;host="mcp.example.com""#),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "other.example.com"),
        ]);
        assert_eq!(proxies().resource(&h, "10.0.0.1", "/mcp").uri(), "https://mcp.example.com/mcp");
    }

    #[test]
    fn forwarded_chain_stops_at_the_first_untrusted_hop() {
        // A client forged the first element; the trusted proxy appended the second.
        let h = headers(&[
            ("host", "internal"),
            ("forwarded", "host=evil.example;proto=http, for=192.0.2.9;host=mcp.example.com;proto=https"),
        ]);
        assert_eq!(proxies().resource(&h, "10.0.0.1", "/mcp").uri(), "https://mcp.example.com/mcp");
        // Two trusted proxies: the outer one's element describes the client's request.
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.9;host=mcp.example.com;proto=https, for=10.0.0.5;host=lb;proto=http",
        )]);
        assert_eq!(proxies().resource(&h, "10.0.0.1", "/mcp").uri(), "https://mcp.example.com/mcp");
    }

    #[test]
    fn unusable_values_are_ignored() {
        let h = headers(&[("host", "a\"b"), ("x-forwarded-proto", "gopher")]);
        assert_eq!(proxies().resource(&h, "10.0.0.1", "/mcp").uri(), "http://localhost/mcp");
        let r = Origins::default().resource(&headers(&[("host", "h")]), "x", "/m\"cp/");
        assert_eq!(r.uri(), "http://h/m%22cp");
    }

    /// Requests that agree on what `reads` names get the same resource,
    /// whatever else they carry: the promise a reused decision relies on.
    #[test]
    fn only_what_reads_names_changes_the_resource() {
        let candidates = [
            ("host", "a.example"),
            ("forwarded", "for=192.0.2.1;proto=https;host=f.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "x.example"),
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-port", "8443"),
            ("x-forwarded-prefix", "/p"),
            ("x-real-ip", "192.0.2.8"),
            ("authorization", "Bearer t"),
            ("user-agent", "ua"),
        ];
        let configured = Origins::new(parse_public_url("https://gw.example/mcp").ok(), vec![]);
        for origins in [Origins::default(), proxies(), configured] {
            let reads = origins.reads();
            for client in ["10.0.0.1", "192.0.2.1"] {
                let base = headers(&[("host", "base.example")]);
                let want = origins.resource(&base, client, "/mcp");
                for (name, value) in candidates.iter().filter(|(n, _)| !reads.headers.contains(n)) {
                    let mut changed = base.clone();
                    changed.retain(|h| h.name != *name);
                    changed.extend(headers(&[(name, value)]));
                    assert_eq!(origins.resource(&changed, client, "/mcp"), want, "{name} is not in {reads:?}");
                }
                if !reads.client_address {
                    assert_eq!(origins.resource(&base, "10.9.9.9", "/mcp"), want, "the client address matters");
                }
            }
        }
        assert_eq!(proxies().reads(), Inputs { client_address: true, headers: FORWARDING_HEADERS });
        assert_eq!(Origins::default().reads(), Inputs { client_address: false, headers: HOST_HEADER });
    }

    #[test]
    fn public_url_overrides_everything() {
        let configured = parse_public_url("https://MCP.example.com/api/mcp/").unwrap();
        let origins = Origins::new(Some(configured), vec![]);
        let r = origins.resource(&headers(&[("host", "internal")]), "10.0.0.1", "/mcp");
        assert_eq!(r.uri(), "https://mcp.example.com/api/mcp");
        assert_eq!(r.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp");
        assert_eq!(
            parse_public_url("https://example.com").unwrap().metadata_url(),
            format!("https://example.com{WELL_KNOWN}")
        );
        assert!(parse_public_url("example.com/mcp").is_err());
        assert!(parse_public_url("ftp://example.com").is_err());
        assert!(parse_public_url("https://example.com/mcp?x=1").is_err());
        assert!(parse_public_url("https:///mcp").is_err());
    }
}
