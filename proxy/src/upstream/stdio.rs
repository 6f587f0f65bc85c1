//! One stdio MCP server process: spawn, newline-delimited JSON-RPC in and
//! out, and routing of what it says back to the right caller.
//!
//! Every request mcpd forwards gets a fresh numeric id on the way in (so any
//! number of callers can share one process) and its own id back on the way
//! out. Progress tokens are rewritten the same way, so `notifications/progress`
//! reaches the request that asked for it. Requests the server sends to the
//! client (sampling, elicitation, roots, ping) get a gateway id
//! `mcpd-<process>-<32 hex digits>` that tells mcpd, when the client
//! answers, which process and which original id the answer belongs to. The
//! hex digits are 128 random bits, so only the client that was sent the
//! request can name it; on a shared process the answer must also come
//! from the owner the request was relayed to ([`Owner::may_answer`]).
//! How long such a request waits, and the server's own withdrawal of it,
//! follow [`super::server_requests`].
//!
//! A request the client cancels (`notifications/cancelled`, matched by
//! its id and owner) is cancelled upstream under mcpd's id and ends with
//! [`Event::Cancelled`]: no answer follows.
//!
//! Everything else the server says (log messages, other notifications,
//! server→client requests) names no request. A process of one session
//! hands it to that session's most recent request in flight (whose client
//! is listening on that request's SSE stream) or, when none is, to the
//! session's [`Outbox`] (the GET stream). A shared process (pool, replica,
//! the stateless bridge's; spawned without an outbox) knows each request's
//! [`Owner`] and follows [`super::routing`]: the newest request when all
//! belong to one client, else list-changed notifications to each client,
//! other notifications dropped, requests answered with an error.
//!
//! What this module does not do: decide which process serves a client
//! (sessions and the pool do), or speak HTTP (the front does).

use super::routing::{self, Destination, Owner, RefusedAnswer};
use super::server_requests::{self, ServerRequest, Withdrawal};
pub use super::{Event, UpstreamError};
use crate::config::ServerSettings;
use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::session::outbox::Outbox;
use bytes::Bytes;
use serde_json::value::RawValue;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

/// Lines queued for a server's stdin before callers wait.
const STDIN_QUEUE: usize = 1024;
/// Events buffered between a process and one waiting request.
const CALL_BUFFER: usize = 64;
/// Grace given to a process between closing stdin, SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// JSON-RPC error message a server gets for a request mcpd could not name.
const NO_RANDOM: &str = "mcpd could not draw a random id to relay this request under";

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

struct Pending {
    client_id: Box<RawValue>,
    events: mpsc::Sender<Event>,
    /// The client's own progress token, when it asked for progress.
    progress_token: Option<serde_json::Value>,
    /// Who the request is for (decides where a shared process's other messages go).
    owner: Owner,
}

#[derive(Default)]
struct State {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    /// Requests the server sent to clients, by the random part of their gateway id.
    server_requests: HashMap<u128, ServerRequest>,
    exited: Option<String>,
}

pub struct StdioProcess {
    pub uid: u64,
    pub pid: Option<u32>,
    /// Client sessions kept on this process (shared replicas), for balancing.
    pub sessions: Arc<AtomicUsize>,
    server: Arc<str>,
    /// Serves many clients (no outbox): messages follow [`super::routing`].
    shared: bool,
    /// Itself, for the timers of its server requests (which must not keep it).
    me: Weak<StdioProcess>,
    /// How long a server request waits for its client (`http.request_timeout`).
    answer_timeout: Duration,
    stdin: mpsc::Sender<Vec<u8>>,
    state: Mutex<State>,
    outbox: Option<Arc<Outbox>>,
    exit: watch::Receiver<Option<String>>,
    stop: watch::Sender<bool>,
    /// Change notifications (`…/list_changed`, `resources/updated`) for
    /// stateless clients listening (`subscriptions/listen`); closed when
    /// the process is gone.
    notices: std::sync::Mutex<Option<tokio::sync::broadcast::Sender<Bytes>>>,
}

