//! What serves a stateless-era (2026-07-28) request, for every upstream
//! kind. Clients of that era send no `initialize` and hold no session, but
//! the servers mcpd fronts mostly speak the session era only, so mcpd
//! bridges: it keeps upstream sessions it initialized itself and sends
//! each stateless request through one of them.
//!
//! - stdio with sessions off (a pool) or with `replicas`: the request goes
//!   to the least busy of those processes (already initialized by mcpd).
//! - stdio with a process per session: the bridge runs its own warm
//!   process (one, started at the first stateless request, restarted when
//!   it exits), shared by stateless clients. Like a session's process, it
//!   is stopped once idle for `session.timeout` (no request in flight, no
//!   call waiting for input, no `subscriptions/listen` stream on it), and
//!   started again by the next stateless request.
//! - HTTP instances: mcpd first asks `server/discover` in the stateless
//!   era. An instance that answers it serves stateless requests itself:
//!   they pass through untouched. Otherwise mcpd opens a session of its
//!   own on an instance and keeps it (reopened when the instance loses it).
//!
//! Not here: the era's checks and answers (`front::stateless`).

use super::pool::Pool;
use super::session::SessionUpstream;
use super::stdio::StdioProcess;
use super::{Call, Event, INITIALIZE_TIMEOUT, UpstreamError};
use crate::config::ServerSettings;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::{PROTOCOL_HEADER, version};
use crate::route::Route;
use crate::session::outbox::Outbox;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::value::RawValue;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a request waiting for the bridge's own process looks again.
const START_POLL: Duration = Duration::from_millis(20);

/// What serves one stateless request.
#[derive(Clone)]
pub enum Target {
    /// An initialized stdio process, with its `initialize` result.
    Process(Arc<StdioProcess>, Box<RawValue>),
    /// A session mcpd opened on an HTTP instance.
    Session(Arc<Kept>),
    /// The HTTP instances speak the stateless era themselves.
    PassThrough,
}

impl Target {
    /// The upstream's `initialize` result (`None` when it passes through).
    pub fn init(&self) -> Option<&RawValue> {
        match self {
            Target::Process(_, init) => Some(init),
            Target::Session(kept) => Some(&kept.init),
            Target::PassThrough => None,
        }
    }
}

/// A session mcpd opened and keeps on an HTTP instance.
pub struct Kept {
    pub upstream: SessionUpstream,
    pub init: Box<RawValue>,
    /// The session-era revision the instance agreed to.
    pub version: HeaderValue,
    /// Server messages no request waits for (SSE-transport instances).
    pub outbox: Arc<Outbox>,
    /// Change notifications from the session's own stream, for stateless
    /// listeners (`subscriptions/listen`).
    pub notices: tokio::sync::broadcast::Sender<Bytes>,
}

/// A change notification listeners care about (`…/list_changed`, `resources/updated`).
pub fn is_change(message: &[u8]) -> bool {
    Message::parse(message).is_ok_and(|m| {
        let method = m.method();
        m.id.is_none() && (method.ends_with("/list_changed") || method == "notifications/resources/updated")
    })
}

/// How long before a kept session's ended stream is opened again.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Feeds a kept session's change notifications to its listeners: from
/// the instance's GET stream (reopened when it ends) or, for SSE-transport
/// instances, from the session's outbox. Ends with the session.
async fn watch_notices(kept: std::sync::Weak<Kept>) {
    loop {
        let Some(strong) = kept.upgrade().filter(|k| k.upstream.is_alive()) else {
            return;
        };
        let headers = strong.headers(&HeaderMap::new());
        let notices = strong.notices.clone();
        if let Some(mut stream) = strong.upstream.stream(&headers) {
            drop(strong);
            let mut opened = false;
            loop {
                match stream.next().await {
                    Event::Message(message) => {
                        opened = true;
                        if is_change(&message) {
                            let _ = notices.send(message);
                        }
                    }
                    // No GET stream there (e.g. 405): nothing to watch.
                    Event::Rejected(error) if !opened => {
                        tracing::debug!("no change notifications from the kept session: {error}");
                        return;
                    }
                    _ => break,
                }
            }
        } else if let Some(mut outbox) = strong.outbox.attach() {
            drop(strong);
            while let Some(message) = outbox.recv().await {
                if is_change(&message) {
                    let _ = notices.send(message);
                }
            }
            return;
        } else {
            return;
        }
        tokio::time::sleep(REOPEN_AFTER).await;
    }
}

impl Kept {
    /// The client's headers as the instance must see them: the session's
    /// revision instead of the stateless era's MCP headers.
    pub fn headers(&self, client: &HeaderMap) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(client.len());
        for (name, value) in client {
            if !name.as_str().starts_with("mcp-") {
                headers.append(name, value.clone());
            }
        }
        headers.insert(PROTOCOL_HEADER, self.version.clone());
        headers
    }
}

