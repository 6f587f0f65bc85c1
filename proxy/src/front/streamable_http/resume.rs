//! Resumable SSE streams on the Streamable HTTP side (2025-11-25): event
//! ids on a session's streams, the priming event, and `GET` with
//! `Last-Event-ID` replaying what a client missed.
//!
//! Every event written on a session's stream (a POST answer that became a
//! stream, or the GET stream) is recorded in that stream's bounded buffer
//! ([`crate::session::replay`]) and written with its id. A client whose
//! connection drops mid-answer does not cancel the request: the relay
//! carries on recording until the answer (or `request_timeout`), and a
//! `GET` with `Last-Event-ID` gets the events after that id, then the rest
//! as it comes. Sessionless routes (a pool, translators) have no GET to
//! resume on, so their streams carry no ids and a dropped client cancels.

use super::super::respond;
use super::header;
use crate::mcp::PROTOCOL_HEADER;
use crate::mcp::errors::*;
use crate::route::Route;
use crate::session::outbox::Outbox;
use crate::session::replay::{Replay, event_id};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

/// The first revision whose clients expect a priming event (empty data);
/// older clients may choke on it, so they get ids only.
const PRIMING_SINCE: &str = "2025-11-25";

/// Makes a POST answer that is becoming a stream resumable, when the
/// client has a session and `http.sse_replay_buffer` is not 0: registers
/// the stream and writes its priming event.
pub(super) async fn open_post_stream(
    http: &mut ServerSession,
    route: &Route,
    outbox: Option<&Outbox>,
) -> pingora::Result<Option<Arc<Replay>>> {
    let capacity = route.settings.http.sse_replay_buffer;
    let Some(outbox) = outbox.filter(|_| capacity > 0) else { return Ok(None) };
    let replay = outbox.streams.open(capacity);
    prime(http, route, &replay).await?;
    Ok(Some(replay))
}

/// The priming event (id of the latest event, empty data, `retry`), for
/// clients of the revision that introduced it.
pub(super) async fn prime(http: &mut ServerSession, route: &Route, replay: &Replay) -> pingora::Result<()> {
    let primes = header(http, PROTOCOL_HEADER).is_some_and(|v| v >= PRIMING_SINCE);
    match primes {
        true => respond::sse_prime(http, &event_id(replay.stream, replay.last()), route.settings.http.sse_retry).await,
        false => Ok(()),
    }
}

/// Records `message` on `replay` (when resumable) and writes it with its id.
pub(super) async fn write(http: &mut ServerSession, replay: Option<&Replay>, message: &Bytes) -> pingora::Result<()> {
    match replay {
        Some(replay) => {
            let sequence = replay.record(message.clone());
            respond::sse_event_with_id(http, &event_id(replay.stream, sequence), message).await
        }
        None => respond::sse_event(http, message).await,
    }
}

/// Writes the events of `replay` after `cursor`; the new cursor, and
/// whether the stream has ended.
pub(super) async fn write_missed(
    http: &mut ServerSession,
    replay: &Replay,
    cursor: u64,
) -> pingora::Result<(u64, bool)> {
    let missed = replay.after(cursor);
    let mut cursor = cursor;
    for (sequence, message) in missed.events {
        respond::sse_event_with_id(http, &event_id(replay.stream, sequence), &message).await?;
        cursor = sequence;
    }
    Ok((cursor, missed.done))
}

/// `GET` with `Last-Event-ID` on a POST answer's stream: what the client
/// missed, then the rest as the server sends it, ending with the answer.
pub(super) async fn resume_post_stream(
    http: &mut ServerSession,
    route: &Route,
    replay: &Replay,
    cursor: u64,
) -> pingora::Result<()> {
    let mut changed = replay.watch();
    respond::sse_start(http, &[]).await?;
    let keepalive = route.settings.http.sse_keepalive;
    let mut cursor = cursor;
    loop {
        changed.borrow_and_update();
        let (now, done) = write_missed(http, replay, cursor).await?;
        cursor = now;
        if done {
            break;
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep(keepalive) => respond::sse_keepalive(http).await?,
            _ = http.read_body_or_idle(true) => return Ok(()), // gone again; it may come back
        }
    }
    respond::sse_end(http).await
}

/// 400 for a `Last-Event-ID` that names no stream mcpd still keeps.
pub(super) async fn unknown(http: &mut ServerSession, last_event_id: &str) -> pingora::Result<()> {
    let text = format!(
        "cannot resume from Last-Event-ID {last_event_id:?}: this session has no such stream \
         (it ended and was read to the end, or it is too old)"
    );
    respond::rpc_error(http, 400, None, INVALID_REQUEST, &text, &[]).await
}
