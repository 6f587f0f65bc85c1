//! One loaded plugin: its pre-linked component, its pool of warm
//! instances, and hook calls under its limits.
//!
//! A call borrows an idle instance (or instantiates one), sets the CPU
//! deadline, calls the hook, and gives the instance back. An instance whose
//! call failed in any way is dropped, never reused.

use super::bindings::{
    Decision, HookSet, HostState, HttpRequest, McpMessage, Plugin, PluginContext, PluginInfo, PluginPre,
};
use super::{PluginError, engine};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, StoreLimitsBuilder, Trap};

/// Per-plugin limits, from `[[server.NAME.plugins]]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU time per hook call.
    pub cpu: Duration,
    /// CPU time for loading (instantiation and `describe`).
    pub start: Duration,
    /// Linear memory cap per instance.
    pub memory: usize,
    /// Largest decision (params, result, message) a call may return.
    pub output: usize,
    /// Instances kept warm.
    pub warm: usize,
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

struct Instance {
    store: Store<HostState>,
    plugin: Plugin,
}

/// Outcomes counted per hook call, in the order of [`CallMetrics::calls`].
pub const OUTCOMES: [&str; 5] = ["proceed", "modify", "reject", "respond", "error"];

/// This plugin's metric handles, resolved once at load: a labelled lookup
/// on every hook call would cost more than an empty hook.
pub struct CallMetrics {
    /// `[hook][outcome]` counters (hooks in [`Hook::ALL`] order).
    pub calls: Vec<Vec<prometheus::IntCounter>>,
    /// Per-hook duration histograms.
    pub seconds: Vec<prometheus::Histogram>,
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
        CallMetrics { calls, seconds }
    }
}

pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub hooks: HookSet,
    pub metrics: CallMetrics,
    pre: PluginPre<HostState>,
    context: Arc<PluginContext>,
    limits: Limits,
    idle: Mutex<Vec<Instance>>,
}

fn ticks(limit: Duration) -> u64 {
    (limit.as_micros() / engine::TICK.as_micros()).max(1) as u64 + 1
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
        let failed =
            |e: wasmtime::Error| PluginError::Instantiate { plugin: label.to_string(), reason: format!("{e:#}") };
        let engine = engine::engine()?;
        let mut linker = Linker::<HostState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(failed)?;
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state).map_err(failed)?;
        let pre = PluginPre::new(linker.instantiate_pre(component).map_err(failed)?).map_err(failed)?;

        let (first, info) = instantiate(&pre, &context, &limits, label).await?;
        if let Ok(mut name) = context.name.write() {
            *name = info.name.clone();
        }
        let mut idle = vec![first];
        for _ in 1..limits.warm {
            idle.push(instantiate(&pre, &context, &limits, label).await?.0);
        }
        Ok(Arc::new(LoadedPlugin {
            metrics: CallMetrics::new(&info.name),
            name: info.name,
            version: info.version,
            hooks: info.hooks,
            pre,
            context,
            limits,
            idle: Mutex::new(idle),
        }))
    }

    /// Calls `hook` on a brand-new instance, then drops it: what isolation
    /// per request would cost. For benchmarks; requests use [`Self::call`].
    pub async fn call_fresh(&self, hook: Hook, message: &McpMessage) -> Result<Decision, PluginError> {
        let (mut instance, _) = instantiate(&self.pre, &self.context, &self.limits, &self.name).await?;
        instance.store.set_epoch_deadline(ticks(self.limits.cpu));
        let hooks = instance.plugin.mcpd_plugin_hooks();
        let result = match hook {
            Hook::Response => hooks.call_on_response(&mut instance.store, message).await,
            _ => hooks.call_on_request(&mut instance.store, message).await,
        };
        result.map_err(|e| classify(e, &self.name, &self.limits, self.limits.cpu))
    }

    /// Calls `hook` with `message` (or `http` for [`Hook::HttpRequest`]).
    pub async fn call(
        &self,
        hook: Hook,
        http: Option<&HttpRequest>,
        message: Option<&McpMessage>,
    ) -> Result<Decision, PluginError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut instance = match pooled {
            Some(instance) => instance,
            None => instantiate(&self.pre, &self.context, &self.limits, &self.name).await?.0,
        };
        instance.store.set_epoch_deadline(ticks(self.limits.cpu));
        let hooks = instance.plugin.mcpd_plugin_hooks();
        let result = match (hook, http, message) {
            (Hook::HttpRequest, Some(request), _) => hooks.call_on_http_request(&mut instance.store, request).await,
            (Hook::Request, _, Some(message)) => hooks.call_on_request(&mut instance.store, message).await,
            (Hook::Response, _, Some(message)) => hooks.call_on_response(&mut instance.store, message).await,
            _ => return Ok(Decision::Proceed),
        };
        let decision = result.map_err(|e| classify(e, &self.name, &self.limits, self.limits.cpu))?;
        let size = output_size(&decision);
        if size > self.limits.output {
            return Err(PluginError::OutputTooLarge { plugin: self.name.clone(), size, limit: self.limits.output });
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.limits.warm.max(1) * 4 {
                idle.push(instance);
            }
        }
        Ok(decision)
    }
}

/// A new instance, set up by its `describe` call (plugins build their state
/// there), all under the start deadline rather than a hook's.
async fn instantiate(
    pre: &PluginPre<HostState>,
    context: &Arc<PluginContext>,
    limits: &Limits,
    label: &str,
) -> Result<(Instance, PluginInfo), PluginError> {
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(limits.memory)
        .instances(32)
        .tables(32)
        .memories(8)
        .trap_on_grow_failure(true)
        .build();
    let mut store = Store::new(pre.engine(), HostState::new(Arc::clone(context), store_limits));
    store.limiter(|state| &mut state.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(ticks(limits.start));
    let plugin =
        pre.instantiate_async(&mut store).await.map_err(|e| match classify(e, label, limits, limits.start) {
            PluginError::Trap { plugin, reason } => PluginError::Instantiate { plugin, reason },
            other => other,
        })?;
    let info = plugin
        .mcpd_plugin_hooks()
        .call_describe(&mut store)
        .await
        .map_err(|e| classify(e, label, limits, limits.start))?;
    Ok((Instance { store, plugin }, info))
}

fn classify(error: wasmtime::Error, plugin: &str, limits: &Limits, deadline: Duration) -> PluginError {
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return PluginError::Timeout { plugin: plugin.to_string(), limit_ms: deadline.as_millis() as u64 };
    }
    let text = format!("{error:#}");
    if text.contains("growing memory") || text.contains("memory limit") {
        return PluginError::OutOfMemory { plugin: plugin.to_string(), limit: limits.memory };
    }
    PluginError::Trap { plugin: plugin.to_string(), reason: text.lines().take(3).collect::<Vec<_>>().join(" / ") }
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
    }
}