/// Whether an HTTP server speaks the stateless era, once known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HttpEra {
    Stateless,
    Session,
}

/// The bridge's own warm process (a pool of one), while it runs.
struct Own {
    pool: Arc<Pool>,
    /// When a stateless request last took it, or it was last seen busy.
    used: Instant,
}

/// Where the bridge keeps its own process; shared with the task that reaps it.
type OwnSlot = Arc<Mutex<Option<Own>>>;

#[derive(Default)]
pub struct Bridge {
    /// With a process per session: the bridge's own warm process, when it runs.
    own: OwnSlot,
    /// Stops the bridge's own process with the gateway.
    stop: OnceLock<watch::Receiver<bool>>,
    http_era: Mutex<Option<HttpEra>>,
    kept: tokio::sync::Mutex<Option<Arc<Kept>>>,
    /// Tool input schemas (name → schema) and when they were fetched, for
    /// checking `Mcp-Param-*` headers (kept by `front::stateless`).
    pub tool_schemas: Mutex<Option<ToolSchemas>>,
    /// Calls waiting for the client's input, by the `requestState` it got.
    parked: Mutex<std::collections::HashMap<String, Parked>>,
}

/// Tool name → input schema, with when they were fetched.
pub type ToolSchemas = (std::time::Instant, Arc<std::collections::HashMap<String, serde_json::Value>>);

/// A call whose server asked the client something (sampling, elicitation,
/// roots): it waits, upstream, for the client to retry its request with
/// the answers (`inputResponses`), at most until `expires`. Dropping it
/// cancels the request upstream.
pub struct Parked {
    pub call: Call,
    pub target: Target,
    /// The server's requests still unanswered, each under its key in the
    /// client's `inputRequests` (at least one).
    pub asked: Vec<Asked>,
    /// The client request being served (its retry must be the same method).
    pub method: String,
    pub expires: std::time::Instant,
}

/// One request a bridged server sent the client during a call.
pub struct Asked {
    /// Its key in the client's `inputRequests` / `inputResponses`.
    pub key: String,
    /// The server's request, as mcpd relayed it (its id is the one to answer).
    pub request: Bytes,
}

impl Bridge {
    /// Hands the bridge the gateway's stop signal (for its own process).
    pub fn set_stop(&self, stop: watch::Receiver<bool>) {
        let _ = self.stop.set(stop);
    }

    /// What serves the next stateless request; `Ok(None)` while nothing
    /// can (processes still starting).
    pub async fn target(&self, route: &Route) -> Result<Option<Target>, UpstreamError> {
        if let Some(http) = &route.http {
            let known = *self.http_era.lock().unwrap_or_else(|e| e.into_inner());
            let era = match known {
                Some(era) => era,
                None => {
                    let era = match http.probe_stateless().await? {
                        Some(_) => HttpEra::Stateless,
                        None => HttpEra::Session,
                    };
                    tracing::info!(server = %route.name, stateless = (era == HttpEra::Stateless), "probed the server's protocol era");
                    *self.http_era.lock().unwrap_or_else(|e| e.into_inner()) = Some(era);
                    era
                }
            };
            return match era {
                HttpEra::Stateless => Ok(Some(Target::PassThrough)),
                HttpEra::Session => self.kept(route).await.map(|kept| Some(Target::Session(kept))),
            };
        }
        let (pool, own) = match route.pool.as_ref().or(route.replicas.as_ref()) {
            Some(pool) => (Arc::clone(pool), false),
            None => (self.own_pool(&route.settings), true),
        };
        let deadline = tokio::time::Instant::now() + INITIALIZE_TIMEOUT.min(route.settings.http.request_timeout);
        loop {
            if let (Some(process), Some(init)) = (pool.pick(), pool.init_result()) {
                if own {
                    // The reaper sees this before the request is in flight.
                    self.touch(&pool);
                }
                return Ok(Some(Target::Process(process, init.to_owned())));
            }
            // Only the bridge's own process is worth waiting for: it was
            // just started; a route's pool that is down stays down a while.
            let starting = own && pool.last_error().is_none();
            if !starting || tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(START_POLL).await;
        }
    }

    /// Every live stdio process that serves stateless requests (for
    /// listeners); empty for HTTP servers.
    pub fn processes(&self, route: &Route) -> Vec<Arc<StdioProcess>> {
        let own = || lock(&self.own).as_ref().map(|own| Arc::clone(&own.pool));
        match route.pool.as_ref().or(route.replicas.as_ref()).cloned().or_else(own) {
            Some(pool) if route.http.is_none() => pool.all().into_iter().filter(|p| p.is_alive()).collect(),
            _ => Vec::new(),
        }
    }

