//! The `mcpd` command line: `run` the gateway, `check` a configuration.

use clap::{Parser, Subcommand};
use mcpd::config;
use mcpd::logs::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "mcpd", version, about = "A gateway that puts MCP servers on the network")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the MCP servers of a configuration until SIGTERM.
    Run {
        /// The configuration file.
        #[arg(short, long, default_value = "mcpd.toml")]
        config: PathBuf,
        /// Log line format on stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Json)]
        log_format: LogFormat,
        /// Log level when RUST_LOG is not set (error, warn, info, debug, trace).
        #[arg(long, default_value = "info")]
        log_level: String,
    },
    /// Validate a configuration without starting anything.
    Check {
        /// The configuration file.
        #[arg(short, long, default_value = "mcpd.toml")]
        config: PathBuf,
    },
    /// Validate a configuration, then make the mcpd running it reload its plugins.
    Reload {
        /// The configuration file the running mcpd was started with.
        #[arg(short, long, default_value = "mcpd.toml")]
        config: PathBuf,
    },
    /// Work with WebAssembly plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a new plugin crate NAME in the current directory (or --dir).
    New {
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The plugin SDK to depend on (default: the one this mcpd was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// Sends SIGHUP to the mcpd whose pid is in `pid_file`.
fn signal_running(pid_file: &std::path::Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("no running mcpd found for this config ({}: {e})", pid_file.display()))?;
    let pid: i32 = text.trim().parse().map_err(|_| format!("{} does not hold a pid", pid_file.display()))?;
    // SAFETY: kill(2) with a pid read from mcpd's own pid file.
    match unsafe { libc::kill(pid, libc::SIGHUP) } {
        0 => Ok(pid),
        _ => Err(format!("mcpd (pid {pid}) is not running: {}", std::io::Error::last_os_error())),
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Reload { config } => match config::load(&config) {
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
            Ok(config) => match signal_running(&config.gateway.pid_file) {
                Ok(pid) => {
                    println!("{}: ok; asked mcpd (pid {pid}) to reload its plugins", config.path.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            },
        },
        Command::Plugin { command: PluginCommand::New { name, dir, sdk } } => {
            let sdk = sdk.unwrap_or_else(mcpd::scaffold::default_sdk);
            match mcpd::scaffold::new_plugin(&name, &dir, &sdk) {
                Ok(root) => {
                    println!("created {}", root.display());
                    println!("build it:  cd {} && cargo build --target wasm32-wasip2 --release", root.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match config::load(&config) {
            Ok(config) => {
                println!("{}: ok", config.path.display());
                for server in &config.servers {
                    println!(
                        "  server {:?}: {} at http://{}{}",
                        server.name,
                        server.upstream_label(),
                        server.listen,
                        server.mcp_path()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        },
        Command::Run { config, log_format, log_level } => {
            logs::init(log_format, &log_level);
            let config = match config::load(&config) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!("{error}");
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            };
            match mcpd::serve::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
