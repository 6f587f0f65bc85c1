//! A `command` that serves MCP over HTTP itself (`upstream_url`): mcpd runs
//! it, logs its output, restarts it with exponential backoff when it exits,
//! and stops it (SIGTERM, then SIGKILL) on shutdown. Traffic reaches it as
//! an ordinary HTTP instance; its health checks decide when it takes
//! sessions (so a restart is noticed and sessions on the old process end).

use crate::config::ServerSettings;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before exiting resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Keeps the server's process running until `stop`.
pub async fn supervise(settings: Arc<ServerSettings>, mut stop: watch::Receiver<bool>) {
    let mut backoff = FIRST_BACKOFF;
    while !*stop.borrow() {
        let started = Instant::now();
        let mut command = super::server_command(&settings, Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                let pid = child.id();
                tracing::info!(server = %settings.name, pid = ?pid, "started HTTP MCP server process");
                if let Some(out) = child.stdout.take() {
                    tokio::spawn(log_lines(out, Arc::clone(&settings), pid));
                }
                if let Some(err) = child.stderr.take() {
                    tokio::spawn(log_lines(err, Arc::clone(&settings), pid));
                }
                tokio::select! {
                    status = child.wait() => {
                        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        tracing::warn!(server = %settings.name, pid = ?pid, "HTTP MCP server process exited ({status})");
                    }
                    _ = crate::shutdown::requested(&mut stop) => {
                        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                            // SAFETY: kill(2) on our own child, not yet reaped.
                            unsafe { libc::kill(pid, libc::SIGTERM) };
                        }
                        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                            let _ = child.start_kill();
                        }
                        tracing::info!(server = %settings.name, pid = ?pid, "HTTP MCP server process stopped");
                        return;
                    }
                }
                if started.elapsed() > STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
            }
            Err(error) => {
                tracing::warn!(server = %settings.name, "cannot start `{}`: {error}", settings.command);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = crate::shutdown::requested(&mut stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn log_lines(stream: impl tokio::io::AsyncRead + Unpin, settings: Arc<ServerSettings>, pid: Option<u32>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "mcpd::server_stderr", server = %settings.name, pid = ?pid, "{line}");
    }
}