/// Change notifications buffered per listener before it lags.
const NOTICE_BUFFER: usize = 64;

impl StdioProcess {
    /// Starts `command args` with piped stdio. `outbox` receives server
    /// messages no request is waiting for: a process of one session has
    /// one; a shared process (pooled, replica) has none.
    pub fn spawn(settings: &ServerSettings, outbox: Option<Arc<Outbox>>) -> Result<Arc<Self>, UpstreamError> {
        let mut command = super::server_command(settings, Stdio::piped());
        let spawn_error = |source| UpstreamError::Spawn {
            command: std::iter::once(settings.command.as_str())
                .chain(settings.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(spawn_error(std::io::Error::other("stdio pipes missing")));
        };

        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        let (exit_tx, exit_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let process = Arc::new_cyclic(|me| StdioProcess {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            pid: child.id(),
            sessions: Arc::default(),
            server: Arc::from(settings.name.as_str()),
            shared: outbox.is_none(),
            me: me.clone(),
            answer_timeout: settings.http.request_timeout,
            stdin: stdin_tx,
            state: Mutex::new(State { next_id: 1, ..State::default() }),
            outbox,
            exit: exit_rx,
            stop: stop_tx,
            notices: std::sync::Mutex::new(Some(tokio::sync::broadcast::channel(NOTICE_BUFFER).0)),
        });
        tracing::info!(server = %process.server, pid = ?process.pid, uid = process.uid, "started MCP server process");

        tokio::spawn(write_stdin(stdin, stdin_rx, stop_rx.clone()));
        tokio::spawn(log_stderr(stderr, process.server.clone(), process.pid));
        tokio::spawn(Arc::clone(&process).read_stdout(stdout, child, stop_rx, exit_tx));
        Ok(process)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the process is gone, or `None` while it runs.
    pub fn exit_reason(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    pub fn is_alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Resolves once the process has exited.
    pub async fn exited(&self) {
        let mut exit = self.exit.clone();
        let _ = exit.wait_for(|reason| reason.is_some()).await;
    }

    /// Requests waiting for an answer from this process.
    pub fn in_flight(&self) -> usize {
        self.lock().pending.len()
    }

    /// Forwards a client request for `owner`; the returned [`Call`] yields
    /// what comes back. Dropping the call before its answer cancels the
    /// request upstream.
    pub async fn call(
        self: &Arc<Self>,
        client_id: &RawValue,
        method: &str,
        params: Option<&RawValue>,
        owner: Owner,
    ) -> Result<Call, UpstreamError> {
        let (events, receiver) = mpsc::channel(CALL_BUFFER);
        let progress_token = jsonrpc::progress_token(params);
        let id = {
            let mut state = self.lock();
            if let Some(reason) = &state.exited {
                return Err(UpstreamError::Exited(reason.clone()));
            }
            let id = state.next_id;
            state.next_id += 1;
            state.pending.insert(
                id,
                Pending { client_id: client_id.to_owned(), events, progress_token: progress_token.clone(), owner },
            );
            id
        };
        let call = Call { process: Arc::clone(self), id, events: receiver, done: false };
        let rewritten;
        let params = match (progress_token, params) {
            (Some(_), Some(p)) => {
                let token = serde_json::Value::String(format!("p{id}"));
                rewritten = jsonrpc::with_progress_token(p, "/_meta/progressToken", &token);
                rewritten.as_deref().or(Some(p.get()))
            }
            (_, p) => p.map(RawValue::get),
        };
        self.send(jsonrpc::request(&id.to_string(), method, params)).await?;
        Ok(call)
    }

    /// Forwards a client notification.
    pub async fn notify(&self, method: &str, params: Option<&RawValue>) -> Result<(), UpstreamError> {
        self.send(jsonrpc::notification(method, params.map(RawValue::get))).await
    }

    /// Passes `from`'s answer to a server→client request back, with the
    /// server's original id. `false` (counted and logged) when no such
    /// request of this process is waiting, or it waits for another owner
    /// (which may still answer it).
    pub async fn answer(&self, answer: &Message<'_>, from: &Owner) -> Result<bool, UpstreamError> {
        let refuse = |why| {
            routing::count_refused_answer(&self.server, answer.id_text(), why);
            Ok(false)
        };
        let Some(id) = parse_gateway_id(answer.id).filter(|id| id.uid == self.uid) else {
            return refuse(RefusedAnswer::Unknown);
        };
        let original = {
            let mut state = self.lock();
            match state.server_requests.entry(id.token) {
                Entry::Vacant(_) => Err(RefusedAnswer::Unknown),
                Entry::Occupied(asked) if !asked.get().owner.as_ref().is_none_or(|o| o.may_answer(from)) => {
                    Err(RefusedAnswer::NotOwner)
                }
                Entry::Occupied(asked) => Ok(asked.remove().original.clone()),
            }
        };
        match original {
            Ok(original) => {
                self.send(jsonrpc::response(original.get(), answer.result, answer.error)).await?;
                Ok(true)
            }
            Err(why) => refuse(why),
        }
    }

    /// Cancels the in-flight request `from` knows as `client_id` (the
    /// server is told mcpd's own id for it). `false` when `from` has no
    /// such request in flight: another client's request with the same id
    /// is left alone.
    pub fn cancel_by_client_id(&self, client_id: &RawValue, reason: Option<&RawValue>, from: &Owner) -> bool {
        let id = {
            let state = self.lock();
            let mut pending = state.pending.iter();
            pending.find(|(_, p)| p.client_id.get() == client_id.get() && p.owner == *from).map(|(id, _)| *id)
        };
        let Some(cancelled) =
            id.and_then(|id| self.abandon(id, reason.map(RawValue::get).unwrap_or("\"cancelled by the client\"")))
        else {
            return false;
        };
        // Its relay ends without an answer (the spec: a cancelled request
        // is not answered). Were the buffer full, the call's end says the same.
        let _ = cancelled.events.try_send(Event::Cancelled);
        true
    }

    /// Withdraws the server requests relayed to `owner`, whose session
    /// ended (a shared replica lives on): the server gets an error answer.
    pub fn withdraw_owner(&self, owner: &Owner) {
        self.withdraw_where(Withdrawal::SessionEnded, |_, asked| asked.owner.as_ref() == Some(owner));
    }

    /// Change notifications from now on; `None` once the process is gone.
    pub fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Bytes>> {
        self.notices.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|n| n.subscribe())
    }

    /// Stateless clients listening to its change notifications.
    pub fn listeners(&self) -> usize {
        self.notices.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |n| n.receiver_count())
    }

    /// Stops the process: closes stdin, then SIGTERM, then SIGKILL.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Sends one request and waits for its answer (for mcpd's own calls:
    /// pool initialization and health probes).
    pub async fn request(
        self: &Arc<Self>,
        method: &str,
        params: Option<&RawValue>,
        timeout: Duration,
    ) -> Result<Box<RawValue>, UpstreamError> {
        let id = RawValue::from_string("0".into()).expect("0 is JSON");
        let mut call = self.call(&id, method, params, Owner::gateway()).await?;
        let answer = tokio::time::timeout(timeout, async {
            loop {
                match call.next().await {
                    Event::Message(_) => continue,
                    Event::Response { bytes, .. } => return Ok(bytes),
                    Event::Failed(reason) => return Err(UpstreamError::Exited(reason)),
                    Event::Cancelled => return Err(UpstreamError::Cancelled),
                    Event::Rejected(error) => return Err(error),
                }
            }
        })
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))??;
        let refused = |error: String| UpstreamError::Refused { method: method.to_string(), error };
        let message = Message::parse(&answer).map_err(|e| refused(e.to_string()))?;
        match (message.result, message.error) {
            (Some(result), None) => Ok(result.to_owned()),
            (_, error) => Err(refused(error.map(|e| e.get().to_string()).unwrap_or_default())),
        }
    }

