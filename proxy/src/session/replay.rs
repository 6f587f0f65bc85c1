//! A session's resumable SSE streams (Streamable HTTP, 2025-11-25
//! "Resumability and Redelivery"): every event mcpd writes on a session's
//! stream is numbered and kept in a bounded buffer, so a client whose
//! connection dropped can GET with `Last-Event-ID` and receive exactly what
//! came after that event, on that stream only.
//!
//! Streams are numbered per session: 0 is the standalone (GET) stream, 1,
//! 2, … are POST answers. An event id is `<stream>/<sequence>`, which names
//! the stream a resume is for. Nothing here writes HTTP (front does).

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The standalone stream's number.
pub const STANDALONE: u64 = 0;
/// Finished POST streams whose client had left, kept for a late resume.
const FINISHED_KEPT: usize = 16;

/// The event id of event `sequence` on `stream`.
pub fn event_id(stream: u64, sequence: u64) -> String {
    format!("{stream}/{sequence}")
}

/// (stream, sequence) of an event id mcpd issued.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, sequence) = id.trim().split_once('/')?;
    Some((stream.parse().ok()?, sequence.parse().ok()?))
}

/// One stream's recent events.
pub struct Replay {
    pub stream: u64,
    capacity: usize,
    state: Mutex<State>,
    /// Bumped on every new event and at the end, for resumed readers.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    events: VecDeque<(u64, Bytes)>,
    last: u64,
    done: bool,
}

/// What a resumed reader gets: the events after its cursor, and whether
/// the stream has ended (nothing more will come).
pub struct Missed {
    pub events: Vec<(u64, Bytes)>,
    pub done: bool,
}

impl Replay {
    fn new(stream: u64, capacity: usize) -> Replay {
        Replay { stream, capacity, state: Mutex::default(), changed: watch::channel(0).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers `message` and keeps it (dropping the oldest beyond the
    /// capacity); its sequence number.
    pub fn record(&self, message: Bytes) -> u64 {
        let mut state = self.lock();
        state.last += 1;
        let sequence = state.last;
        if state.events.len() == self.capacity {
            state.events.pop_front();
        }
        state.events.push_back((sequence, message));
        drop(state);
        self.changed.send_replace(sequence);
        sequence
    }

    /// The sequence number of the latest event (0: none yet).
    pub fn last(&self) -> u64 {
        self.lock().last
    }

    /// No more events will come (the answer was recorded).
    pub fn finish(&self) {
        self.lock().done = true;
        self.changed.send_modify(|_| {});
    }

    /// The kept events after `cursor`. Events older than the buffer's
    /// oldest are gone: the reader gets what is left.
    pub fn after(&self, cursor: u64) -> Missed {
        let state = self.lock();
        let events = state.events.iter().filter(|(s, _)| *s > cursor).cloned().collect();
        Missed { events, done: state.done }
    }

    /// Wakes when something is recorded or the stream ends.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Every resumable stream of one session.
#[derive(Default)]
pub struct Streams {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Replay>>>,
    finished: Mutex<VecDeque<u64>>,
}

impl Streams {
    fn open_map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Replay>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new POST stream keeping `capacity` events.
    pub fn open(&self, capacity: usize) -> Arc<Replay> {
        let stream = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let replay = Arc::new(Replay::new(stream, capacity));
        self.open_map().insert(stream, Arc::clone(&replay));
        replay
    }

    /// The standalone stream, made on first use.
    pub fn standalone(&self, capacity: usize) -> Arc<Replay> {
        let mut open = self.open_map();
        Arc::clone(open.entry(STANDALONE).or_insert_with(|| Arc::new(Replay::new(STANDALONE, capacity))))
    }

    pub fn find(&self, stream: u64) -> Option<Arc<Replay>> {
        self.open_map().get(&stream).cloned()
    }

    /// A POST stream ended. `delivered`: its client read it to the end, so
    /// nobody will resume it and it is forgotten now; otherwise it is kept
    /// (among the last few such) for the client to come back to.
    pub fn finished(&self, replay: &Replay, delivered: bool) {
        replay.finish();
        if delivered {
            self.open_map().remove(&replay.stream);
            return;
        }
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        finished.push_back(replay.stream);
        if finished.len() > FINISHED_KEPT
            && let Some(oldest) = finished.pop_front()
        {
            self.open_map().remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keeps_the_last_events_and_ids_name_their_stream() {
        let streams = Streams::default();
        let post = streams.open(2);
        assert_eq!(post.stream, 1);
        for text in ["a", "b", "c"] {
            post.record(Bytes::from(text));
        }
        let missed = post.after(1);
        assert_eq!(missed.events.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 3]);
        assert!(!missed.done);
        assert_eq!(post.after(0).events.len(), 2, "the buffer holds two: the first is gone");
        assert_eq!(parse_event_id(&event_id(post.stream, 3)), Some((1, 3)));
        assert_eq!(parse_event_id("junk"), None);
        streams.finished(&post, false);
        assert!(streams.find(1).is_some_and(|r| r.after(3).done), "kept for a late resume");
        let delivered = streams.open(2);
        streams.finished(&delivered, true);
        assert!(streams.find(delivered.stream).is_none(), "read to the end: forgotten");
        assert_eq!(streams.standalone(4).stream, STANDALONE);
    }
}
