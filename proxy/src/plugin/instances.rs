//! A pool of warm instances of one component, for either world (hook
//! plugins and translators): linking, instantiating under the start
//! deadline, lending an instance to a call, and classifying failures.
//!
//! An instance whose call failed in any way is dropped, never reused. The
//! CPU deadline is an epoch deadline; time a call spends waiting on the
//! network inside a host import (`HostState::waited`) extends it, since
//! waiting is not CPU.

use super::bindings::{HostState, PluginContext, PluginInfo};
use super::{PluginError, engine};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};

/// Per-plugin limits, from the plugin's table in mcpd.toml.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU time per call.
    pub cpu: Duration,
    /// CPU time for loading (instantiation and `describe`).
    pub start: Duration,
    /// Linear memory cap per instance.
    pub memory: usize,
    /// Largest output (decision, result) a call may return.
    pub output: usize,
    /// Instances kept warm.
    pub warm: usize,
    /// Decisions kept for reuse (0: none).
    pub decisions: usize,
}

impl From<&crate::config::PluginSettings> for Limits {
    fn from(settings: &crate::config::PluginSettings) -> Limits {
        Limits {
            cpu: settings.timeout,
            start: settings.start_timeout,
            memory: settings.max_memory,
            output: settings.max_output,
            warm: settings.instances,
            decisions: settings.decision_cache,
        }
    }
}

/// A component world mcpd can host: how to link, instantiate and describe it.
pub trait World: Sized + Send + 'static {
    type Pre: Send + Sync + 'static;
    fn prepare(linker: &mut Linker<HostState>, component: &Component) -> wasmtime::Result<Self::Pre>;
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
    /// The plugin's info, or (inner error) why it refuses to run.
    fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Result<PluginInfo, String>>> + Send;
}

/// One instance and its store.
pub struct Instance<W> {
    pub store: Store<HostState>,
    pub exports: W,
}

impl<W> Instance<W> {
    /// Arms the CPU deadline for one call.
    /// Readies the instance for a call limited to `limit` of CPU; hold the
    /// guard until the call returns (it keeps the deadline clock running).
    #[must_use = "the CPU limit is enforced only while the guard lives"]
    pub fn start_call(&mut self, limit: Duration) -> super::engine::Running {
        self.store.data_mut().waited = Duration::ZERO;
        self.store.data_mut().recording.clear();
        self.store.set_epoch_deadline(ticks(limit));
        super::engine::running()
    }
}

pub struct Instances<W: World> {
    pre: W::Pre,
    pub context: Arc<PluginContext>,
    pub limits: Limits,
    /// For errors: the plugin's name, or its file before it has one.
    pub label: String,
    idle: Mutex<Vec<Instance<W>>>,
}

/// The contract version this mcpd serves (`package mcpd:plugin@…` in the WIT).
pub const CONTRACT: &str = "mcpd:plugin@0.2.1";

/// Why linking failed, with what to do when the plugin was built against
/// another version of the contract (the usual cause).
fn link_error(error: wasmtime::Error) -> String {
    let text = format!("{error:#}");
    // 0.x.y versions are compatible within 0.x (wasmtime links them), so
    // only another 0.x is another contract.
    let compatible = &CONTRACT["mcpd:plugin@".len()..CONTRACT.rfind('.').unwrap_or(CONTRACT.len())];
    let other_version = text.match_indices("mcpd:plugin/").any(|(at, _)| {
        let rest = &text[at..];
        rest.split(|c: char| c.is_whitespace() || c == '`' || c == '#')
            .next()
            .and_then(|name| name.split_once('@'))
            .is_some_and(|(_, version)| version != compatible && !version.starts_with(&format!("{compatible}.")))
    });
    match other_version {
        true => format!(
            "{text} (it was built against another version of the plugin contract; this mcpd serves {CONTRACT}: rebuild it with the matching mcpd-plugin-sdk)"
        ),
        false => text,
    }
}

pub fn ticks(limit: Duration) -> u64 {
    (limit.as_micros() / engine::TICK.as_micros()).max(1) as u64 + 1
}