    /// Runs the MCP handshake as mcpd's own client; returns the server's
    /// `initialize` result.
    pub async fn initialize(self: &Arc<Self>, timeout: Duration) -> Result<Box<RawValue>, UpstreamError> {
        let params = serde_json::json!({
            "protocolVersion": crate::mcp::version::LATEST,
            "capabilities": {"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}},
            "clientInfo": {"name": "mcpd", "version": env!("CARGO_PKG_VERSION")}
        });
        let params = RawValue::from_string(params.to_string()).expect("json! is JSON");
        let result = self.request("initialize", Some(&params), timeout).await?;
        self.notify("notifications/initialized", None).await?;
        Ok(result)
    }

    async fn send(&self, line: Vec<u8>) -> Result<(), UpstreamError> {
        if self.stdin.send(line).await.is_err() {
            let reason = self.exit_reason().unwrap_or_else(|| "its input is closed".into());
            return Err(UpstreamError::Exited(reason));
        }
        Ok(())
    }

    /// Forgets request `id` and, if it was still waiting, tells the server
    /// to stop working on it; what the server asked its client on its
    /// stream is withdrawn (that client is gone from it). The request, if
    /// it was still waiting.
    fn abandon(&self, id: u64, reason: &str) -> Option<Pending> {
        let removed = self.lock().pending.remove(&id)?;
        if self.is_alive() {
            let params = format!(r#"{{"requestId":{id},"reason":{reason}}}"#);
            // Best effort: a full queue means the server is stuck anyway.
            let _ = self.stdin.try_send(jsonrpc::notification("notifications/cancelled", Some(&params)));
            tracing::debug!(server = %self.server, uid = self.uid, id, "cancelled upstream request");
        }
        self.withdraw_where(Withdrawal::ClientGone, |_, asked| asked.carrier == Some(id));
        Some(removed)
    }

    /// Takes the server requests `pick` chooses out of the table and
    /// answers each to the server with an error (see [`server_requests`]).
    /// Their ids, for whoever tells the client.
    fn withdraw_where(
        &self,
        why: Withdrawal,
        pick: impl Fn(u128, &ServerRequest) -> bool,
    ) -> Vec<(u128, ServerRequest)> {
        let withdrawn: Vec<(u128, ServerRequest)> = {
            let mut state = self.lock();
            let tokens: Vec<u128> =
                state.server_requests.iter().filter(|(t, r)| pick(**t, r)).map(|(t, _)| *t).collect();
            tokens.into_iter().filter_map(|t| state.server_requests.remove(&t).map(|r| (t, r))).collect()
        };
        if self.is_alive() {
            for (_, asked) in &withdrawn {
                // Best effort, as a cancellation: a full queue means the server is stuck.
                let _ = self.stdin.try_send(why.answer(&self.server, &asked.original));
            }
        }
        withdrawn
    }

    /// The deadline of server request `token` passed: the server gets an
    /// error answer and the client, which may still be there, a cancellation.
    async fn expire(&self, token: u128) {
        let why = Withdrawal::Timeout(self.answer_timeout);
        for (token, mut asked) in self.withdraw_where(why, |t, _| t == token) {
            asked.timer = None; // this very task: not to be aborted on the way out
            let reason = "no answer within mcpd's http.request_timeout";
            if let Some(bytes) = server_requests::cancellation(None, &self.gateway_id(token), Some(reason)) {
                self.tell_client(asked.carrier, Bytes::from(bytes)).await;
            }
        }
    }

    async fn read_stdout(
        self: Arc<Self>,
        stdout: ChildStdout,
        mut child: Child,
        mut stop: watch::Receiver<bool>,
        exit: watch::Sender<Option<String>>,
    ) {
        let mut reader = BufReader::with_capacity(64 * 1024, stdout);
        let mut line = Vec::with_capacity(4096);
        let mut stopping = false;
        // After a stop: first SIGTERM, then SIGKILL, each after STOP_GRACE.
        let mut escalation: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut terminated = false;
        loop {
            line.clear();
            tokio::select! {
                read = reader.read_until(b'\n', &mut line) => match read {
                    Ok(0) => break,
                    Ok(_) => self.on_line(&line).await,
                    Err(e) => {
                        tracing::warn!(server = %self.server, uid = self.uid, "reading server output failed: {e}");
                        break;
                    }
                },
                _ = crate::shutdown::requested(&mut stop), if !stopping => {
                    // write_stdin closes stdin now; give the server a moment to exit.
                    stopping = true;
                    escalation = Some(Box::pin(tokio::time::sleep(STOP_GRACE)));
                }
                _ = async { escalation.as_mut().expect("guarded").await }, if escalation.is_some() => {
                    if terminated {
                        let _ = child.start_kill();
                        escalation = None;
                    } else {
                        // The child is not reaped until after this loop, so its pid is still ours.
                        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                            // SAFETY: kill(2) on our own unreaped child.
                            unsafe { libc::kill(pid, libc::SIGTERM) };
                        }
                        terminated = true;
                        escalation = Some(Box::pin(tokio::time::sleep(STOP_GRACE)));
                    }
                }
            }
        }
        let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("unknown status ({e})"),
            Err(_) => {
                let _ = child.start_kill();
                "closed its output and was killed".into()
            }
        };
        let reason = status;
        if stopping {
            tracing::info!(server = %self.server, pid = ?self.pid, uid = self.uid, "MCP server process stopped ({reason})");
        } else {
            tracing::warn!(server = %self.server, pid = ?self.pid, uid = self.uid, "MCP server process exited ({reason})");
        }
        let (pending, _asked) = {
            let mut state = self.lock();
            state.exited = Some(reason.clone());
            // Nobody is left to answer the server's requests to clients.
            (std::mem::take(&mut state.pending), std::mem::take(&mut state.server_requests))
        };
        let _ = exit.send(Some(reason.clone()));
        // Listeners see the end of the stream.
        self.notices.lock().unwrap_or_else(|e| e.into_inner()).take();
        for (_, waiting) in pending {
            let _ = waiting.events.try_send(Event::Failed(reason.clone()));
        }
        if let Some(outbox) = &self.outbox {
            outbox.close();
        }
    }