    /// The bridge's own warm process, started when it does not run (first
    /// use, or after it was reaped), with a task that reaps it when idle.
    fn own_pool(&self, settings: &Arc<ServerSettings>) -> Arc<Pool> {
        let mut own = lock(&self.own);
        if let Some(running) = own.as_mut() {
            running.used = Instant::now();
            return Arc::clone(&running.pool);
        }
        let pool = Pool::new(Arc::clone(settings), 1);
        let gateway_stop = self.stop.get().cloned().unwrap_or_else(|| watch::channel(false).1);
        let (stop, stopped) = watch::channel(false);
        tracing::info!(server = %settings.name, "starting a shared process for stateless clients");
        tokio::spawn(Arc::clone(&pool).supervise_slot(0, stopped));
        let idle_timeout = settings.session.idle_timeout;
        let reaper = reap_when_idle(Arc::clone(&self.own), Arc::clone(&pool), idle_timeout, gateway_stop, stop);
        tokio::spawn(reaper);
        *own = Some(Own { pool: Arc::clone(&pool), used: Instant::now() });
        pool
    }

    /// Marks the bridge's own process as just used.
    fn touch(&self, pool: &Arc<Pool>) {
        if let Some(own) = lock(&self.own).as_mut().filter(|own| Arc::ptr_eq(&own.pool, pool)) {
            own.used = Instant::now();
        }
    }

    /// The session kept on an HTTP instance, opened when there is none.
    async fn kept(&self, route: &Route) -> Result<Arc<Kept>, UpstreamError> {
        let mut kept = self.kept.lock().await;
        if let Some(alive) = kept.as_ref().filter(|k| k.upstream.is_alive()) {
            return Ok(Arc::clone(alive));
        }
        if let Some(old) = kept.take() {
            old.upstream.close();
        }
        let opened = Arc::new(open(route).await?);
        tokio::spawn(watch_notices(Arc::downgrade(&opened)));
        tracing::info!(server = %route.name, upstream = %opened.upstream.describe(), "opened an upstream session for stateless clients");
        *kept = Some(Arc::clone(&opened));
        Ok(opened)
    }

    /// Keeps a call until the client's retry brings the input its server
    /// asked for; returns the `requestState` that names it.
    pub fn park(&self, parked: Parked) -> String {
        let token = format!("mcpd-{}", uuid::Uuid::new_v4());
        let mut table = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        // Calls nobody came back for are dropped (and so cancelled upstream).
        table.retain(|_, p| p.expires > now);
        table.insert(token.clone(), parked);
        token
    }

    /// The call `token` names, if it is still waiting (taken: one retry each).
    pub fn resume(&self, token: &str) -> Option<Parked> {
        let parked = self.parked.lock().unwrap_or_else(|e| e.into_inner()).remove(token)?;
        (parked.expires > std::time::Instant::now()).then_some(parked)
    }

    /// Forgets a kept session whose instance lost it (the next request opens another).
    pub async fn lost(&self, gone: &Arc<Kept>) {
        let mut kept = self.kept.lock().await;
        if kept.as_ref().is_some_and(|k| Arc::ptr_eq(k, gone)) {
            gone.upstream.mark_gone();
            kept.take();
        }
    }
}

fn lock(own: &Mutex<Option<Own>>) -> std::sync::MutexGuard<'_, Option<Own>> {
    own.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops the bridge's own process (`pool`, through `stop`) with the gateway,
/// or once it has been idle for `idle_timeout`: nothing in flight on it
/// (parked calls are in flight) and nobody listening to its notifications.
/// A reaped process is taken out of `slot` under its lock, so a request
/// either got it before (and it counted as used) or starts another.
async fn reap_when_idle(
    slot: OwnSlot,
    pool: Arc<Pool>,
    idle_timeout: Duration,
    mut gateway_stop: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
) {
    // As often as the gateway looks for idle sessions.
    let every = (idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = crate::shutdown::requested(&mut gateway_stop) => break,
        }
        let mut own = lock(&slot);
        let Some(current) = own.as_mut().filter(|own| Arc::ptr_eq(&own.pool, &pool)) else {
            break; // no longer the bridge's (cannot happen: only this task takes it out)
        };
        let busy = pool.all().iter().any(|p| p.in_flight() > 0 || p.listeners() > 0);
        if busy {
            current.used = Instant::now();
            continue;
        }
        let idle = current.used.elapsed();
        if idle >= idle_timeout {
            own.take();
            drop(own);
            tracing::info!(server = %pool.server_name(), idle = ?idle, "stopping the idle shared process for stateless clients");
            break;
        }
    }
    let _ = stop.send(true);
}

