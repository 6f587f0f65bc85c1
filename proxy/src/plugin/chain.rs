//! A route's plugin chain: the plugins `[[server.NAME.plugins]]` lists, in
//! order, each hot-swappable, and what their decisions add up to.
//!
//! A plugin's changes (params, principal, headers) are applied before the
//! next plugin runs; the first `reject` or `respond` ends the chain. A failed
//! call (trap, CPU timeout, memory, oversized output) is handled by that
//! entry's `on_error`: "closed" rejects the request with 503, "open" carries
//! on as if the plugin had said `proceed`.
//!
//! Before calling a plugin, the chain asks it for a decision kept for
//! reuse ([`super::reuse`]); only without one is the plugin called. Lookups
//! use borrowed views ([`super::view`]): the message is copied into a WIT
//! record only for a call, or when a decision changes it.

use super::bindings::{
    Changes, Decision, Header, HttpReply, McpMessage, MessageKind, MessageParts, PluginContext, Rejection, RpcError,
};
use super::loaded::{self, Hook, Limits, LoadedPlugin};
use super::reuse::{Grants, Reusable, Subject};
use super::store::PluginStore;
use super::subscription::{MethodBit, Subscription};
use super::view::{Headers, HttpRequestView, MessageView};
use super::{PluginError, engine};
use crate::config::{OnError, PluginSettings};
use crate::metrics;
use arc_swap::{ArcSwap, Guard};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// One configured plugin whose loaded form can be replaced while running.
pub struct PluginSlot {
    /// Swapped whole on reload; reading it takes no lock and, in the
    /// common case, no reference count (messages read it per plugin).
    current: ArcSwap<LoadedPlugin>,
    /// What `current` is called for, answered without loading it.
    subscription: Subscription,
    pub settings: PluginSettings,
    context: Arc<PluginContext>,
    cache_dir: Option<PathBuf>,
    /// Modification time and length of the file last loaded (or tried).
    seen: Mutex<Option<(SystemTime, u64)>>,
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl PluginSlot {
    pub async fn load(
        settings: PluginSettings,
        store: Arc<PluginStore>,
        cache_dir: Option<PathBuf>,
    ) -> Result<Arc<PluginSlot>, PluginError> {
        let label = settings.path.display().to_string();
        let context = PluginContext::new(&settings, store);
        let stamp = file_stamp(&settings.path);
        let loaded = load_file(&settings, &context, cache_dir.clone()).await;
        metrics::PLUGIN_LOADS.with_label_values(&[label.as_str(), if loaded.is_ok() { "ok" } else { "failed" }]).inc();
        let loaded = loaded?;
        tracing::info!(plugin = %loaded.name, version = %loaded.version, path = %label, "plugin loaded");
        let slot = PluginSlot {
            current: ArcSwap::new(loaded),
            subscription: Subscription::default(),
            settings,
            context,
            cache_dir,
            seen: Mutex::new(stamp),
        };
        slot.summarise();
        Ok(Arc::new(slot))
    }

    /// Renews the subscription from the current version.
    fn summarise(&self) {
        let plugin = self.current();
        self.subscription.update(
            |hook| plugin.hooks.contains(hook.flag()),
            |hook, method| self.sees(&plugin, hook, method),
            plugin.reads,
        );
    }

    /// Whether the current version is called at `hook` for a message
    /// with `method` (see [`Self::sees`]); `bit` is `method`'s.
    fn called_for(&self, hook: Hook, method: Option<&str>, bit: MethodBit) -> bool {
        match self.subscription.sees(hook, bit) {
            Some(seen) => seen,
            None => self.sees(&self.loaded(), hook, method),
        }
    }

    /// Whether `plugin` (this slot's current version) is called at `hook`
    /// for a message with `method`: the plugin wants it and the route's
    /// `methods` for this entry admit it.
    fn sees(&self, plugin: &LoadedPlugin, hook: Hook, method: Option<&str>) -> bool {
        plugin.wants(hook, method) && loaded::admits(&self.settings.methods, method)
    }

    /// The current version, held for one message's pass: cheaper than
    /// [`Self::current`], and a reload meanwhile does not affect it.
    fn loaded(&self) -> Guard<Arc<LoadedPlugin>> {
        self.current.load()
    }

    pub fn current(&self) -> Arc<LoadedPlugin> {
        self.current.load_full()
    }

    /// Reloads the plugin if its file changed since the last attempt. Calls
    /// in flight finish on the old version; a plugin that fails to load
    /// leaves the old one in place. `None` when the file did not change.
    pub async fn reload_if_changed(&self) -> Option<Result<(), PluginError>> {
        let stamp = file_stamp(&self.settings.path);
        {
            let mut seen = self.seen.lock().ok()?;
            if stamp.is_none() || *seen == stamp {
                return None;
            }
            *seen = stamp;
        }
        Some(self.reload().await)
    }

    /// Loads the file again and swaps it in, or keeps the old plugin.
    pub async fn reload(&self) -> Result<(), PluginError> {
        let old = self.current();
        match load_file(&self.settings, &self.context, self.cache_dir.clone()).await {
            Ok(new) => {
                tracing::info!(plugin = %new.name, version = %new.version, previous = %old.version, "plugin reloaded");
                metrics::PLUGIN_LOADS.with_label_values(&[new.name.as_str(), "ok"]).inc();
                self.current.store(new);
                self.summarise();
                Ok(())
            }
            Err(error) => {
                tracing::error!(plugin = %old.name, "plugin reload failed, keeping the running version: {error}");
                metrics::PLUGIN_LOADS.with_label_values(&[old.name.as_str(), "failed"]).inc();
                if let Ok(mut name) = self.context.name.write() {
                    *name = old.name.clone();
                }
                Err(error)
            }
        }
    }
}

async fn load_file(
    settings: &PluginSettings,
    context: &Arc<PluginContext>,
    cache_dir: Option<PathBuf>,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    let component = engine::compile_off_thread(settings.path.clone(), cache_dir).await?;
    let label = settings.path.display().to_string();
    LoadedPlugin::load(&component, Arc::clone(context), Limits::from(settings), &label).await
}

/// The outcome of running a chain.
#[derive(Debug)]
pub enum Verdict {
    Proceed,
    Reject(Rejection),
    Respond(String),
    Reply(HttpReply),
}

/// Which request headers a chain's plugins see.
#[derive(Debug, Default, Clone)]
pub enum HeaderSelection {
    #[default]
    None,
    All,
    /// Parsed names: most are standard ones, which compare as numbers.
    Named(Vec<http::HeaderName>),
}

impl HeaderSelection {
    pub fn wants(&self, name: &http::HeaderName) -> bool {
        match self {
            HeaderSelection::None => false,
            HeaderSelection::All => true,
            HeaderSelection::Named(names) => names.contains(name),
        }
    }
}

/// A route's plugins, in order.
#[derive(Default, Clone)]
pub struct Chain {
    entries: Vec<Arc<PluginSlot>>,
    /// The union of the headers its plugins see.
    pub headers: HeaderSelection,
}

impl Chain {
    pub fn new(entries: Vec<Arc<PluginSlot>>) -> Chain {
        let headers = match entries.is_empty() {
            true => HeaderSelection::None,
            false if entries.iter().any(|e| e.settings.headers.iter().any(|h| h == "*")) => HeaderSelection::All,
            false => {
                let configured = entries.iter().flat_map(|e| e.settings.headers.iter().map(String::as_str));
                // A name that is not a valid header name matches no header.
                let mut names: Vec<http::HeaderName> = crate::config::PLUGIN_HEADERS
                    .iter()
                    .copied()
                    .chain(configured)
                    .filter_map(|name| http::HeaderName::from_bytes(name.as_bytes()).ok())
                    .collect();
                names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                names.dedup();
                HeaderSelection::Named(names)
            }
        };
        Chain { entries, headers }
    }

