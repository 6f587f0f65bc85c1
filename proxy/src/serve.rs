//! Running the gateway: a Pingora server with the MCP front service and a
//! background service for pools, health checks and session reaping, and
//! signal handling that drains before exiting.
//!
//! SIGTERM (and SIGQUIT): stop taking new requests (503 with Retry-After),
//! wait up to `gateway.shutdown_timeout` for requests in flight, then exit.
//! SIGINT: exit at once.

use crate::config::Config;
use crate::config::StoreSettings;
use crate::front;
use crate::gateway::Gateway;
use crate::plugin::store::PluginStore;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

/// Runs until a shutdown signal; returns once the server has stopped.
pub fn run(config: Config) -> anyhow::Result<()> {
    let conf = ServerConf {
        threads: config.gateway.threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let shutdown_timeout = config.gateway.shutdown_timeout;
    // Plugins load before serving: a plugin that cannot load stops startup.
    // Their instances do not depend on this runtime once created.
    let loader = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let plugin_store = Arc::new(match &config.gateway.store {
        StoreSettings::Memory => PluginStore::memory(),
        StoreSettings::Redis(url) => loader
            .block_on(PluginStore::redis(url))
            .map_err(|e| anyhow::anyhow!("gateway.store = {url:?}: cannot use it: {e}"))?,
    });
    let plugins = loader.block_on(Gateway::load_plugins(&config, &plugin_store))?;
    let gateway = Gateway::new(config, plugins, plugin_store).map_err(|e| anyhow::anyhow!(e))?;
    for server in &gateway.config.servers {
        tracing::info!(
            server = %server.name,
            listen = %server.listen,
            path = %server.mcp_path(),
            sessions = server.session.enabled,
            legacy_sse = ?server.sse_routes().map(|(stream, _)| stream),
            "serving MCP server"
        );
    }
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server.add_service(front::service(Arc::clone(&gateway)));
    server.add_service(background_service("supervisor", Supervisor(Arc::clone(&gateway))));
    let pid_file = gateway.config.gateway.pid_file.clone();
    server.run(RunArgs { shutdown_signal: Box::new(Drain { gateway, timeout: shutdown_timeout }) });
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}

struct Supervisor(Arc<Gateway>);

#[async_trait]
impl BackgroundService for Supervisor {
    async fn start(&self, shutdown: ShutdownWatch) {
        let gateway = Arc::clone(&self.0);
        match signal(SignalKind::hangup()) {
            Ok(hangups) => {
                tokio::spawn(reload_on_hangup(Arc::clone(&gateway), hangups));
                // Only now can `mcpd reload` find us: a SIGHUP before the
                // handler exists would end the process.
                write_pid_file(&gateway.config.gateway.pid_file);
            }
            Err(error) => tracing::error!("cannot handle SIGHUP; `mcpd reload` will not work: {error}"),
        }
        gateway.run_background(shutdown).await;
    }
}

fn write_pid_file(path: &std::path::Path) {
    if let Err(error) = std::fs::write(path, format!("{}\n", std::process::id())) {
        tracing::warn!(file = %path.display(), "cannot write the pid file; `mcpd reload` will not find this process: {error}");
    }
}

async fn reload_on_hangup(gateway: Arc<Gateway>, mut hangups: tokio::signal::unix::Signal) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading plugins");
        match gateway.reload_plugins().await {
            0 => tracing::info!("plugins reloaded"),
            failed => tracing::error!(failed, "some plugins failed to reload and keep their running version"),
        }
    }
}

struct Drain {
    gateway: Arc<Gateway>,
    timeout: std::time::Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Drain {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut quit), Ok(mut interrupt)) =
            (signal(SignalKind::terminate()), signal(SignalKind::quit()), signal(SignalKind::interrupt()))
        else {
            tracing::error!("cannot install signal handlers; SIGTERM will not drain");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = quit.recv() => {}
            _ = interrupt.recv() => {
                tracing::info!("SIGINT: shutting down now");
                return ShutdownSignal::FastShutdown;
            }
        }
        tracing::info!(timeout = ?self.timeout, "SIGTERM: draining requests in flight");
        let left = self.gateway.drain(self.timeout).await;
        match left {
            0 => tracing::info!("drained; shutting down"),
            n => tracing::warn!(abandoned = n, "shutdown timeout reached with requests in flight"),
        }
        ShutdownSignal::GracefulTerminate
    }
}
