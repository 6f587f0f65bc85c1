//! The life of a request a stdio server sends to a client (sampling,
//! elicitation, roots, ping) while mcpd relays it: what mcpd remembers of
//! it, when it stops waiting for the client's answer, and how the
//! server's own withdrawal reaches the client.
//!
//! A relayed request waits in its process's table (see [`super::stdio`])
//! until the client answers, and no longer than:
//!
//! - its client goes away: the client request whose stream carried it
//!   ends unanswered (the client closed the stream or the connection, or
//!   cancelled that request, or it timed out), or, on a shared replica,
//!   the client's session ends;
//! - `http.request_timeout` (the bound mcpd puts on a client's requests,
//!   reused for the server's: 300 s unless configured).
//!
//! Then mcpd answers the server itself with JSON-RPC error -32603 (the
//! server stops waiting for a client that will not answer; MCP defines no
//! more specific code), counts it in
//! `mcpd_withdrawn_server_requests_total{server,reason}` and logs it. On a
//! timeout the client, which may still be there, is also sent
//! `notifications/cancelled` for the request, under the id it knows.
//!
//! The server may withdraw a request itself (`notifications/cancelled`
//! naming its own id): the client is told under the id mcpd gave it, on
//! the stream that carried the request (on a shared process that client
//! only), and the request leaves the table.

use super::metrics;
use super::routing::Owner;
use crate::mcp::errors::{INTERNAL_ERROR, error_body};
use crate::mcp::jsonrpc;
use serde_json::value::RawValue;
use std::time::Duration;
use tokio::task::AbortHandle;

/// A request the server sent to a client, waiting for the client's answer.
pub(super) struct ServerRequest {
    /// The server's own id for it.
    pub original: Box<RawValue>,
    /// Who may answer: the client it was relayed to on a shared process;
    /// `None` on a process of one session (the session is the check).
    pub owner: Option<Owner>,
    /// The client request (its key among the process's requests in
    /// flight) whose stream carried it; `None` when it went to a
    /// session's GET stream.
    pub carrier: Option<u64>,
    /// The timer that withdraws it at the deadline.
    pub timer: Option<AbortHandle>,
}

impl ServerRequest {
    /// Whether the server's id `id` (parsed JSON) names this request.
    pub fn is_named_by(&self, id: &serde_json::Value) -> bool {
        serde_json::from_str::<serde_json::Value>(self.original.get()).is_ok_and(|original| original == *id)
    }
}

impl Drop for ServerRequest {
    /// Answered, withdrawn or its process gone: its timer has nothing left to do.
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

/// Why mcpd stopped waiting for a client's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Withdrawal {
    /// The client request that carried it ended unanswered.
    ClientGone,
    /// The client's session on a shared replica ended.
    SessionEnded,
    /// No answer within `http.request_timeout`.
    Timeout(Duration),
}

impl Withdrawal {
    fn label(self) -> &'static str {
        match self {
            Withdrawal::ClientGone => "client_gone",
            Withdrawal::SessionEnded => "session_ended",
            Withdrawal::Timeout(_) => "timeout",
        }
    }

    fn text(self) -> String {
        match self {
            Withdrawal::ClientGone => {
                "the client went away before answering (the request this was asked during ended unanswered)".into()
            }
            Withdrawal::SessionEnded => "the client's session ended before it answered".into(),
            Withdrawal::Timeout(limit) => format!("the client did not answer within {limit:?} (http.request_timeout)"),
        }
    }

    /// The answer the server gets in the client's place (JSON-RPC error
    /// -32603 with the reason), counted and logged.
    pub fn answer(self, server: &str, original: &RawValue) -> Vec<u8> {
        let text = self.text();
        metrics::withdrawn(server, self.label()).inc();
        tracing::info!(server, id = original.get(), reason = self.label(), "server request withdrawn: {text}");
        error_body(Some(original), INTERNAL_ERROR, &text)
    }
}

/// `notifications/cancelled` for the client: `params` (the server's, or
/// none) with `requestId` set to the gateway id (JSON) the client knows
/// the request by, and `reason` when mcpd gives one.
pub(super) fn cancellation(params: Option<&RawValue>, gateway_id: &str, reason: Option<&str>) -> Option<Vec<u8>> {
    let mut params = match params {
        Some(params) => serde_json::from_str::<serde_json::Value>(params.get()).ok()?,
        None => serde_json::json!({}),
    };
    let object = params.as_object_mut()?;
    object.insert("requestId".into(), serde_json::from_str(gateway_id).ok()?);
    if let Some(reason) = reason {
        object.insert("reason".into(), reason.into());
    }
    Some(jsonrpc::notification("notifications/cancelled", Some(&params.to_string())))
}

/// The id (parsed JSON) a server's `notifications/cancelled` names.
pub(super) fn cancelled_id(params: Option<&RawValue>) -> Option<serde_json::Value> {
    let params = serde_json::from_str::<serde_json::Value>(params?.get()).ok()?;
    params.get("requestId").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("JSON")
    }

    #[test]
    fn a_cancellation_is_renamed_to_the_id_the_client_knows() {
        let params = raw(r#"{"requestId":"srv-1","reason":"no longer needed","_meta":{"k":1}}"#);
        let bytes = cancellation(Some(&params), r#""mcpd-3-00ff""#, None).expect("renamed");
        let message: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(message["method"], "notifications/cancelled");
        assert_eq!(message["params"]["requestId"], "mcpd-3-00ff");
        assert_eq!(message["params"]["reason"], "no longer needed");
        assert_eq!(message["params"]["_meta"]["k"], 1, "the rest goes along");
        let ours = cancellation(None, r#""mcpd-3-00ff""#, Some("timed out")).expect("made");
        let ours: serde_json::Value = serde_json::from_slice(&ours).expect("JSON");
        assert_eq!(
            (&ours["params"]["requestId"], &ours["params"]["reason"]),
            (&"mcpd-3-00ff".into(), &"timed out".into())
        );
        assert_eq!(cancellation(Some(&raw("[1]")), r#""x""#, None), None, "params that are not an object");
    }

    #[test]
    fn a_request_is_named_by_its_ids_value_not_its_spelling() {
        let asked = ServerRequest { original: raw(r#""srv-\u0031""#), owner: None, carrier: None, timer: None };
        assert!(asked.is_named_by(&"srv-1".into()));
        assert!(!asked.is_named_by(&1.into()));
        assert_eq!(cancelled_id(Some(&raw(r#"{"requestId":7}"#))), Some(7.into()));
        assert_eq!(cancelled_id(Some(&raw("{}"))), None);
    }

    #[test]
    fn the_server_gets_an_internal_error_with_the_reason() {
        let body = Withdrawal::Timeout(Duration::from_secs(2)).answer("fx", &raw(r#""srv-1""#));
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(answer["id"], "srv-1");
        assert_eq!(answer["error"]["code"], -32603);
        assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("request_timeout")), "{answer}");
    }
}
