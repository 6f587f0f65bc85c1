//! The server-facing side: stdio MCP server processes, one per session or
//! shared in a warm pool.

pub mod pool;
pub mod stdio;

use std::time::Duration;

/// How long mcpd waits for a server it started to answer `initialize`.
pub const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(30);
