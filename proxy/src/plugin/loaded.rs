//! One loaded hook plugin (world `plugin`): its warm instances, hook calls
//! under its limits, and the decisions it asked mcpd to reuse. The pool
//! itself is [`super::instances`]; the reuse cache is [`super::reuse`].

use super::PluginError;
use super::bindings::{
    Decision, HookSet, HostState, HttpRequest, McpMessage, MessageParts, Plugin, PluginContext, PluginInfo, PluginPre,
};
use super::instances::{Instances, World};
use super::reuse::{DecisionCache, Entry, Reusable, Subject};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker};

pub use super::instances::Limits;

impl World for Plugin {
    type Pre = PluginPre<HostState>;

    fn prepare(linker: &mut Linker<HostState>, component: &Component) -> wasmtime::Result<Self::Pre> {
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
        PluginPre::new(linker.instantiate_pre(component)?)
    }

    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send {
        pre.instantiate_async(store)
    }

    fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Result<PluginInfo, String>>> + Send {
        self.mcpd_plugin_hooks().call_describe(store)
    }
}

/// Which hook to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    HttpRequest,
    Request,
    Response,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::HttpRequest, Hook::Request, Hook::Response];

    /// Position in [`Hook::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn flag(self) -> HookSet {
        match self {
            Hook::HttpRequest => HookSet::HTTP_REQUEST,
            Hook::Request => HookSet::REQUEST,
            Hook::Response => HookSet::RESPONSE,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Hook::HttpRequest => "http_request",
            Hook::Request => "request",
            Hook::Response => "response",
        }
    }
}

/// Outcomes counted per hook call, in the order of [`CallMetrics::calls`].
pub const OUTCOMES: [&str; 6] = ["proceed", "modify", "reject", "respond", "reply", "error"];

/// This plugin's metric handles, resolved once at load: a labelled lookup
/// on every hook call would cost more than an empty hook.
pub struct CallMetrics {
    /// `[hook][outcome]` counters (hooks in [`Hook::ALL`] order).
    pub calls: Vec<Vec<prometheus::IntCounter>>,
    /// Per-hook duration histograms.
    pub seconds: Vec<prometheus::Histogram>,
    /// Per-hook count of messages answered with a reused decision.
    pub reused: Vec<prometheus::IntCounter>,
}

impl CallMetrics {
    fn new(plugin: &str) -> CallMetrics {
        let calls = Hook::ALL
            .iter()
            .map(|hook| {
                OUTCOMES
                    .iter()
                    .map(|outcome| crate::metrics::PLUGIN_CALLS.with_label_values(&[plugin, hook.label(), outcome]))
                    .collect()
            })
            .collect();
        let seconds = Hook::ALL
            .iter()
            .map(|hook| crate::metrics::PLUGIN_SECONDS.with_label_values(&[plugin, hook.label()]))
            .collect();
        let reused = Hook::ALL
            .iter()
            .map(|hook| crate::metrics::PLUGIN_REUSED.with_label_values(&[plugin, hook.label()]))
            .collect();
        CallMetrics { calls, seconds, reused }
    }
}

pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub hooks: HookSet,
    /// Methods its request hook is called for; empty: all.
    pub request_methods: Vec<String>,
    /// Methods its response hook is called for; empty: all.
    pub response_methods: Vec<String>,
    /// What its message hooks read; mcpd leaves the rest out.
    pub reads: MessageParts,
    pub metrics: CallMetrics,
    instances: Instances<Plugin>,
    /// Decisions its calls asked to reuse; dropped with this version.
    decisions: DecisionCache,
}

impl LoadedPlugin {
    /// Links and instantiates `component`, asks it to `describe` itself, and
    /// warms `limits.warm` instances.
    pub async fn load(
        component: &Component,
        context: Arc<PluginContext>,
        limits: Limits,
        label: &str,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let decisions = DecisionCache::new(limits.decisions);
        let (instances, info) = Instances::<Plugin>::load(component, Arc::clone(&context), limits, label).await?;
        if let Ok(mut name) = context.name.write() {
            *name = info.name.clone();
        }
        Ok(Arc::new(LoadedPlugin {
            metrics: CallMetrics::new(&info.name),
            name: info.name,
            version: info.version,
            hooks: info.hooks,
            request_methods: info.request_methods,
            response_methods: info.response_methods,
            reads: info.reads,
            instances,
            decisions,
        }))
    }

