//! Protocol revisions of the Streamable HTTP session era that mcpd serves.

/// Revisions mcpd accepts in `MCP-Protocol-Version`, newest first.
pub const SUPPORTED: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// What a client without the header is assumed to speak (spec, 2025-06-18).
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";

/// The revision mcpd itself asks for when it initializes a pooled server.
pub const LATEST: &str = SUPPORTED[0];

pub fn is_supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// The revision to answer a client that asked for `requested`: the same one
/// when mcpd speaks it, else the newest (the client then decides).
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested.and_then(|r| SUPPORTED.iter().find(|v| **v == r)).copied().unwrap_or(LATEST)
}