    async fn on_line(&self, line: &[u8]) {
        let line = line.trim_ascii_end();
        if line.is_empty() {
            return;
        }
        let message = match Message::parse(line) {
            Ok(m) => m,
            Err(e) => {
                let preview = String::from_utf8_lossy(&line[..line.len().min(200)]);
                tracing::warn!(server = %self.server, uid = self.uid, "server wrote a line that is not JSON-RPC ({e}): {preview}");
                return;
            }
        };
        match message.kind() {
            Kind::Response => self.on_response(&message).await,
            Kind::Request if self.shared => self.on_shared_request(&message).await,
            Kind::Request => {
                let original = message.id.unwrap_or(jsonrpc::null());
                // `deliver` puts it on the newest request's stream, if any.
                let carrier = self.lock().pending.keys().next_back().copied();
                let Some((id, _)) = self.register_server_request(original, None, carrier) else {
                    let _ = self.send(routing::refusal(original.get(), message.method(), NO_RANDOM)).await;
                    return;
                };
                let bytes = jsonrpc::request(&id, message.method(), message.params.map(RawValue::get));
                self.deliver(Bytes::from(bytes)).await;
            }
            Kind::Notification => {
                if message.method() == "notifications/progress" && self.on_progress(&message).await {
                    return;
                }
                if message.method() == "notifications/cancelled" {
                    return self.on_server_cancel(&message).await;
                }
                let method = message.method();
                if method.ends_with("/list_changed") || method == "notifications/resources/updated" {
                    let notices = self.notices.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(notices) = notices.as_ref() {
                        let _ = notices.send(Bytes::copy_from_slice(line)); // no listener: nothing to do
                    }
                }
                match self.shared {
                    true => self.deliver_shared(method, Bytes::copy_from_slice(line)).await,
                    false => self.deliver(Bytes::copy_from_slice(line)).await,
                }
            }
        }
    }