    /// A decision this plugin asked to reuse for `subject` at `hook`, live
    /// at `now`, its effects repeated; `None` when there is none (or a
    /// repeated take was refused): the hook must be called.
    pub async fn reused(&self, hook: Hook, subject: &impl Subject, now: Instant) -> Option<Arc<Entry>> {
        let entry = self.decisions.find(hook, subject, now)?;
        if !entry.repeat(&self.instances.context).await {
            return None;
        }
        self.metrics.reused[hook.index()].inc();
        Some(entry)
    }

    /// Keeps `decision`, made by a call on `subject`, for reuse.
    pub fn keep(&self, hook: Hook, subject: &impl Subject, decision: &Decision, reusable: Reusable) {
        self.decisions.keep(hook, subject, decision, reusable);
    }

    /// Whether it has `hook` and wants it called for a message with `method`.
    pub fn wants(&self, hook: Hook, method: Option<&str>) -> bool {
        let methods = match hook {
            Hook::HttpRequest => return self.hooks.contains(HookSet::HTTP_REQUEST),
            Hook::Request => &self.request_methods,
            Hook::Response => &self.response_methods,
        };
        // A message whose method mcpd cannot tell (e.g. an answer to a
        // request it did not see) is shown rather than slipping past a filter.
        self.hooks.contains(hook.flag()) && (method.is_none() || admits(methods, method))
    }

    /// Calls `hook` on a brand-new instance, then drops it: what isolation
    /// per request would cost. For benchmarks; requests use [`Self::call`].
    pub async fn call_fresh(&self, hook: Hook, message: &McpMessage) -> Result<Decision, PluginError> {
        let (mut instance, _) = self.instances.instantiate().await?;
        let cpu = self.instances.limits.cpu;
        let _running = instance.start_call(cpu);
        let hooks = instance.exports.mcpd_plugin_hooks();
        let result = match hook {
            Hook::Response => hooks.call_on_response(&mut instance.store, message).await,
            _ => hooks.call_on_request(&mut instance.store, message).await,
        };
        result.map_err(|e| self.instances.classify(e, cpu))
    }

    /// Calls `hook` with `message` (or `http` for [`Hook::HttpRequest`]);
    /// with the decision, what a reuse of it needs when the call asked for one.
    pub async fn call(
        &self,
        hook: Hook,
        http: Option<&HttpRequest>,
        message: Option<&McpMessage>,
    ) -> Result<(Decision, Option<Reusable>), PluginError> {
        let mut instance = self.instances.checkout().await?;
        let cpu = self.instances.limits.cpu;
        let _running = instance.start_call(cpu);
        let hooks = instance.exports.mcpd_plugin_hooks();
        let result = match (hook, http, message) {
            (Hook::HttpRequest, Some(request), _) => hooks.call_on_http_request(&mut instance.store, request).await,
            (Hook::Request, _, Some(message)) => hooks.call_on_request(&mut instance.store, message).await,
            (Hook::Response, _, Some(message)) => hooks.call_on_response(&mut instance.store, message).await,
            _ => return Ok((Decision::Proceed, None)),
        };
        let decision = result.map_err(|e| self.instances.classify(e, cpu))?;
        let size = output_size(&decision);
        let limit = self.instances.limits.output;
        if size > limit {
            return Err(PluginError::OutputTooLarge { plugin: self.name.clone(), size, limit });
        }
        let reusable = instance.store.data_mut().recording.reusable();
        self.instances.checkin(instance);
        Ok((decision, reusable))
    }
}

/// Whether a method list (empty: every method) admits `method`.
pub fn admits(methods: &[String], method: Option<&str>) -> bool {
    methods.is_empty() || method.is_some_and(|m| methods.iter().any(|allowed| allowed == m))
}

fn output_size(decision: &Decision) -> usize {
    let headers = |h: &[super::bindings::Header]| h.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>();
    match decision {
        Decision::Proceed => 0,
        Decision::Modify(c) => {
            c.params.as_ref().map_or(0, String::len) + c.principal.as_ref().map_or(0, String::len) + headers(&c.headers)
        }
        Decision::Reject(r) => {
            r.error.message.len() + r.error.data.as_ref().map_or(0, String::len) + headers(&r.headers)
        }
        Decision::Respond(result) => result.len(),
        Decision::Reply(r) => r.body.len() + headers(&r.headers),
    }
}
