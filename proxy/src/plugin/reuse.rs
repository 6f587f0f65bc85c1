//! Reusing plugin decisions (`host.reuse-decision` in the WIT): a hook call
//! may say that its decision holds for every message that agrees with this
//! one on some parts (its `vary`), for a while. mcpd keeps such decisions
//! per loaded plugin and answers later messages with them, repeating what
//! the call did that must happen once per message (its metric updates and
//! token-bucket takes), without entering WebAssembly.
//!
//! This module owns the cache of one loaded plugin, the key a message or
//! HTTP request makes under a `vary`, and repeating a kept decision's
//! effects. It does not decide when hooks run ([`super::chain`]) or record
//! what a call does (the host imports in [`super::bindings`] fill
//! [`Recording`]).
//!
//! Why a cache keyed by exact bytes and not by a hash: a collision would
//! hand one caller another's decision (an auth plugin's principal), so a
//! key is the parts themselves, length-prefixed, and equality is exact.

use super::bindings::{Changes, Decision, HttpRequest, McpMessage, PluginContext, Reuse, Vary};
use super::loaded::Hook;
use super::view::{Headers, HttpRequestView, MessageView};
use dashmap::DashMap;
use std::cell::RefCell;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The longest a decision is kept, whatever the plugin asks.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// Distinct `vary`s one hook of a plugin may use (each is a lookup per message).
const MAX_SPECS: usize = 8;

/// Longer keys (a `vary` on a large params) are not kept.
const MAX_KEY: usize = 16 << 10;

/// A token-bucket take a call made, repeated by each reuse.
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    /// The store key, already namespaced by plugin.
    pub key: String,
    pub capacity: u64,
    pub period_ms: u64,
    pub cost: u64,
}

/// A metric update by name (`counter-add`, `histogram-observe`): name,
/// labels, value.
pub type Named<V> = (String, Vec<(String, String)>, V);

/// What a call did that each reuse of its decision must do again.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub series_adds: Vec<(u32, u64)>,
    pub series_observes: Vec<(u32, f64)>,
    pub counters: Vec<Named<u64>>,
    pub histograms: Vec<Named<f64>>,
    pub takes: Vec<Take>,
    /// The call did something a reuse could not repeat: wrote to the store,
    /// or had a take refused or failed (its decision then depends on it).
    pub unrepeatable: bool,
}

/// What one hook call asked for and did, recorded by the host imports.
#[derive(Debug, Default)]
pub struct Recording {
    pub reuse: Option<Reuse>,
    pub effects: Effects,
}

impl Recording {
    /// Starts a call afresh.
    pub fn clear(&mut self) {
        self.reuse = None;
        let effects = &mut self.effects;
        effects.series_adds.clear();
        effects.series_observes.clear();
        effects.counters.clear();
        effects.histograms.clear();
        effects.takes.clear();
        effects.unrepeatable = false;
    }

    /// What a reuse needs, when the call asked for one that can be honoured.
    pub fn reusable(&mut self) -> Option<Reusable> {
        let reuse = self.reuse.take()?;
        if self.effects.unrepeatable || reuse.ttl_ms == 0 {
            return None;
        }
        Some(Reusable { reuse, effects: std::mem::take(&mut self.effects) })
    }
}

/// A call's request to reuse its decision, with the effects to repeat.
#[derive(Debug)]
pub struct Reusable {
    pub reuse: Reuse,
    pub effects: Effects,
}

/// The parts a `vary` names (and the headers), in the order keys hold them.
pub struct Spec {
    vary: Vary,
    headers: Vec<String>,
}

impl Spec {
    fn matches(&self, reuse: &Reuse) -> bool {
        self.vary == reuse.vary && self.headers == reuse.headers
    }
}

/// What a key is built from: a message or an HTTP request.
pub trait Subject {
    fn write_key(&self, spec: &Spec, key: &mut Key);
}

/// A key under construction: each part length-prefixed, so no two
/// different sequences of parts make the same bytes.
pub struct Key(Vec<u8>);

impl Key {
    fn part(&mut self, part: Option<&str>) {
        match part {
            None => self.0.extend_from_slice(&u32::MAX.to_le_bytes()),
            Some(text) => {
                self.0.extend_from_slice(&(text.len() as u32).to_le_bytes());
                self.0.extend_from_slice(text.as_bytes());
            }
        }
    }

