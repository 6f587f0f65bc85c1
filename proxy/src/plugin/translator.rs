//! A translator plugin (world `translator-plugin`): a component that is a
//! route's MCP backend. mcpd hands it each client request and relays its
//! result; it reaches the outside only through the `http-client` import,
//! limited to its `allow_hosts`.
//!
//! It runs under the same limits and instance pool as hook plugins; a
//! failed call becomes a JSON-RPC error for that one request.

use super::PluginError;
use super::bindings::translator::TranslatorPlugin;
use super::bindings::translator::TranslatorPluginPre;
use super::bindings::{HostState, McpMessage, PluginContext, PluginInfo, RpcError};
use super::engine;
use super::instances::{Instances, World};
use super::store::PluginStore;
use crate::config::PluginSettings;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::{Component, HasSelf, Linker};

impl World for TranslatorPlugin {
    type Pre = TranslatorPluginPre<HostState>;

    fn prepare(linker: &mut Linker<HostState>, component: &Component) -> wasmtime::Result<Self::Pre> {
        TranslatorPlugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
        TranslatorPluginPre::new(linker.instantiate_pre(component)?)
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
        self.mcpd_plugin_translator().call_describe(store)
    }
}

pub struct Translator {
    pub name: String,
    pub version: String,
    instances: Instances<TranslatorPlugin>,
}

/// How a translator call went wrong.
#[derive(Debug)]
pub enum TranslateError {
    /// The translator answered with a JSON-RPC error.
    Refused(RpcError),
    /// The call failed (trap, timeout, memory, output size).
    Failed(PluginError),
}

impl Translator {
    pub async fn load(
        settings: &PluginSettings,
        store: Arc<PluginStore>,
        cache_dir: Option<PathBuf>,
    ) -> Result<Arc<Translator>, PluginError> {
        let label = settings.path.display().to_string();
        let context = PluginContext::new(settings, store);
        let component = engine::compile_off_thread(settings.path.clone(), cache_dir).await?;
        let (instances, info) = Instances::load(&component, Arc::clone(&context), settings.into(), &label).await?;
        if let Ok(mut name) = context.name.write() {
            *name = info.name.clone();
        }
        tracing::info!(plugin = %info.name, version = %info.version, path = %label, "translator loaded");
        Ok(Arc::new(Translator { name: info.name, version: info.version, instances }))
    }

    /// Answers one request: the JSON-RPC result as JSON text.
    pub async fn handle(&self, message: &McpMessage) -> Result<String, TranslateError> {
        let mut instance = self.instances.checkout().await.map_err(TranslateError::Failed)?;
        let cpu = self.instances.limits.cpu;
        let _running = instance.start_call(cpu);
        let call = instance.exports.mcpd_plugin_translator().call_handle(&mut instance.store, message).await;
        let answer = call.map_err(|e| TranslateError::Failed(self.instances.classify(e, cpu)))?;
        let size = match &answer {
            Ok(result) => result.len(),
            Err(error) => error.message.len() + error.data.as_ref().map_or(0, String::len),
        };
        let limit = self.instances.limits.output;
        if size > limit {
            return Err(TranslateError::Failed(PluginError::OutputTooLarge { plugin: self.name.clone(), size, limit }));
        }
        self.instances.checkin(instance);
        answer.map_err(TranslateError::Refused)
    }
}