    async fn on_response(&self, message: &Message<'_>) {
        let id = message.id.and_then(|i| i.get().parse::<u64>().ok());
        let waiting = id.and_then(|id| self.lock().pending.remove(&id));
        match waiting {
            Some(waiting) => {
                let bytes = jsonrpc::response(waiting.client_id.get(), message.result, message.error);
                let event = Event::Response { bytes: Bytes::from(bytes), is_error: message.error.is_some() };
                let _ = waiting.events.send(event).await;
            }
            None => {
                tracing::debug!(server = %self.server, id = message.id_text(), "answer for a request nobody waits for")
            }
        }
    }

    /// Routes a progress notification to the request whose token it carries.
    async fn on_progress(&self, message: &Message<'_>) -> bool {
        let Some(params) = message.params else {
            return false;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(params.get()) else {
            return false;
        };
        let Some(id) = value
            .get("progressToken")
            .and_then(|t| t.as_str())
            .and_then(|t| t.strip_prefix('p'))
            .and_then(|t| t.parse::<u64>().ok())
        else {
            return false;
        };
        let target = {
            let state = self.lock();
            state.pending.get(&id).and_then(|p| Some((p.events.clone(), p.progress_token.clone()?)))
        };
        let Some((events, token)) = target else {
            return false;
        };
        let Some(params) = jsonrpc::with_progress_token(params, "/progressToken", &token) else {
            return false;
        };
        let bytes = jsonrpc::notification("notifications/progress", Some(&params));
        let _ = events.send(Event::Message(Bytes::from(bytes))).await;
        true
    }

    /// The requests in flight the routing policy picks for a notification
    /// of a shared process, oldest first; the reason when it picks none.
    fn shared_targets(&self, method: &str) -> Result<Vec<mpsc::Sender<Event>>, &'static str> {
        let state = self.lock();
        let pending: Vec<&Pending> = state.pending.values().collect();
        let owners: Vec<&Owner> = pending.iter().map(|p| &p.owner).collect();
        match routing::destination(&owners, method, false) {
            Destination::Newest(i) => Ok(vec![pending[i].events.clone()]),
            Destination::EachOwner(each) => Ok(each.into_iter().map(|i| pending[i].events.clone()).collect()),
            Destination::Ambiguous => Err(routing::AMBIGUOUS),
            Destination::Nobody => Err(routing::NOBODY),
        }
    }