    fn parts<'a>(&mut self, parts: impl Iterator<Item = &'a str>) {
        let mark = self.0.len();
        self.0.extend_from_slice(&0u32.to_le_bytes());
        let mut count = 0u32;
        for part in parts {
            self.part(Some(part));
            count += 1;
        }
        self.0[mark..mark + 4].copy_from_slice(&count.to_le_bytes());
    }

    /// Every value of each named header, in order; none is a value too.
    fn headers(&mut self, names: &[String], headers: Headers<'_>) {
        for name in names {
            self.parts(headers.values(name));
        }
    }
}

impl Subject for MessageView<'_> {
    fn write_key(&self, spec: &Spec, key: &mut Key) {
        key.0.push(self.direction as u8);
        key.0.push(self.kind as u8);
        key.part(self.method);
        let vary = spec.vary;
        if vary.contains(Vary::NAME) {
            key.part(self.name.as_deref());
        }
        if vary.contains(Vary::PARAMS) {
            key.part(self.params);
            key.part(self.error);
        }
        if vary.contains(Vary::PRINCIPAL) {
            key.part(self.principal);
        }
        if vary.contains(Vary::SCOPES) {
            key.parts(self.scopes.iter().map(String::as_str));
        }
        if vary.contains(Vary::CLIENT_ADDRESS) {
            key.part(Some(self.client_address));
        }
        if vary.contains(Vary::SESSION) {
            key.part(self.session);
        }
        key.headers(&spec.headers, Headers::Records(self.headers));
    }
}

impl Subject for McpMessage {
    fn write_key(&self, spec: &Spec, key: &mut Key) {
        self.view().write_key(spec, key);
    }
}

impl Subject for HttpRequestView<'_> {
    fn write_key(&self, spec: &Spec, key: &mut Key) {
        key.part(Some(self.method));
        if spec.vary.contains(Vary::PATH) {
            key.part(Some(self.path));
        }
        if spec.vary.contains(Vary::CLIENT_ADDRESS) {
            key.part(Some(self.client_address));
        }
        key.headers(&spec.headers, self.headers);
    }
}

impl Subject for HttpRequest {
    fn write_key(&self, spec: &Spec, key: &mut Key) {
        self.view().write_key(spec, key);
    }
}

/// A kept decision.
pub struct Entry {
    pub decision: Decision,
    /// A kept `modify`'s principal and scopes, shared: applying them to
    /// each request it is reused for copies nothing.
    pub grants: Grants,
    expires: Instant,
    effects: Effects,
}

/// The principal and scopes a decision grants, when it does.
#[derive(Debug, Default)]
pub struct Grants {
    pub principal: Option<Arc<str>>,
    pub scopes: Option<Arc<[String]>>,
}

impl Grants {
    /// What `changes` grant, shared.
    pub fn of(changes: &Changes) -> Grants {
        Grants {
            principal: changes.principal.as_deref().map(Arc::from),
            scopes: changes.scopes.as_deref().map(Arc::from),
        }
    }

    /// Gives a caller what these grant; what they leave out stays as it was.
    pub fn apply(&self, principal: &mut Option<Arc<str>>, scopes: &mut Arc<[String]>) {
        if self.principal.is_some() {
            principal.clone_from(&self.principal);
        }
        if let Some(granted) = &self.scopes {
            *scopes = Arc::clone(granted);
        }
    }
}

impl Entry {
    /// Does again what the call did once per message. `false` when a take
    /// is refused or fails: the tokens taken before it are given back and
    /// the plugin must be asked (the bucket may have run dry).
    pub async fn repeat(&self, context: &PluginContext) -> bool {
        let effects = &self.effects;
        for (done, take) in effects.takes.iter().enumerate() {
            let taken = context.store.take(&take.key, take.capacity, take.period_ms, take.cost).await;
            if !taken.is_ok_and(|bucket| bucket.allowed) {
                for earlier in &effects.takes[..done] {
                    // A failed give-back leaves a token spent: the bucket
                    // errs towards refusing, never towards letting through.
                    let _ =
                        context.store.give_back(&earlier.key, earlier.capacity, earlier.period_ms, earlier.cost).await;
                }
                return false;
            }
        }
        for &(handle, value) in &effects.series_adds {
            context.series.add(handle, value);
        }
        for &(handle, value) in &effects.series_observes {
            context.series.observe(handle, value);
        }
        if !effects.counters.is_empty() || !effects.histograms.is_empty() {
            let plugin = context.name();
            for (name, labels, value) in &effects.counters {
                crate::metrics::plugin_counter(&plugin, name, labels, *value);
            }
            for (name, labels, value) in &effects.histograms {
                crate::metrics::plugin_histogram(&plugin, name, labels, *value);
            }
        }
        true
    }
}

