//! Process-wide logging: `tracing` events (and Pingora's `log` records) as
//! JSON lines or human text on stderr, filtered by `RUST_LOG` or `--log-level`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

pub fn init(format: LogFormat, level: &str) {
    // Pingora logs every failed client connection at error level; those are
    // clients hanging up, not gateway faults.
    let default = format!("{level},pingora_core::apps=warn,pingora_core::protocols=warn");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(error) = result {
        eprintln!("mcpd: logging is already set up: {error}");
    }
}