/// Runs the handshake with an instance as mcpd's own client.
async fn open(route: &Route) -> Result<Kept, UpstreamError> {
    let Some(http) = &route.http else {
        return Err(UpstreamError::Refused { method: "initialize".into(), error: "not an HTTP server".into() });
    };
    let params = serde_json::json!({
        "protocolVersion": version::LATEST,
        "capabilities": {"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}},
        "clientInfo": {"name": "mcpd", "version": env!("CARGO_PKG_VERSION")}
    });
    let body = jsonrpc::request("\"mcpd-bridge\"", "initialize", Some(&params.to_string()));
    let id = RawValue::from_string("\"mcpd-bridge\"".into()).expect("a string is JSON");
    let mut headers = HeaderMap::new();
    headers.insert(PROTOCOL_HEADER, HeaderValue::from_static(version::LATEST));
    let outbox = Arc::new(Outbox::default());
    let limit = route.settings.http.request_timeout.min(INITIALIZE_TIMEOUT);
    let opened = tokio::time::timeout(limit, async {
        let (upstream, call) = http.open(None, Bytes::from(body), &headers, &id, &outbox).await?;
        match answer(call).await {
            Ok(init) => Ok((upstream, init)),
            Err(error) => {
                upstream.close();
                Err(error)
            }
        }
    });
    let (upstream, init) = opened.await.map_err(|_| UpstreamError::Timeout(limit))??;
    let agreed = serde_json::from_str::<serde_json::Value>(init.get())
        .ok()
        .and_then(|i| i.get("protocolVersion")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| version::ASSUMED_WITHOUT_HEADER.to_owned());
    let kept = Kept {
        version: HeaderValue::from_str(&agreed).unwrap_or(HeaderValue::from_static(version::LATEST)),
        upstream,
        init,
        outbox,
        notices: tokio::sync::broadcast::channel(64).0,
    };
    // Every stateless client's requests go through this one session.
    if let SessionUpstream::Sse(session) = &kept.upstream {
        session.share();
    }
    let initialized = jsonrpc::notification("notifications/initialized", None);
    let message = Message::parse(&initialized).expect("mcpd's own notification parses");
    let body = Bytes::from(initialized.clone());
    let headers = kept.headers(&HeaderMap::new());
    let forward = super::session::Forward { message: &message, body: &body, headers: &headers };
    if let Err(error) = kept.upstream.notify(&forward).await {
        kept.upstream.close();
        return Err(error);
    }
    Ok(kept)
}

/// The result of mcpd's own request, once the call ends.
async fn answer(mut call: Call) -> Result<Box<RawValue>, UpstreamError> {
    let refused = |error: String| UpstreamError::Refused { method: "a request of mcpd's own".into(), error };
    loop {
        match call.next().await {
            Event::Message(_) => continue,
            Event::Response { bytes, .. } => {
                let message = Message::parse(&bytes).map_err(|e| refused(e.to_string()))?;
                return match (message.result, message.error) {
                    (Some(result), None) => Ok(result.to_owned()),
                    (_, error) => Err(refused(error.map(|e| e.get().to_string()).unwrap_or_default())),
                };
            }
            Event::Failed(reason) => return Err(UpstreamError::Exited(reason)),
            Event::Cancelled => return Err(UpstreamError::Cancelled),
            Event::Rejected(error) => return Err(error),
        }
    }
}

impl Target {
    /// Sends mcpd's own request (e.g. `tools/list`) through a bridged
    /// upstream and returns its result.
    pub async fn request(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Duration,
    ) -> Result<Box<RawValue>, UpstreamError> {
        let params = params
            .map(|p| RawValue::from_string(p.to_owned()))
            .transpose()
            .map_err(|e| UpstreamError::Refused { method: method.to_owned(), error: e.to_string() })?;
        match self {
            Target::Process(process, _) => process.request(method, params.as_deref(), timeout).await,
            Target::Session(kept) => {
                let id = "\"mcpd-own\"";
                let body = jsonrpc::request(id, method, params.as_deref().map(RawValue::get));
                let message = Message::parse(&body)
                    .map_err(|e| UpstreamError::Refused { method: method.to_owned(), error: e.to_string() })?;
                let bytes = Bytes::from(body.clone());
                let headers = kept.headers(&HeaderMap::new());
                let forward = super::session::Forward { message: &message, body: &bytes, headers: &headers };
                let call = kept.upstream.call(&forward).await?;
                tokio::time::timeout(timeout, answer(call)).await.map_err(|_| UpstreamError::Timeout(timeout))?
            }
            Target::PassThrough => Err(UpstreamError::Refused {
                method: method.to_owned(),
                error: "the server answers stateless requests itself".into(),
            }),
        }
    }
}
