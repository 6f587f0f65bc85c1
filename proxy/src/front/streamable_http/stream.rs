//! GET (the session's stream of server messages no request waits for) and
//! DELETE (the client ends its session).
//!
//! The stream carries the session's outbox (what a stdio process or an SSE
//! instance said between requests) and, for a Streamable HTTP instance, the
//! instance's own GET stream, opened on the instance that owns the session;
//! an instance that refuses it (405, 409) is answered as it answered.
//! Its events carry ids; `Last-Event-ID` resumes it, or a POST answer's
//! stream the client lost ([`super::resume`]).

use super::super::plugin_hooks::Caller;
use super::super::respond;
use super::relay::{Target, server_message, upstream_error};
use super::{accepts, find_session, header, resume};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::route::Route;
use crate::session::replay::{STANDALONE, parse_event_id};
use crate::upstream::Event;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub(super) async fn get(
    gateway: &Arc<Gateway>,
    route: &Route,
    http: &mut ServerSession,
    caller: &Caller,
) -> pingora::Result<()> {
    if !accepts(header(http, "accept").unwrap_or(""), "text/event-stream") {
        let message = "Accept must list text/event-stream for the GET stream";
        return respond::rpc_error(http, 406, None, INVALID_REQUEST, message, &[]).await;
    }
    if route.sessionless() {
        let message = "this server runs without sessions: there is no GET stream";
        return respond::rpc_error(http, 405, None, INVALID_REQUEST, message, &[("allow", "POST")]).await;
    }
    let Some(session) = find_session(gateway, route, http, None).await? else {
        return Ok(());
    };
    let capacity = route.settings.http.sse_replay_buffer;
    let streams = &session.outbox.streams;
    // `Last-Event-ID` names the stream to resume (a POST answer's, or this one).
    let last_event_id = header(http, "last-event-id").filter(|_| capacity > 0).map(str::to_owned);
    let resume_from = match last_event_id.as_deref() {
        None => None,
        Some(last) => {
            let found = parse_event_id(last).and_then(|(stream, cursor)| match stream {
                STANDALONE => Some((streams.standalone(capacity), cursor)),
                stream => Some((streams.find(stream)?, cursor)),
            });
            match found {
                Some(found) => Some(found),
                None => return resume::unknown(http, last).await,
            }
        }
    };
    if let Some((replay, cursor)) = &resume_from
        && replay.stream != STANDALONE
    {
        let _busy = session.enter(&gateway.sessions);
        return resume::resume_post_stream(http, route, replay, *cursor).await;
    }
    let Some(mut messages) = session.outbox.attach() else {
        let message = "a GET stream is already open for this session";
        return respond::rpc_error(http, 409, None, INVALID_REQUEST, message, &[]).await;
    };
    let _busy = session.enter(&gateway.sessions);
    let replay = (capacity > 0).then(|| streams.standalone(capacity));
    let streamed = async {
        let mut upstream = session.upstream.stream(&http.req_header().headers);
        if let Some(stream) = &mut upstream
            && let Err(error) = stream.ready().await
        {
            return upstream_error(gateway, route, http, Some(&session), None, error).await;
        }
        respond::sse_start(http, &[]).await?;
        if let Some(replay) = &replay {
            match &resume_from {
                Some((_, cursor)) => drop(resume::write_missed(http, replay, *cursor).await?),
                None => resume::prime(http, route, replay).await?,
            }
        }
        let keepalive = route.settings.http.sse_keepalive;
        let target = Target { caller, session: Some(&session.id), outbox: None, request: None };
        loop {
            let from_upstream = async {
                match &mut upstream {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = messages.recv() => match message {
                    Some(message) => {
                        if let Some(message) = server_message(route, &target, message).await {
                            resume::write(http, replay.as_deref(), &message).await?;
                        }
                    }
                    None => break, // the session ended
                },
                event = from_upstream => match event {
                    Event::Message(message) => {
                        if let Some(message) = server_message(route, &target, message).await {
                            resume::write(http, replay.as_deref(), &message).await?;
                        }
                    }
                    // The instance closed its stream: so does mcpd (the client reconnects).
                    _ => break,
                },
                _ = tokio::time::sleep(keepalive) => respond::sse_keepalive(http).await?,
                _ = http.read_body_or_idle(true) => return Ok(()), // the client left
            }
            if gateway.is_draining() {
                break;
            }
        }
        http.set_keepalive(None);
        if let Some(replay) = &replay {
            // mcpd closes the connection, not the session's stream: say
            // when to come back (2025-11-25), from where the client is.
            resume::prime(http, route, replay).await?;
        }
        respond::sse_end(http).await
    }
    .await;
    // What the stream took but never wrote waits for the next one.
    session.outbox.detach(messages);
    streamed
}

pub(super) async fn delete(gateway: &Arc<Gateway>, route: &Route, http: &mut ServerSession) -> pingora::Result<()> {
    if route.sessionless() {
        let message = "this server runs without sessions: there is nothing to delete";
        return respond::rpc_error(http, 405, None, INVALID_REQUEST, message, &[("allow", "POST")]).await;
    }
    let Some(session) = find_session(gateway, route, http, None).await? else {
        return Ok(());
    };
    gateway.sessions.remove(&session.id);
    tracing::info!(server = %route.name, session = %session.id, "session deleted by the client");
    respond::empty(http, 200, &[]).await
}
