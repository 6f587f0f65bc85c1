//! The one wasmtime engine mcpd runs every plugin on, and compiling
//! components once (cached on disk by content hash).
//!
//! CPU limits use epoch interruption: a ticker thread advances the engine's
//! epoch every [`TICK`]; a call whose deadline passes traps. Epochs cost far
//! less per instruction than fuel, at the price of deadline granularity of
//! one tick. The ticker parks when no call has run for [`IDLE_TICKS`] ticks
//! and a call wakes it ([`running`]). Memory limits are per store (see `instance`). Instances come
//! from wasmtime's pooling allocator, so instantiating is a copy-on-write
//! remap rather than a fresh allocation.

use super::PluginError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Epoch granularity: CPU deadlines are whole multiples of this.
pub const TICK: Duration = Duration::from_millis(1);

/// Largest linear memory any plugin may grow to (per-plugin caps are lower).
pub const MEMORY_CEILING: u64 = 1 << 30;

/// Instances the pool can hold at once, across all plugins.
const POOL_INSTANCES: u32 = 512;

/// The process-wide engine, created on first use.
pub fn engine() -> Result<&'static Engine, PluginError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| build_engine().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| PluginError::Engine(e.clone()))
}

fn build_engine() -> wasmtime::Result<Engine> {
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(MEMORY_CEILING as usize);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        // Reserve only what the ceiling needs, not the 4 GiB default per slot.
        .memory_reservation(MEMORY_CEILING)
        .memory_guard_size(32 << 20)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config)?;
    let ticker = engine.clone();
    let thread = std::thread::Builder::new().name("mcpd-plugin-epoch".into()).spawn(move || {
        let mut idle_ticks = 0;
        loop {
            std::thread::sleep(TICK);
            ticker.increment_epoch();
            idle_ticks = match RUNNING.load(Ordering::SeqCst) {
                0 => idle_ticks + 1,
                _ => 0,
            };
            if idle_ticks >= IDLE_TICKS {
                idle_ticks = 0;
                PARKED.store(true, Ordering::SeqCst);
                // A call that began before the flag was up did not see it:
                // it is counted here instead (Dekker's pairing with `running`).
                if RUNNING.load(Ordering::SeqCst) == 0 {
                    std::thread::park();
                }
                PARKED.store(false, Ordering::SeqCst);
            }
        }
    })?;
    // Before any instance exists, so no call can miss the ticker.
    let _ = TICKER.set(thread.thread().clone());
    Ok(engine)
}

/// WebAssembly calls (and instantiations) running now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Whether the ticker is parked (or about to be).
static PARKED: AtomicBool = AtomicBool::new(false);
static TICKER: OnceLock<std::thread::Thread> = OnceLock::new();

/// Ticks with no call running before the ticker parks: an idle gateway, or
/// one answering from reused decisions, is not woken a thousand times a
/// second, while a steady stream of calls never pays for waking it.
const IDLE_TICKS: u32 = 100;

/// Held while WebAssembly may run: keeps the epoch ticking, so CPU
/// deadlines hold. Every call and instantiation holds one.
pub struct Running(());

pub fn running() -> Running {
    RUNNING.fetch_add(1, Ordering::SeqCst);
    if PARKED.load(Ordering::SeqCst)
        && PARKED.swap(false, Ordering::SeqCst)
        && let Some(ticker) = TICKER.get()
    {
        ticker.unpark();
    }
    Running(())
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Compiles the component at `path`, or loads its compiled form from
/// `cache_dir` when the same bytes were compiled before by this mcpd build.
pub fn compile(path: &Path, cache_dir: Option<&Path>) -> Result<Component, PluginError> {
    let engine = engine()?;
    let bytes = std::fs::read(path)
        .map_err(|e| PluginError::Read { path: path.to_path_buf(), source: std::sync::Arc::new(e) })?;
    let cached = cache_dir.map(|dir| cache_file(dir, &bytes));
    if let Some(cached) = &cached {
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of this
            // same mcpd build (the build id is part of its name); wasmtime
            // also checks the engine configuration before using it.
            match unsafe { Component::deserialize_file(engine, cached) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(file = %cached.display(), "ignoring unusable compiled plugin: {e}"),
            }
        }
    }
    let component = Component::new(engine, &bytes)
        .map_err(|e| PluginError::Compile { path: path.to_path_buf(), reason: format!("{e:#}") })?;
    if let Some(cached) = cached {
        let saved = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|data| write_atomically(&cached, &data).map_err(|e| e.to_string()));
        if let Err(e) = saved {
            tracing::warn!(file = %cached.display(), "cannot cache compiled plugin: {e}");
        }
    }
    Ok(component)
}

/// [`compile`] on a blocking thread: compiling is CPU work for up to a
/// second, which must not stall an async worker.
pub async fn compile_off_thread(path: PathBuf, cache_dir: Option<PathBuf>) -> Result<Component, PluginError> {
    tokio::task::spawn_blocking(move || compile(&path, cache_dir.as_deref()))
        .await
        .map_err(|e| PluginError::Engine(format!("compile task failed: {e}")))?
}

/// `<dir>/<content hash>-<mcpd version>.cwasm`
fn cache_file(dir: &Path, bytes: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    // Not cryptographic: the cache directory is mcpd's own, not an input.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    bytes.len().hash(&mut hasher);
    dir.join(format!("{:016x}-{}-wasmtime48.cwasm", hasher.finish(), env!("CARGO_PKG_VERSION")))
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, data)?;
    std::fs::rename(&temporary, path)
}