impl<W: World> Instances<W> {
    /// Links `component`, makes the first instance and asks it to describe
    /// itself, then warms `limits.warm` instances in all.
    pub async fn load(
        component: &Component,
        context: Arc<PluginContext>,
        limits: Limits,
        label: &str,
    ) -> Result<(Instances<W>, PluginInfo), PluginError> {
        let failed = |e: wasmtime::Error| PluginError::Instantiate { plugin: label.to_string(), reason: link_error(e) };
        let mut linker = Linker::<HostState>::new(engine::engine()?);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(failed)?;
        let pre = W::prepare(&mut linker, component).map_err(failed)?;
        let mut instances = Instances { pre, context, limits, label: label.to_string(), idle: Mutex::new(Vec::new()) };
        let (first, info) = instances.instantiate().await?;
        instances.label = info.name.clone();
        let mut idle = vec![first];
        for _ in 1..instances.limits.warm {
            idle.push(instances.instantiate().await?.0);
        }
        instances.idle = Mutex::new(idle);
        Ok((instances, info))
    }

    /// A new instance, set up by its `describe` call (plugins build their
    /// state there), all under the start deadline rather than a call's.
    pub async fn instantiate(&self) -> Result<(Instance<W>, PluginInfo), PluginError> {
        let limits = &self.limits;
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory)
            .instances(32)
            .tables(32)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        let engine = engine::engine()?;
        let mut store = Store::new(engine, HostState::new(Arc::clone(&self.context), store_limits));
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|mut context| {
            // Give back the time spent waiting on the network, once.
            let waited = std::mem::take(&mut context.data_mut().waited);
            match waited.is_zero() {
                true => Ok(UpdateDeadline::Interrupt),
                false => Ok(UpdateDeadline::Continue(ticks(waited))),
            }
        });
        store.set_epoch_deadline(ticks(limits.start));
        let _running = super::engine::running();
        let exports =
            W::instantiate(&self.pre, &mut store).await.map_err(|e| match self.classify(e, limits.start) {
                PluginError::Trap { plugin, reason } => PluginError::Instantiate { plugin, reason },
                other => other,
            })?;
        let info = exports
            .describe(&mut store)
            .await
            .map_err(|e| self.classify(e, limits.start))?
            .map_err(|reason| PluginError::Refused { plugin: self.label.clone(), reason })?;
        Ok((Instance { store, exports }, info))
    }

    /// An idle instance, or a new one.
    pub async fn checkout(&self) -> Result<Instance<W>, PluginError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(instance) => Ok(instance),
            None => Ok(self.instantiate().await?.0),
        }
    }

    /// Returns an instance whose call succeeded.
    pub fn checkin(&self, instance: Instance<W>) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.limits.warm.max(1) * 4 {
                idle.push(instance);
            }
        }
    }

    /// What a failed call means: timeout, memory, or another trap.
    pub fn classify(&self, error: wasmtime::Error, deadline: Duration) -> PluginError {
        let plugin = self.label.clone();
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PluginError::Timeout { plugin, limit_ms: deadline.as_millis() as u64 };
        }
        let text = format!("{error:#}");
        if text.contains("growing memory") || text.contains("memory limit") {
            return PluginError::OutOfMemory { plugin, limit: self.limits.memory };
        }
        PluginError::Trap { plugin, reason: text.lines().take(3).collect::<Vec<_>>().join(" / ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_built_against_another_contract_is_told_to_rebuild() {
        // What wasmtime says when a 0.1.0 plugin meets this mcpd's linker.
        let old = wasmtime::Error::msg(
            "component imports instance `mcpd:plugin/host@0.1.0`, but a matching implementation was not found in the linker",
        );
        let text = link_error(old);
        assert!(text.contains("this mcpd serves mcpd:plugin@0.2.1: rebuild it"), "{text}");
        let other = wasmtime::Error::msg("instance export `mcpd:plugin/host@0.2.0#log` has the wrong type");
        assert!(!link_error(other).contains("rebuild"), "0.2.0 is compatible: another cause");
    }
}
