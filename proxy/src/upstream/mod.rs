//! The server-facing side: stdio MCP server processes (one per session,
//! shared replicas, or a warm pool) and HTTP instances (Streamable HTTP or
//! the 2024-11-05 SSE transport), load balanced with session affinity.
//!
//! [`Call`] and [`Event`] are what the front relays; [`session::SessionUpstream`]
//! is what a client session is bound to; [`balance`] picks where new sessions go.

pub mod balance;
pub mod bridge;
mod call;
mod error;
pub mod http;
mod metrics;
pub mod pool;
pub mod routing;
mod server_requests;
pub mod session;
pub mod sse_upstream;
pub mod stdio;
pub mod supervised;

pub use call::{Call, Event};
pub use error::{UpstreamError, relayed_headers};

use std::process::Stdio;
use std::time::Duration;

/// How long mcpd waits for a server it started to answer `initialize`.
pub const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's `command` with its args, env and cwd; stdout and stderr
/// piped; killed with its handle, and sent SIGTERM by the kernel if mcpd
/// dies without stopping it.
pub fn server_command(settings: &crate::config::ServerSettings, stdin: Stdio) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&settings.command);
    command.args(&settings.args).envs(&settings.env).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.kill_on_drop(true);
    if let Some(cwd) = &settings.cwd {
        command.current_dir(cwd);
    }
    // SAFETY: prctl is async-signal-safe; it runs in the child before exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command
}
