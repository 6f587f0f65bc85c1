//! A session's server→client channel for messages no request is waiting for.
//!
//! Server notifications and requests that arrive while no client request is
//! in flight go to the session's GET stream if one is open; otherwise they
//! wait here, in a bounded backlog, until one opens. Only one GET stream may
//! be attached at a time (a second gets 409). The session's resumable
//! streams ([`Streams`]) live here too: what was written on them, kept for
//! a client that reconnects with `Last-Event-ID`.

use super::replay::Streams;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Messages kept for a session with no open GET stream.
const BACKLOG_LIMIT: usize = 256;
/// Messages buffered between the server and a slow GET stream.
const STREAM_BUFFER: usize = 256;

#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
    /// The session's SSE streams, for `Last-Event-ID` resumption.
    pub streams: Streams,
}

#[derive(Default)]
struct State {
    stream: Option<mpsc::Sender<Bytes>>,
    backlog: VecDeque<Bytes>,
    closed: bool,
}

impl State {
    fn live_stream(&mut self) -> Option<&mpsc::Sender<Bytes>> {
        if self.stream.as_ref().is_some_and(|s| s.is_closed()) {
            self.stream = None;
        }
        self.stream.as_ref()
    }

    fn keep(&mut self, message: Bytes) {
        if self.backlog.len() == BACKLOG_LIMIT {
            self.backlog.pop_front();
            tracing::warn!("session backlog full: dropped the oldest server message");
        }
        self.backlog.push_back(message);
    }
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while a GET stream is attached and its client still listens.
    pub fn has_stream(&self) -> bool {
        self.lock().live_stream().is_some()
    }

    /// Hands `message` to the GET stream, or keeps it until one opens.
    pub fn push(&self, message: Bytes) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        if let Some(stream) = state.live_stream().cloned() {
            match stream.try_send(message) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("GET stream too slow: dropped a server message");
                }
                Err(mpsc::error::TrySendError::Closed(message)) => {
                    state.stream = None;
                    state.keep(message);
                }
            }
            return;
        }
        state.keep(message);
    }

    /// Attaches a new GET stream, handing it the backlog first. `None` when
    /// another stream is attached or the session is closed.
    pub fn attach(&self) -> Option<mpsc::Receiver<Bytes>> {
        let mut state = self.lock();
        if state.closed || state.live_stream().is_some() {
            return None;
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER.max(state.backlog.len()));
        for message in state.backlog.drain(..) {
            let _ = tx.try_send(message);
        }
        state.stream = Some(tx);
        Some(rx)
    }

    /// A GET stream ends: `stream` stops taking messages, and those it took
    /// but never wrote go back to the front of the backlog, for the next one.
    pub fn detach(&self, mut stream: mpsc::Receiver<Bytes>) {
        // Under the lock, so no new stream attaches (and takes the backlog)
        // before the unsent messages are back in it.
        let mut state = self.lock();
        stream.close();
        let mut unsent = Vec::new();
        while let Ok(message) = stream.try_recv() {
            unsent.push(message);
        }
        if state.closed {
            return;
        }
        for message in unsent.into_iter().rev() {
            state.backlog.push_front(message);
        }
        while state.backlog.len() > BACKLOG_LIMIT {
            state.backlog.pop_front();
        }
    }

    /// Ends the GET stream (its client sees the response end) and drops the backlog.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.stream = None;
        state.backlog.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_reaches_the_next_stream_and_only_one_stream_attaches() {
        let outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"a"));
        let mut rx = outbox.attach().expect("first stream attaches");
        assert!(outbox.attach().is_none(), "a second stream is refused");
        outbox.push(Bytes::from_static(b"b"));
        assert_eq!(rx.try_recv().unwrap(), "a");
        assert_eq!(rx.try_recv().unwrap(), "b");
        drop(rx);
        outbox.push(Bytes::from_static(b"c"));
        let mut rx = outbox.attach().expect("a stream can attach after the first one left");
        assert_eq!(rx.try_recv().unwrap(), "c");
        outbox.close();
        assert!(rx.try_recv().is_err());
    }
}
