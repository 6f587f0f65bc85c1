//! Active health checks of HTTP instances, every `health_check_interval`.
//!
//! With `health_check = "/path"`: a GET of that path on the instance's
//! origin must answer 2xx. Otherwise an MCP `ping` over a probe session
//! that mcpd opens once per instance (and opens again when the instance
//! forgets it). A failed check ejects the instance from balancing; a passed
//! one brings it back. SSE-transport instances are checked by opening their
//! event stream and waiting for the `endpoint` event.

use super::super::{Event, UpstreamError};
use super::HttpUpstream;
use super::call::Call;
use super::instance::Instance;
use crate::config::UpstreamTransport;
use crate::mcp::SESSION_HEADER;
use crate::upstream::sse_upstream;
use bytes::Bytes;
use http::{HeaderValue, Method, Uri};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks every instance of `upstream` until `stop`.
pub fn spawn_checks(upstream: &Arc<HttpUpstream>, stop: &watch::Receiver<bool>) {
    for instance in &upstream.instances {
        tokio::spawn(watch_instance(Arc::clone(upstream), Arc::clone(instance), stop.clone()));
    }
}

async fn watch_instance(upstream: Arc<HttpUpstream>, instance: Arc<Instance>, mut stop: watch::Receiver<bool>) {
    let mut probe: Option<HeaderValue> = None;
    loop {
        let result = match tokio::time::timeout(CHECK_TIMEOUT, check(&upstream, &instance, &mut probe)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer to the health check within {CHECK_TIMEOUT:?}")),
        };
        match result {
            Ok(()) => instance.restore(),
            Err(reason) => {
                probe = None;
                instance.eject(&format!("health check failed: {reason}"), true);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(upstream.settings.health_interval) => {}
            _ = crate::shutdown::requested(&mut stop) => break,
        }
    }
    if let Some(id) = probe {
        let request = upstream.request(Method::DELETE, instance.url.clone(), Some(&id), None, Bytes::new());
        let _ = tokio::time::timeout(CHECK_TIMEOUT, upstream.send(request)).await;
    }
}

async fn check(
    upstream: &Arc<HttpUpstream>,
    instance: &Arc<Instance>,
    probe: &mut Option<HeaderValue>,
) -> Result<(), String> {
    if let Some(path) = &upstream.settings.health_check {
        return check_path(upstream, instance, path).await;
    }
    if instance.is_legacy() {
        return sse_upstream::check(upstream, instance).await;
    }
    match ping(upstream, instance, probe).await {
        Ok(()) => Ok(()),
        // `auto`: an instance that refuses Streamable HTTP may speak SSE.
        Err(UpstreamError::Status { status: 400 | 404 | 405, .. })
            if upstream.settings.transport == UpstreamTransport::Auto =>
        {
            sse_upstream::check(upstream, instance).await?;
            tracing::info!(instance = %instance.label, "instance speaks the 2024-11-05 SSE transport");
            instance.set_legacy(true);
            Ok(())
        }
        Err(error) => Err(error.to_string()),
    }
}

/// An MCP ping over the probe session (opened first if needed, and again
/// if the instance forgot it).
async fn ping(
    upstream: &Arc<HttpUpstream>,
    instance: &Arc<Instance>,
    probe: &mut Option<HeaderValue>,
) -> Result<(), UpstreamError> {
    const PING: &[u8] = br#"{"jsonrpc":"2.0","id":"mcpd-health","method":"ping"}"#;
    if probe.is_none() {
        *probe = Some(open_probe(upstream, instance).await?);
    }
    let session = probe.clone().filter(|id| !id.is_empty());
    match exchange(upstream, instance, session.as_ref(), Bytes::from_static(PING)).await {
        Err(UpstreamError::SessionLost { .. }) => {
            let id = open_probe(upstream, instance).await?;
            let session = Some(&id).filter(|id| !id.is_empty()).cloned();
            *probe = Some(id);
            exchange(upstream, instance, session.as_ref(), Bytes::from_static(PING)).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

async fn check_path(upstream: &HttpUpstream, instance: &Instance, path: &str) -> Result<(), String> {
    let mut parts = instance.url.clone().into_parts();
    parts.path_and_query = Some(path.parse().map_err(|e| format!("{path}: {e}"))?);
    let uri = Uri::from_parts(parts).map_err(|e| format!("{path}: {e}"))?;
    let request = upstream.request(Method::GET, uri.clone(), None, None, Bytes::new());
    let response = upstream.send(request).await.map_err(|e| super::client::describe(&e))?;
    match response.status().is_success() {
        true => Ok(()),
        false => Err(format!("GET {uri} answered {}", response.status())),
    }
}

/// Opens mcpd's own session on the instance; its id, or an empty value for
/// an instance that issues none.
async fn open_probe(upstream: &Arc<HttpUpstream>, instance: &Arc<Instance>) -> Result<HeaderValue, UpstreamError> {
    let params = serde_json::json!({
        "protocolVersion": crate::mcp::version::LATEST,
        "capabilities": {},
        "clientInfo": {"name": "mcpd-health-check", "version": env!("CARGO_PKG_VERSION")}
    });
    let body = format!(r#"{{"jsonrpc":"2.0","id":"mcpd-health","method":"initialize","params":{params}}}"#);
    let (id, _) = exchange(upstream, instance, None, Bytes::from(body)).await?;
    let id = id.unwrap_or(HeaderValue::from_static(""));
    let initialized = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let session = Some(&id).filter(|id| !id.is_empty());
    let request = upstream.post(instance.url.clone(), session, None, initialized);
    upstream.send(request).await.map_err(|e| UpstreamError::Transport {
        instance: instance.label.clone(),
        reason: super::client::describe(&e),
    })?;
    Ok(id)
}

/// Sends one request and waits for its answer; returns the session id the
/// instance answered with, if any.
async fn exchange(
    upstream: &Arc<HttpUpstream>,
    instance: &Arc<Instance>,
    session: Option<&HeaderValue>,
    body: Bytes,
) -> Result<(Option<HeaderValue>, Bytes), UpstreamError> {
    let request = upstream.post(instance.url.clone(), session, None, body);
    let mut call = Call::new(instance, upstream.send(request), true, session.is_some(), None);
    let parts = call.start().await?;
    let id = parts.headers.get(SESSION_HEADER).cloned();
    loop {
        match call.next().await {
            Event::Message(_) => continue,
            Event::Response { bytes, is_error: false } => return Ok((id, bytes)),
            Event::Response { bytes, is_error: true } => {
                let reason = format!("answered with an error: {}", String::from_utf8_lossy(&bytes));
                return Err(UpstreamError::Protocol { instance: instance.label.clone(), reason });
            }
            Event::Failed(reason) => return Err(UpstreamError::Protocol { instance: instance.label.clone(), reason }),
            Event::Cancelled => return Err(UpstreamError::Cancelled),
            Event::Rejected(error) => return Err(error),
        }
    }
}