    pub fn slots(&self) -> &[Arc<PluginSlot>] {
        &self.entries
    }

    /// True when any plugin subscribed to `hook` (so the caller can skip
    /// building the hook's input).
    pub fn wants(&self, hook: Hook) -> bool {
        self.entries.iter().any(|slot| slot.subscription.has(hook))
    }

    /// Whether a request or response hook reads the HTTP request's headers
    /// (so the front must keep a copy of them for the messages).
    pub fn messages_read_headers(&self) -> bool {
        self.entries.iter().any(|slot| {
            let subscription = &slot.subscription;
            (subscription.has(Hook::Request) || subscription.has(Hook::Response))
                && subscription.reads().contains(MessageParts::HEADERS)
        })
    }

    /// What the plugins whose `hook` sees a message with `method` read of
    /// it; `None` when no plugin sees it, so the caller can skip it.
    pub fn reads(&self, hook: Hook, method: Option<&str>) -> Option<MessageParts> {
        let bit = MethodBit::of(method);
        self.entries.iter().fold(None, |parts, slot| match slot.called_for(hook, method, bit) {
            true => Some(parts.unwrap_or(MessageParts::empty()) | slot.subscription.reads()),
            false => parts,
        })
    }

    /// Runs the HTTP-request hook over `request`; plugins' grants go to
    /// `principal` and `scopes`. The request's headers come back when a
    /// plugin changed them (`None`: as they came, and none was copied).
    pub async fn on_http_request(
        &self,
        request: HttpRequestView<'_>,
        principal: &mut Option<Arc<str>>,
        scopes: &mut Arc<[String]>,
    ) -> (Verdict, Option<Vec<Header>>) {
        let mut changed: Option<Vec<Header>> = None;
        // One clock read per pass, renewed after each call (calls take time).
        let mut now = Instant::now();
        for slot in &self.entries {
            if !slot.subscription.has(Hook::HttpRequest) {
                continue;
            }
            let plugin = slot.loaded();
            let headers = changed.as_deref().map_or(request.headers, Headers::Records);
            let seen = HttpRequestView { headers, ..request };
            let reused = plugin.reused(Hook::HttpRequest, &seen, now).await;
            let result = match reused.as_deref() {
                // The usual reused sign-in: its grants are shared, not copied.
                Some(entry) if let Decision::Modify(changes) = &entry.decision => {
                    entry.grants.apply(principal, scopes);
                    change_headers(&mut changed, request.headers, changes.headers.clone());
                    continue;
                }
                Some(entry) => Ok(entry.decision.clone()),
                None => {
                    let record = seen.to_request();
                    let call = plugin.call(Hook::HttpRequest, Some(&record), None);
                    // Boxed: see on_message.
                    let called = Box::pin(timed(&plugin, Hook::HttpRequest, call)).await;
                    now = Instant::now();
                    kept(&plugin, Hook::HttpRequest, &seen, called)
                }
            };
            match settle(slot, &plugin, result) {
                Step::Next(None) => {}
                Step::Next(Some(changes)) => {
                    Grants::of(&changes).apply(principal, scopes);
                    change_headers(&mut changed, request.headers, changes.headers);
                }
                Step::Stop(verdict) => return (verdict, changed),
            }
        }
        (Verdict::Proceed, changed)
    }