    /// The one request in flight the policy picks for a shared process's
    /// request to a client: its key, events and owner.
    fn shared_target(&self, method: &str) -> Result<(u64, mpsc::Sender<Event>, Owner), &'static str> {
        let state = self.lock();
        let pending: Vec<(&u64, &Pending)> = state.pending.iter().collect();
        let owners: Vec<&Owner> = pending.iter().map(|(_, p)| &p.owner).collect();
        match routing::destination(&owners, method, true) {
            Destination::Newest(i) => Ok((*pending[i].0, pending[i].1.events.clone(), pending[i].1.owner.clone())),
            // Not for requests; should the policy change, nobody gets one.
            Destination::EachOwner(_) | Destination::Ambiguous => Err(routing::AMBIGUOUS),
            Destination::Nobody => Err(routing::NOBODY),
        }
    }

    /// A shared process's notification, to the client(s) the policy picks.
    async fn deliver_shared(&self, method: &str, bytes: Bytes) {
        match self.shared_targets(method) {
            Ok(targets) => {
                for events in targets {
                    // A request that just ended: its client no longer listens.
                    let _ = events.send(Event::Message(bytes.clone())).await;
                }
            }
            Err(why) => routing::count_unroutable(&self.server, method, false, why),
        }
    }

    /// Remembers a request the server sends to a client (`owner`: who may
    /// answer it; `carrier`: the client request whose stream takes it) and
    /// returns the gateway id (JSON) it travels under, with the random part
    /// that names it; `None` when no randomness is to be had. It is
    /// withdrawn if no answer comes within `http.request_timeout`.
    fn register_server_request(
        &self,
        original: &RawValue,
        owner: Option<Owner>,
        carrier: Option<u64>,
    ) -> Option<(String, u128)> {
        let mut random = [0u8; 16];
        if let Err(error) = getrandom::fill(&mut random) {
            tracing::error!(server = %self.server, uid = self.uid, "no random id for a server request: {error}");
            return None;
        }
        let token = u128::from_be_bytes(random);
        let asked = ServerRequest { original: original.to_owned(), owner, carrier, timer: None };
        self.lock().server_requests.insert(token, asked);
        let (me, timeout) = (self.me.clone(), self.answer_timeout);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(process) = me.upgrade() {
                process.expire(token).await;
            }
        });
        // Answered already? Then the timer goes now, else with the request.
        match self.lock().server_requests.get_mut(&token) {
            Some(asked) => asked.timer = Some(timer.abort_handle()),
            None => timer.abort(),
        }
        Some((self.gateway_id(token), token))
    }

    /// The gateway id (JSON) a server request named by `token` travels under.
    fn gateway_id(&self, token: u128) -> String {
        format!("\"mcpd-{}-{token:032x}\"", self.uid)
    }

    /// The server withdraws one of its requests to a client: the client
    /// asked hears of it under the id it knows, on the stream that carried
    /// the request; nobody else does (they never saw it). A cancellation
    /// naming no waiting request (answered, withdrawn already) goes nowhere.
    async fn on_server_cancel(&self, message: &Message<'_>) {
        let named = server_requests::cancelled_id(message.params);
        let withdrawn = named.and_then(|named| {
            let mut state = self.lock();
            let token = state.server_requests.iter().find(|(_, r)| r.is_named_by(&named)).map(|(t, _)| *t)?;
            state.server_requests.remove(&token).map(|asked| (token, asked))
        });
        let Some((token, asked)) = withdrawn else {
            tracing::debug!(server = %self.server, uid = self.uid, "server cancelled no waiting request of its own; dropped");
            return;
        };
        match server_requests::cancellation(message.params, &self.gateway_id(token), None) {
            Some(bytes) => self.tell_client(asked.carrier, Bytes::from(bytes)).await,
            None => tracing::debug!(server = %self.server, uid = self.uid, "server cancellation with unusable params"),
        }
    }

    /// Tells the client a server request went to about it: on `carrier`'s
    /// stream while that request is in flight; else, on a process of one
    /// session, wherever [`Self::deliver`] puts it; on a shared process
    /// nowhere (that client's stream is gone, and no other is its).
    async fn tell_client(&self, carrier: Option<u64>, bytes: Bytes) {
        let events = carrier.and_then(|id| self.lock().pending.get(&id).map(|p| p.events.clone()));
        let bytes = match events {
            Some(events) => match events.send(Event::Message(bytes)).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(Event::Message(bytes))) => bytes,
                Err(_) => return,
            },
            None => bytes,
        };
        match self.shared {
            true => routing::count_unroutable(&self.server, "notifications/cancelled", false, routing::NOBODY),
            false => self.deliver(bytes).await,
        }
    }

    /// A shared process's request to a client: relayed to the one client
    /// the policy picks (who alone may answer it), else answered at once so
    /// the server does not wait.
    async fn on_shared_request(&self, message: &Message<'_>) {
        let method = message.method();
        let original = message.id.unwrap_or(jsonrpc::null());
        let target = self.shared_target(method);
        let why = match target {
            Ok((carrier, events, owner)) => match self.register_server_request(original, Some(owner), Some(carrier)) {
                Some((id, token)) => {
                    let bytes = jsonrpc::request(&id, method, message.params.map(RawValue::get));
                    if events.send(Event::Message(Bytes::from(bytes))).await.is_ok() {
                        return;
                    }
                    self.lock().server_requests.remove(&token);
                    routing::NOBODY
                }
                None => NO_RANDOM,
            },
            Err(why) => why,
        };
        routing::count_unroutable(&self.server, method, true, why);
        let _ = self.send(routing::refusal(original.get(), method, why)).await;
    }

    /// Hands a server-initiated message to a listening client: the newest
    /// request in flight (a server that speaks mid-call almost always speaks
    /// about that call, and its stream keeps the order), else the session's
    /// GET stream or backlog.
    async fn deliver(&self, bytes: Bytes) {
        let target = self.lock().pending.values().next_back().map(|p| p.events.clone());
        let bytes = match target {
            Some(events) => match events.send(Event::Message(bytes)).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(Event::Message(bytes))) => bytes,
                Err(_) => return,
            },
            None => bytes,
        };
        match &self.outbox {
            Some(outbox) => outbox.push(bytes),
            None => {
                tracing::debug!(server = %self.server, uid = self.uid, "no client to receive a server message; dropped")
            }
        }
    }
}

