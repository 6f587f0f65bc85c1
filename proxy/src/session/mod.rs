//! Client sessions of the Streamable HTTP session era.
//!
//! A session is what `initialize` creates and `Mcp-Session-Id` names: one
//! client, what serves it upstream (its own stdio process, a shared replica,
//! or a session on one HTTP instance: see [`SessionUpstream`]), and the
//! [`outbox::Outbox`] for server messages no request is waiting for. The
//! [`SessionTable`] owns every live session, enforces the per-client and
//! gateway-wide caps, and finds idle ones for the reaper. The id mcpd hands
//! out is its own, never the server's: the upstream's id stays in the
//! binding, so the instance a session lives on is found with the session.
//!
//! Not here: spawning processes (upstream) and HTTP (front).

pub mod outbox;
pub mod replay;

use crate::upstream::session::SessionUpstream;
use dashmap::DashMap;
use outbox::Outbox;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Session {
    pub id: String,
    pub server: Arc<str>,
    pub upstream: SessionUpstream,
    pub outbox: Arc<Outbox>,
    owner: ClientKey,
    idle_timeout: Duration,
    /// Milliseconds since the table's epoch when the session was last used.
    last_active: AtomicU64,
    /// Requests and streams in progress; a busy session is never idle.
    busy: AtomicUsize,
}

/// Who a session counts against for `max_per_client`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub server: Arc<str>,
    pub client: String,
}

/// Why a new session was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("this client already has {0} sessions on this server (session.max_per_client)")]
    PerClient(usize),
    #[error("the gateway already serves {0} sessions (gateway.max_sessions)")]
    Gateway(usize),
}

pub struct SessionTable {
    sessions: DashMap<String, Arc<Session>>,
    per_client: DashMap<ClientKey, usize>,
    total: AtomicUsize,
    max_total: usize,
    epoch: Instant,
}

/// A counted place for a session being created; released on drop unless
/// the session was stored.
pub struct Reservation {
    table: Arc<SessionTable>,
    key: Option<ClientKey>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table.release(&key);
        }
    }
}

/// Keeps a session busy (not reapable) while alive.
pub struct Busy(Arc<Session>, Arc<SessionTable>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.last_active.store(self.1.now_ms(), Ordering::Relaxed);
    }
}

impl Session {
    /// Marks the session in use until the guard drops.
    pub fn enter(self: &Arc<Self>, table: &Arc<SessionTable>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.last_active.store(table.now_ms(), Ordering::Relaxed);
        Busy(Arc::clone(self), Arc::clone(table))
    }
}

impl SessionTable {
    pub fn new(max_total: usize) -> Arc<Self> {
        Arc::new(SessionTable {
            sessions: DashMap::new(),
            per_client: DashMap::new(),
            total: AtomicUsize::new(0),
            max_total,
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Counts a session for `client` on `server` before it exists, so that
    /// concurrent `initialize` calls cannot overshoot the caps.
    pub fn reserve(
        self: &Arc<Self>,
        server: &Arc<str>,
        client: &str,
        max_per_client: usize,
    ) -> Result<Reservation, Refusal> {
        let key = ClientKey { server: Arc::clone(server), client: client.to_string() };
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Gateway(self.max_total));
        }
        let mut count = self.per_client.entry(key.clone()).or_insert(0);
        if *count >= max_per_client {
            drop(count);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::PerClient(max_per_client));
        }
        *count += 1;
        Ok(Reservation { table: Arc::clone(self), key: Some(key) })
    }

    fn release(&self, key: &ClientKey) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        let now_empty = match self.per_client.get_mut(key) {
            Some(mut count) => {
                *count = count.saturating_sub(1);
                *count == 0
            }
            None => false,
        };
        if now_empty {
            self.per_client.remove_if(key, |_, count| *count == 0);
        }
    }

    /// A fresh, unguessable session id (what consistent hashing may hash
    /// before the session exists).
    pub fn new_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Stores a new session under `id` (from [`SessionTable::new_id`]) and returns it.
    pub fn insert(
        &self,
        mut reservation: Reservation,
        id: String,
        upstream: SessionUpstream,
        outbox: Arc<Outbox>,
        idle_timeout: Duration,
    ) -> Arc<Session> {
        let owner = reservation.key.take().expect("a reservation is used once");
        let session = Arc::new(Session {
            id,
            server: Arc::clone(&owner.server),
            upstream,
            outbox,
            owner,
            idle_timeout,
            last_active: AtomicU64::new(self.now_ms()),
            busy: AtomicUsize::new(0),
        });
        self.sessions.insert(session.id.clone(), Arc::clone(&session));
        session
    }

    /// The live session `id` of `server`; a session whose upstream is gone
    /// is ended here, so its client gets 404 and re-initializes.
    pub fn get(&self, id: &str, server: &str) -> Option<Arc<Session>> {
        let session = self.sessions.get(id).map(|s| Arc::clone(&s))?;
        if &*session.server != server {
            return None;
        }
        if !session.upstream.is_alive() {
            self.remove(id);
            return None;
        }
        Some(session)
    }

    /// Ends session `id`: forgets it, ends its upstream side (stops its
    /// process, DELETEs the instance's session), closes its stream.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let (_, session) = self.sessions.remove(id)?;
        self.release(&session.owner);
        session.outbox.close();
        session.upstream.close();
        Some(session)
    }

    /// Ends session `id` because its upstream is gone (nothing to tell it).
    pub fn lost(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions.get(id).map(|s| Arc::clone(&s))?;
        session.upstream.mark_gone();
        self.remove(id)
    }

    /// Ends every session idle for longer than its timeout, or whose process died.
    pub fn reap_idle(&self) -> usize {
        let now = self.now_ms();
        let expired: Vec<String> = self
            .sessions
            .iter()
            .filter(|s| {
                let idle = now.saturating_sub(s.last_active.load(Ordering::Relaxed));
                let idle_expired = s.busy.load(Ordering::Relaxed) == 0 && idle > s.idle_timeout.as_millis() as u64;
                idle_expired || !s.upstream.is_alive()
            })
            .map(|s| s.id.clone())
            .collect();
        for id in &expired {
            if let Some(session) = self.remove(id) {
                tracing::info!(server = %session.server, session = %id, "session ended: idle or its server is gone");
            }
        }
        expired.len()
    }

    /// Ends every session (gateway shutdown).
    pub fn clear(&self) {
        let ids: Vec<String> = self.sessions.iter().map(|s| s.id.clone()).collect();
        for id in ids {
            self.remove(&id);
        }
    }
}