    /// Runs the request or response hook over `view`. The message plugins
    /// saw comes back when one was called or changed it (`None`: nothing
    /// changed, and no copy of the message was made).
    pub async fn on_message(&self, hook: Hook, view: &MessageView<'_>) -> (Verdict, Option<McpMessage>) {
        let mut owned: Option<McpMessage> = None;
        // One clock read per pass, renewed after each call (calls take time).
        let mut now = Instant::now();
        // Plugins cannot change a message's method.
        let bit = MethodBit::of(view.method);
        for slot in &self.entries {
            if !slot.called_for(hook, view.method, bit) {
                continue;
            }
            let plugin = slot.loaded();
            let reused = match &owned {
                None => plugin.reused(hook, view, now).await,
                Some(message) => plugin.reused(hook, message, now).await,
            };
            let result = match reused {
                Some(entry) => Ok(entry.decision.clone()),
                None => {
                    let message = owned.get_or_insert_with(|| view.to_message());
                    // Copying text into the plugin is most of a call's cost:
                    // leave out what it does not read, and put it back after.
                    let hidden = Hidden::take(message, plugin.reads);
                    // Boxed: a call's future is large, and kept inline it would
                    // be copied with this one on every message, reused or not.
                    let called = Box::pin(timed(&plugin, hook, plugin.call(hook, None, Some(message)))).await;
                    now = Instant::now();
                    hidden.restore(message);
                    kept(&plugin, hook, &*message, called)
                }
            };
            match settle(slot, &plugin, result) {
                Step::Next(None) => {}
                Step::Next(Some(changes)) => apply(owned.get_or_insert_with(|| view.to_message()), changes),
                Step::Stop(verdict) => return (verdict, owned),
            }
        }
        (Verdict::Proceed, owned)
    }
}

/// Applies a plugin's changes to the message the next plugin sees.
fn apply(message: &mut McpMessage, changes: Changes) {
    if changes.params.is_some() {
        message.params = changes.params;
        // The next plugin must see the name the new params carry.
        if message.kind == MessageKind::Request {
            message.name = crate::mcp::subject::of_text(
                message.method.as_deref().unwrap_or_default(),
                message.params.as_deref().unwrap_or_default(),
            )
            .map(Cow::into_owned);
        }
    }
    if changes.principal.is_some() {
        message.principal = changes.principal;
    }
    if let Some(granted) = changes.scopes {
        message.scopes = granted;
    }
    merge_headers(&mut message.headers, changes.headers);
}

/// The parts of a message a plugin does not read, held aside during its call.
struct Hidden {
    params: Option<Option<String>>,
    error: Option<Option<String>>,
    session: Option<Option<String>>,
    headers: Option<Vec<Header>>,
}

impl Hidden {
    fn take(message: &mut McpMessage, reads: MessageParts) -> Hidden {
        let (params, headers, session) = (
            !reads.contains(MessageParts::PARAMS),
            !reads.contains(MessageParts::HEADERS),
            !reads.contains(MessageParts::SESSION),
        );
        Hidden {
            params: params.then(|| message.params.take()),
            error: params.then(|| message.error.take()),
            session: session.then(|| message.session.take()),
            headers: headers.then(|| std::mem::take(&mut message.headers)),
        }
    }

