//! Requests to an HTTP instance outside any session: stateless-era
//! (2026-07-28) requests passed through to an instance that speaks that
//! era itself, and mcpd's own `server/discover` probe that finds out
//! whether it does.

use super::super::{Call as AnyCall, Event, UpstreamError};
use super::HttpUpstream;
use super::call::Call;
use crate::mcp::era;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

/// How long mcpd waits for an instance to answer its `server/discover` probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpUpstream {
    /// POSTs `body` with the client's MCP headers (and `forward_headers`)
    /// to an instance the balancer picks, no session attached. Dropping
    /// the call closes the connection: the stateless era's cancellation.
    pub fn post_stateless(self: &Arc<Self>, body: Bytes, client: &HeaderMap) -> Result<AnyCall, UpstreamError> {
        let index = self.pick(None, &[]).or_else(|| (!self.instances.is_empty()).then_some(0));
        let Some(instance) = index.map(|i| &self.instances[i]) else {
            return Err(UpstreamError::Unreachable {
                instance: format!("of server {:?}", &*self.server),
                reason: "no instance is configured".into(),
            });
        };
        let request = self.post(instance.url.clone(), None, Some(client), body);
        Ok(AnyCall::Http(Call::new(instance, self.send(request), true, false, None)))
    }

    /// Asks an instance `server/discover` in the stateless era: its
    /// `DiscoverResult` when it serves that era, `Ok(None)` when it answers
    /// but does not (a session-era server), an error when none answers.
    pub async fn probe_stateless(self: &Arc<Self>) -> Result<Option<serde_json::Value>, UpstreamError> {
        let version = era::MODERN[0];
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": "mcpd-discover", "method": "server/discover",
            "params": {"_meta": {
                era::VERSION_KEY: version,
                era::CAPABILITIES_KEY: {},
                "io.modelcontextprotocol/clientInfo": {"name": "mcpd", "version": env!("CARGO_PKG_VERSION")},
            }}
        });
        let mut headers = HeaderMap::new();
        headers.insert(crate::mcp::PROTOCOL_HEADER, HeaderValue::from_static(version));
        headers.insert("mcp-method", HeaderValue::from_static("server/discover"));
        let mut call = self.post_stateless(Bytes::from(body.to_string()), &headers)?;
        let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
            loop {
                match call.next().await {
                    Event::Message(_) => continue,
                    Event::Response { bytes, .. } => return Ok(Some(bytes)),
                    Event::Failed(reason) => return Err(UpstreamError::Exited(reason)),
                    Event::Cancelled => return Err(UpstreamError::Cancelled),
                    Event::Rejected(error @ (UpstreamError::Unreachable { .. } | UpstreamError::Transport { .. })) => {
                        return Err(error);
                    }
                    // An HTTP error status: whatever it says, not a modern answer.
                    Event::Rejected(_) => return Ok(None),
                }
            }
        })
        .await
        .map_err(|_| UpstreamError::Timeout(PROBE_TIMEOUT))??;
        let result = answer
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|answer| answer.get("result").cloned());
        let modern = result
            .as_ref()
            .and_then(|r| r.get("supportedVersions"))
            .and_then(|v| v.as_array())
            .is_some_and(|versions| versions.iter().any(|v| v.as_str().is_some_and(|v| era::MODERN.contains(&v))));
        Ok(result.filter(|_| modern))
    }
}
