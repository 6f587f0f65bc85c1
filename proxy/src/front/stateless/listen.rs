//! `subscriptions/listen` through the bridge: one long-lived SSE answer
//! that opens with `notifications/subscriptions/acknowledged` (the filter
//! mcpd honours) and then carries the change notifications the client
//! opted into (`toolsListChanged`, `promptsListChanged`,
//! `resourcesListChanged`) from every stdio process that serves stateless
//! requests, or from the HTTP session mcpd keeps (its GET stream), each tagged with the
//! subscription's id (the request's JSON-RPC id). Keepalive comments fill
//! quiet periods. The client ends it by closing the stream; when the
//! processes it listens to are gone, mcpd ends it gracefully (the request's
//! result) so the client listens again.
//!
//! Not honoured (left out of the acknowledgement): `resourceSubscriptions`.

use super::super::plugin_hooks::Caller;
use super::super::respond;
use super::super::streamable_http::{Target as HookTarget, server_message};
use crate::mcp::era::{self, Envelope};
use crate::mcp::jsonrpc::{self, Message};
use crate::route::Route;
use crate::upstream::bridge::Target;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

/// Filter flags mcpd honours, with the notification each one lets through.
const KINDS: &[(&str, &str)] = &[
    ("toolsListChanged", "notifications/tools/list_changed"),
    ("promptsListChanged", "notifications/prompts/list_changed"),
    ("resourcesListChanged", "notifications/resources/list_changed"),
];

pub(super) async fn listen(
    route: &Route,
    http: &mut ServerSession,
    message: &Message<'_>,
    envelope: &Envelope,
    caller: &Caller,
    target: &Target,
) -> pingora::Result<()> {
    let id: Value = message.id.and_then(|i| serde_json::from_str(i.get()).ok()).unwrap_or(Value::Null);
    let asked = envelope.params.get("notifications").cloned().unwrap_or_else(|| json!({}));
    let honoured: Vec<&(&str, &str)> = KINDS.iter().filter(|(flag, _)| asked[*flag] == json!(true)).collect();
    let receivers: Vec<broadcast::Receiver<Bytes>> = match target {
        Target::Process(..) => route.bridge.processes(route).iter().filter_map(|p| p.notices()).collect(),
        Target::Session(kept) => vec![kept.notices.subscribe()],
        Target::PassThrough => Vec::new(),
    };
    let (sender, mut notices) = mpsc::channel::<Bytes>(64);
    let mut feeding = 0;
    for receiver in receivers {
        tokio::spawn(feed(receiver, sender.clone()));
        feeding += 1;
    }
    drop(sender);
    if feeding == 0 {
        return super::super::streamable_http::not_ready(route, http, message.id).await;
    }

    respond::sse_start(http, &[]).await?;
    let filter: serde_json::Map<String, Value> =
        honoured.iter().map(|(flag, _)| (flag.to_string(), json!(true))).collect();
    let ack = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {era::SUBSCRIPTION_KEY: id}, "notifications": filter},
    });
    respond::sse_event(http, ack.to_string().as_bytes()).await?;
    tracing::debug!(target: "mcpd::access", server = %route.name, processes = feeding, "stateless client listening");

    let hooks = HookTarget { caller, session: None, outbox: None, request: Some(message) };
    let keepalive = route.settings.http.sse_keepalive;
    loop {
        tokio::select! {
            notice = notices.recv() => {
                let Some(notice) = notice else { break };
                let Some(tagged) = tag(&notice, &honoured, &id) else { continue };
                if let Some(bytes) = server_message(route, &hooks, Bytes::from(tagged)).await {
                    respond::sse_event(http, &bytes).await?;
                }
            }
            _ = tokio::time::sleep(keepalive) => respond::sse_keepalive(http).await?,
            _ = http.read_body_or_idle(true) => {
                tracing::debug!(target: "mcpd::access", server = %route.name, "stateless listener left");
                return Ok(());
            }
        }
    }
    // What it listened to is gone: end gracefully, so it listens again.
    let result = json!({"resultType": "complete", "_meta": {era::SUBSCRIPTION_KEY: id}});
    let result = serde_json::value::to_raw_value(&result).expect("a Value serializes");
    respond::sse_event(http, &jsonrpc::response(message.id_text(), Some(&result), None)).await?;
    respond::sse_end(http).await
}

/// Copies one process's notices into the listener's channel until either
/// ends (a listener that left stops counting at once: a process listened
/// to is not idle).
async fn feed(mut receiver: broadcast::Receiver<Bytes>, sender: mpsc::Sender<Bytes>) {
    loop {
        let received = tokio::select! {
            received = receiver.recv() => received,
            _ = sender.closed() => return,
        };
        match received {
            Ok(notice) => {
                if sender.send(notice).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "a stateless listener fell behind; change notifications dropped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The notice with the subscription's id in `_meta`, if the filter lets it through.
fn tag(notice: &[u8], honoured: &[&(&str, &str)], id: &Value) -> Option<String> {
    let mut notice: Value = serde_json::from_slice(notice).ok()?;
    let method = notice.get("method")?.as_str()?;
    if !honoured.iter().any(|(_, m)| *m == method) {
        return None;
    }
    if !notice.get("params").is_some_and(Value::is_object) {
        notice["params"] = json!({});
    }
    let params = notice["params"].as_object_mut()?;
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    meta.as_object_mut()?.insert(era::SUBSCRIPTION_KEY.into(), id.clone());
    Some(notice.to_string())
}