    /// Puts the parts back; the plugin's changes are applied after this.
    fn restore(self, message: &mut McpMessage) {
        if let Some(params) = self.params {
            message.params = params;
        }
        if let Some(error) = self.error {
            message.error = error;
        }
        if let Some(session) = self.session {
            message.session = session;
        }
        if let Some(headers) = self.headers {
            message.headers = headers;
        }
    }
}

/// The decision of a call, kept for reuse first when the call asked for
/// it. `subject` is what the plugin was shown, before any changes apply.
fn kept(
    plugin: &LoadedPlugin,
    hook: Hook,
    subject: &impl Subject,
    called: Result<(Decision, Option<Reusable>), PluginError>,
) -> Result<Decision, PluginError> {
    let (decision, reusable) = called?;
    if let Some(reusable) = reusable {
        plugin.keep(hook, subject, &decision, reusable);
    }
    Ok(decision)
}

async fn timed<T>(
    plugin: &LoadedPlugin,
    hook: Hook,
    call: impl std::future::Future<Output = Result<(Decision, T), PluginError>>,
) -> Result<(Decision, T), PluginError> {
    let started = Instant::now();
    let result = call.await;
    plugin.metrics.seconds[hook.index()].observe(started.elapsed().as_secs_f64());
    // Indexes into loaded::OUTCOMES.
    let outcome = match result.as_ref().map(|(decision, _)| decision) {
        Ok(Decision::Proceed) => 0,
        Ok(Decision::Modify(_)) => 1,
        Ok(Decision::Reject(_)) => 2,
        Ok(Decision::Respond(_)) => 3,
        Ok(Decision::Reply(_)) => 4,
        Err(_) => 5,
    };
    plugin.metrics.calls[hook.index()][outcome].inc();
    result
}

enum Step {
    Next(Option<Changes>),
    Stop(Verdict),
}

fn settle(slot: &PluginSlot, plugin: &LoadedPlugin, result: Result<Decision, PluginError>) -> Step {
    match result {
        Ok(Decision::Proceed) => Step::Next(None),
        Ok(Decision::Modify(changes)) => Step::Next(Some(changes)),
        Ok(Decision::Reject(rejection)) => Step::Stop(Verdict::Reject(rejection)),
        Ok(Decision::Respond(result)) => Step::Stop(Verdict::Respond(result)),
        Ok(Decision::Reply(reply)) => Step::Stop(Verdict::Reply(reply)),
        Err(error) => {
            metrics::PLUGIN_FAILURES.with_label_values(&[plugin.name.as_str(), error.kind()]).inc();
            match slot.settings.on_error {
                OnError::Open => {
                    tracing::warn!(plugin = %plugin.name, "plugin failed, continuing (on_error = \"open\"): {error}");
                    Step::Next(None)
                }
                OnError::Closed => {
                    tracing::warn!(plugin = %plugin.name, "plugin failed, refusing the request (on_error = \"closed\"): {error}");
                    Step::Stop(Verdict::Reject(Rejection {
                        status: 503,
                        error: RpcError {
                            code: crate::mcp::errors::INTERNAL_ERROR as i32,
                            message: format!("request refused: {error}"),
                            data: None,
                        },
                        headers: vec![Header { name: "retry-after".into(), value: "1".into() }],
                    }))
                }
            }
        }
    }
}

/// Applies a plugin's header changes to the HTTP request's headers, copying
/// them from the request the first time one changes.
fn change_headers(changed: &mut Option<Vec<Header>>, request: Headers<'_>, changes: Vec<Header>) {
    if !changes.is_empty() {
        merge_headers(changed.get_or_insert_with(|| request.to_vec()), changes);
    }
}

fn merge_headers(headers: &mut Vec<Header>, changes: Vec<Header>) {
    for change in changes {
        let name = change.name.to_ascii_lowercase();
        headers.retain(|h| h.name != name);
        headers.push(Header { name, value: change.value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::Direction;

    fn message() -> McpMessage {
        McpMessage {
            direction: Direction::ClientToServer,
            kind: MessageKind::Request,
            method: Some("tools/call".into()),
            id: Some("1".into()),
            name: Some("echo".into()),
            params: Some(r#"{"name":"echo"}"#.into()),
            error: None,
            session: Some("s1".into()),
            principal: Some("ada".into()),
            scopes: vec!["mcp:read".into()],
            client_address: "127.0.0.1".into(),
            headers: vec![Header { name: "x-user".into(), value: "ada".into() }],
            route: "fx".into(),
        }
    }

    #[test]
    fn a_plugin_gets_only_the_parts_it_reads_and_the_next_gets_them_back() {
        let mut seen = message();
        let hidden = Hidden::take(&mut seen, MessageParts::SESSION);
        assert_eq!((seen.params.as_deref(), seen.headers.len()), (None, 0), "params and headers left out");
        assert_eq!((seen.session.as_deref(), seen.name.as_deref()), (Some("s1"), Some("echo")), "always there");
        hidden.restore(&mut seen);
        assert_eq!(format!("{seen:?}"), format!("{:?}", message()), "all put back");
        let hidden = Hidden::take(&mut seen, MessageParts::all());
        assert_eq!(format!("{seen:?}"), format!("{:?}", message()), "a plugin that reads all gets all");
        hidden.restore(&mut seen);
    }
}
