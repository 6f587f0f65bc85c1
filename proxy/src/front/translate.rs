//! POST on a route whose server is a translator plugin: each request goes to
//! the plugin's `handle`, its result (after the response hooks) back to the
//! client as one JSON body.
//!
//! Translators keep no per-client state, so these routes run without
//! sessions, like a pooled stdio route: `initialize` is answered by the
//! translator each time and no `Mcp-Session-Id` is issued. Notifications are
//! acknowledged and dropped; a translator sends no requests to answer.

use super::plugin_hooks::{self, Caller};
use super::respond;
use super::streamable_http::{Outcome, Target, check_protocol_version, server_answer};
use crate::mcp::errors::*;
use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::plugin::bindings::{Direction, MessageParts};
use crate::plugin::translator::{TranslateError, Translator};
use crate::route::Route;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;

pub async fn post(
    route: &Route,
    translator: &Translator,
    http: &mut ServerSession,
    message: &Message<'_>,
    caller: &Caller,
) -> pingora::Result<()> {
    match message.kind() {
        Kind::Notification => return respond::empty(http, 202, &[]).await,
        Kind::Response => {
            let text = "this server sends no requests, so there is nothing to answer";
            return respond::rpc_error(http, 400, None, INVALID_REQUEST, text, &[]).await;
        }
        Kind::Request => {}
    }
    if message.method() != "initialize" && !check_protocol_version(http, message.id).await? {
        return Ok(());
    }
    let bytes = answer(route, translator, message, caller).await;
    respond::json(http, 200, &[], bytes).await
}

/// The translator's answer to request `message`, after the response hooks.
pub async fn answer(route: &Route, translator: &Translator, message: &Message<'_>, caller: &Caller) -> Bytes {
    let id = message.id;
    let parts = (Direction::ClientToServer, MessageParts::all());
    let view = plugin_hooks::view(route, caller, None, parts, message, None).to_message();
    let limit = route.settings.http.request_timeout;
    let (bytes, outcome) = match tokio::time::timeout(limit, translator.handle(&view)).await {
        Ok(Ok(result)) => match RawValue::from_string(result) {
            Ok(result) => (jsonrpc::response(message.id_text(), Some(&result), None), Outcome::Answered),
            Err(_) => {
                let text = format!("translator {} answered with a result that is not JSON", translator.name);
                (error_body(id, INTERNAL_ERROR, &text), Outcome::Failed)
            }
        },
        Ok(Err(TranslateError::Refused(error))) => (plugin_hooks::error_response(id, &error), Outcome::Refused),
        Ok(Err(TranslateError::Failed(error))) => {
            tracing::warn!(server = %route.name, "translator call failed: {error}");
            (error_body(id, INTERNAL_ERROR, &error.to_string()), Outcome::Failed)
        }
        Err(_) => {
            let text = format!("request timed out after {limit:?} (http.request_timeout)");
            (error_body(id, REQUEST_TIMEOUT, &text), Outcome::Failed)
        }
    };
    let target = Target { caller, session: None, outbox: None, request: Some(message) };
    server_answer(route, &target, id, Bytes::from(bytes), outcome).await.0
}