thread_local! {
    /// Reused for every lookup, so building a key allocates nothing.
    static KEY: RefCell<Key> = RefCell::new(Key(Vec::with_capacity(256)));
}

/// One loaded plugin's kept decisions, for all its hooks.
pub struct DecisionCache {
    capacity: usize,
    /// Per hook ([`Hook::index`]): the `vary`s its calls have asked for.
    specs: [RwLock<Vec<Spec>>; 3],
    /// foldhash, seeded per map: keys hold what clients send, and SipHash
    /// was most of a lookup.
    entries: DashMap<Box<[u8]>, Arc<Entry>, foldhash::quality::RandomState>,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions (0: reuse is off).
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache { capacity, specs: Default::default(), entries: DashMap::default() }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The decision kept for `subject` at `hook` and live at `now`, if any.
    pub fn find(&self, hook: Hook, subject: &impl Subject, now: Instant) -> Option<Arc<Entry>> {
        if self.capacity == 0 {
            return None;
        }
        let specs = self.specs[hook.index()].read().ok()?;
        if specs.is_empty() {
            return None;
        }
        KEY.with_borrow_mut(|key| {
            for (index, spec) in specs.iter().enumerate() {
                start_key(key, hook, index);
                subject.write_key(spec, key);
                let Some(entry) = self.entries.get(key.0.as_slice()) else {
                    continue;
                };
                if entry.expires > now {
                    return Some(Arc::clone(&entry));
                }
                drop(entry);
                self.entries.remove(key.0.as_slice());
            }
            None
        })
    }

    /// Keeps `decision` for messages that agree with `subject` as `reusable` says.
    pub fn keep(&self, hook: Hook, subject: &impl Subject, decision: &Decision, reusable: Reusable) {
        if self.capacity == 0 {
            return;
        }
        let Some(index) = self.spec_index(hook, &reusable.reuse) else {
            return;
        };
        let Ok(specs) = self.specs[hook.index()].read() else {
            return;
        };
        let Some(spec) = specs.get(index) else {
            return;
        };
        let mut key = Key(Vec::with_capacity(128));
        start_key(&mut key, hook, index);
        subject.write_key(spec, &mut key);
        drop(specs);
        if key.0.len() > MAX_KEY || !self.has_room() {
            return;
        }
        let ttl = Duration::from_millis(u64::from(reusable.reuse.ttl_ms)).min(MAX_TTL);
        let entry = Entry {
            decision: decision.clone(),
            grants: match decision {
                Decision::Modify(changes) => Grants::of(changes),
                _ => Grants::default(),
            },
            expires: Instant::now() + ttl,
            effects: reusable.effects,
        };
        self.entries.insert(key.0.into_boxed_slice(), Arc::new(entry));
    }

    /// The position of `reuse`'s spec in `hook`'s list, added if new;
    /// `None` once the list is full.
    fn spec_index(&self, hook: Hook, reuse: &Reuse) -> Option<usize> {
        let lock = &self.specs[hook.index()];
        if let Some(index) = lock.read().ok()?.iter().position(|s| s.matches(reuse)) {
            return Some(index);
        }
        let mut specs = lock.write().ok()?;
        if let Some(index) = specs.iter().position(|s| s.matches(reuse)) {
            return Some(index);
        }
        if specs.len() >= MAX_SPECS {
            return None;
        }
        specs.push(Spec { vary: reuse.vary, headers: reuse.headers.clone() });
        Some(specs.len() - 1)
    }

    /// Whether one more entry fits, after dropping the expired ones if full.
    fn has_room(&self) -> bool {
        if self.entries.len() < self.capacity {
            return true;
        }
        let now = Instant::now();
        self.entries.retain(|_, entry| entry.expires > now);
        self.entries.len() < self.capacity
    }
}