/// What a gateway id `"mcpd-<uid>-<32 hex digits>"` names: the id mcpd
/// gave a server's request, which the client's answer carries back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayId {
    /// The process the request came from.
    pub uid: u64,
    /// Its random part.
    token: u128,
}

/// The [`GatewayId`] an answer's id names, if it is one.
pub fn parse_gateway_id(id: Option<&RawValue>) -> Option<GatewayId> {
    let id = serde_json::from_str::<&str>(id?.get()).ok()?;
    let (uid, token) = id.strip_prefix("mcpd-")?.split_once('-')?;
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(GatewayId { uid: uid.parse().ok()?, token: u128::from_str_radix(token, 16).ok()? })
}

/// A forwarded request waiting for its answer.
pub struct Call {
    process: Arc<StdioProcess>,
    id: u64,
    events: mpsc::Receiver<Event>,
    done: bool,
}

impl Call {
    /// The next thing the server sends for this request; after a
    /// `Response`, `Failed` or `Cancelled` there is nothing more.
    pub async fn next(&mut self) -> Event {
        let event = match self.events.recv().await {
            Some(event) => event,
            // Only a process that exited (which says why first) or a
            // client's cancellation lets go of a waiting request.
            None => match self.process.exit_reason() {
                Some(reason) => Event::Failed(reason),
                None => Event::Cancelled,
            },
        };
        if matches!(event, Event::Response { .. } | Event::Failed(_) | Event::Cancelled) {
            self.done = true;
        }
        event
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.process.abandon(self.id, "\"the client went away or the request timed out\"");
        }
    }
}

