//! The server-facing side: stdio MCP server processes (one per session,
//! shared replicas, or a warm pool) and HTTP instances (Streamable HTTP or
//! the 2024-11-05 SSE transport), load balanced with session affinity.
//!
//! [`Call`] and [`Event`] are what the front relays; [`session::SessionUpstream`]
//! is what a client session is bound to; [`balance`] picks where new sessions go.

pub mod balance;
mod call;
mod error;
pub mod http;
mod metrics;
pub mod pool;
pub mod session;
pub mod sse_upstream;
pub mod stdio;
pub mod supervised;

pub use call::{Call, Event};
pub use error::{UpstreamError, relayed_headers};

use std::time::Duration;

/// How long mcpd waits for a server it started to answer `initialize`.
pub const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(30);