fn start_key(key: &mut Key, hook: Hook, spec: usize) {
    key.0.clear();
    key.0.push(hook.index() as u8);
    key.0.push(spec as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{Direction, Header, MessageKind};

    fn message(principal: &str, tool: &str) -> McpMessage {
        McpMessage {
            direction: Direction::ClientToServer,
            kind: MessageKind::Request,
            method: Some("tools/call".into()),
            id: Some("1".into()),
            name: Some(tool.into()),
            params: Some(format!(r#"{{"name":"{tool}"}}"#)),
            error: None,
            session: Some("s1".into()),
            principal: Some(principal.into()),
            scopes: vec!["mcp:read".into()],
            client_address: "127.0.0.1".into(),
            headers: vec![Header { name: "x-user".into(), value: principal.into() }],
            route: "fx".into(),
        }
    }

    fn reusable(vary: Vary, headers: &[&str]) -> Reusable {
        let reuse = Reuse { ttl_ms: 60_000, vary, headers: headers.iter().map(|h| h.to_string()).collect() };
        Reusable { reuse, effects: Effects::default() }
    }

    fn kept(cache: &DecisionCache, m: &McpMessage) -> bool {
        cache.find(Hook::Request, m, Instant::now()).is_some()
    }

    #[test]
    fn a_decision_is_found_only_for_messages_equal_in_its_vary() {
        let cache = DecisionCache::new(100);
        let ada = message("ada", "echo");
        cache.keep(Hook::Request, &ada, &Decision::Proceed, reusable(Vary::PRINCIPAL | Vary::NAME, &[]));
        let mut again = message("ada", "echo");
        again.id = Some("2".into());
        again.session = Some("another".into());
        assert!(kept(&cache, &again), "id and unnamed parts do not matter");
        assert!(!kept(&cache, &message("grace", "echo")), "another principal");
        assert!(!kept(&cache, &message("ada", "add")), "another tool");
        assert!(cache.find(Hook::Response, &ada, Instant::now()).is_none(), "another hook");
        let mut list = message("ada", "echo");
        list.method = Some("tools/list".into());
        assert!(!kept(&cache, &list), "another method");
    }

    #[test]
    fn headers_and_their_absence_are_part_of_the_key() {
        let cache = DecisionCache::new(100);
        let ada = message("ada", "echo");
        cache.keep(Hook::Request, &ada, &Decision::Proceed, reusable(Vary::empty(), &["x-user"]));
        assert!(!kept(&cache, &message("grace", "add")), "x-user differs");
        assert!(kept(&cache, &message("ada", "add")), "only x-user counts");
        let mut without = message("ada", "echo");
        without.headers.clear();
        assert!(!kept(&cache, &without), "an absent header is not an empty one");
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        // "ab" + "c" must not make the same key as "a" + "bc".
        let cache = DecisionCache::new(100);
        let mut one = message("ab", "c");
        one.scopes.clear();
        cache.keep(Hook::Request, &one, &Decision::Proceed, reusable(Vary::PRINCIPAL | Vary::NAME, &[]));
        let mut two = message("a", "bc");
        two.scopes.clear();
        assert!(!kept(&cache, &two));
        let mut scoped = message("ada", "echo");
        cache.keep(Hook::Request, &scoped, &Decision::Proceed, reusable(Vary::SCOPES, &[]));
        scoped.scopes = vec!["mcp:re".into(), "ad".into()];
        assert!(!kept(&cache, &scoped), "scope lists are split, not joined");
    }

    #[test]
    fn a_full_cache_keeps_nothing_more_and_zero_keeps_nothing() {
        let cache = DecisionCache::new(2);
        for tool in ["a", "b", "c"] {
            cache.keep(Hook::Request, &message("ada", tool), &Decision::Proceed, reusable(Vary::NAME, &[]));
        }
        assert_eq!(cache.len(), 2);
        assert!(!kept(&cache, &message("ada", "c")));
        let off = DecisionCache::new(0);
        off.keep(Hook::Request, &message("ada", "a"), &Decision::Proceed, reusable(Vary::NAME, &[]));
        assert_eq!(off.len(), 0);
        assert!(!kept(&off, &message("ada", "a")));
    }

    #[test]
    fn an_unrepeatable_call_or_a_zero_ttl_is_not_reusable() {
        let mut recording = Recording {
            reuse: Some(Reuse { ttl_ms: 1000, vary: Vary::NAME, headers: vec![] }),
            effects: Effects { unrepeatable: true, ..Effects::default() },
        };
        assert!(recording.reusable().is_none());
        recording.clear();
        recording.reuse = Some(Reuse { ttl_ms: 0, vary: Vary::NAME, headers: vec![] });
        assert!(recording.reusable().is_none());
        recording.clear();
        recording.reuse = Some(Reuse { ttl_ms: 1000, vary: Vary::NAME, headers: vec![] });
        recording.effects.series_adds.push((3, 1));
        let reusable = recording.reusable().expect("reusable");
        assert_eq!(reusable.effects.series_adds, vec![(3, 1)]);
    }
}