async fn write_stdin(stdin: ChildStdin, mut lines: mpsc::Receiver<Vec<u8>>, mut stop: watch::Receiver<bool>) {
    let mut writer = BufWriter::with_capacity(64 * 1024, stdin);
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                if writer.write_all(&line).await.is_err() || writer.write_all(b"\n").await.is_err() {
                    break;
                }
                // Batch what is already queued into one write.
                while let Ok(line) = lines.try_recv() {
                    if writer.write_all(&line).await.is_err() || writer.write_all(b"\n").await.is_err() {
                        return;
                    }
                }
                if writer.flush().await.is_err() {
                    break;
                }
            }
            _ = crate::shutdown::requested(&mut stop) => break,
        }
    }
    // Dropping the writer closes stdin: the MCP stdio way of saying "exit".
}

async fn log_stderr(stderr: tokio::process::ChildStderr, server: Arc<str>, pid: Option<u32>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "mcpd::server_stderr", server = %server, pid = ?pid, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("JSON")
    }

    #[test]
    fn gateway_ids_carry_the_process_and_128_random_bits() {
        let parsed = parse_gateway_id(Some(&id(&format!("\"mcpd-12-{:032x}\"", u128::MAX - 1))));
        assert_eq!(parsed, Some(GatewayId { uid: 12, token: u128::MAX - 1 }));
        // Old-style sequence numbers and other shapes name nothing.
        for other in [r#""mcpd-12-3""#, r#""mcpd-12-""#, "7", r#""mcpd-x-00000000000000000000000000000001""#] {
            assert_eq!(parse_gateway_id(Some(&id(other))), None, "{other}");
        }
        let signed = format!("\"mcpd-1-+{}\"", "0".repeat(31));
        assert_eq!(parse_gateway_id(Some(&id(&signed))), None, "only hex digits");
    }
}
