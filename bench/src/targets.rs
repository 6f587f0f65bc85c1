//! What the gateway benchmark loads: the fixture HTTP server directly, mcpd
//! in front of the stdio fixture server, and other gateways in front of the
//! same stdio server. Each target is started fresh per run, pinned to core 1
//! (the load generator has core 0), on loopback, and stopped afterwards.
//!
//! Other gateways come from `bench/install-gateways.sh`, which installs pinned
//! versions into the cache directory (default `~/.cache/mcpd-bench`).

use crate::procstat;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The upstream mcpd fronts.
#[derive(Clone, Copy)]
pub enum Upstream {
    /// The stdio fixture server (`mcpd-test-server`).
    Stdio,
    /// The HTTP fixture server (`mcpd-http-test-server`).
    Http,
}

#[derive(Clone, Copy)]
pub enum Kind {
    /// The load generator talks to `mcpd-http-test-server` itself.
    Direct,
    /// mcpd; `sessions`: one stdio process per client session, else one pooled process.
    Mcpd { upstream: Upstream, sessions: bool },
    /// npm `supergateway`, stdio → Streamable HTTP; stateful: a process per
    /// session, stateless: a process per request.
    Supergateway { stateful: bool },
    /// PyPI `mcp-proxy`: one shared stdio process behind Streamable HTTP.
    McpProxy,
}

pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    /// Run without `--targets`.
    pub default: bool,
    pub about: &'static str,
}

/// Every target; `--targets a,b` picks some, by name.
pub const TARGETS: &[Target] = &[
    Target { name: "direct", kind: Kind::Direct, default: true, about: "fixtures/http-server, no gateway" },
    Target {
        name: "mcpd-pool",
        kind: Kind::Mcpd { upstream: Upstream::Stdio, sessions: false },
        default: true,
        about: "mcpd → one pooled stdio process",
    },
    Target {
        name: "mcpd-session",
        kind: Kind::Mcpd { upstream: Upstream::Stdio, sessions: true },
        default: true,
        about: "mcpd → a stdio process per session",
    },
    // HTTP upstreams need client sessions (one client session is one upstream session).
    Target {
        name: "mcpd-http",
        kind: Kind::Mcpd { upstream: Upstream::Http, sessions: true },
        default: true,
        about: "mcpd → fixtures/http-server (a session on it per client session)",
    },
    Target {
        name: "supergateway",
        kind: Kind::Supergateway { stateful: true },
        default: true,
        about: "supergateway --stateful → a stdio process per session",
    },
    Target {
        name: "supergateway-stateless",
        kind: Kind::Supergateway { stateful: false },
        default: true,
        about: "supergateway → a stdio process per request",
    },
    Target { name: "mcp-proxy", kind: Kind::McpProxy, default: true, about: "mcp-proxy → one shared stdio process" },
];

/// Where the programs are.
pub struct Paths {
    /// target/release: mcpd, the fixture servers.
    pub bin: PathBuf,
    /// The install script's cache directory.
    pub cache: PathBuf,
    /// Pin to core 1 (when the machine has two cores or more).
    pub pin: bool,
}

impl Paths {
    fn command(&self, program: &Path) -> Command {
        let mut command = match self.pin {
            true => {
                let mut c = Command::new("taskset");
                c.args(["-c", "1"]).arg(program);
                c
            }
            false => Command::new(program),
        };
        command.stdin(Stdio::null()).stdout(Stdio::null());
        command
    }

    fn installed(&self, relative: &str) -> anyhow::Result<PathBuf> {
        let path = self.cache.join(relative);
        anyhow::ensure!(path.exists(), "{} is missing: run bench/install-gateways.sh", path.display());
        Ok(path)
    }
}

/// A started target: its processes are stopped on drop.
pub struct Running {
    pub addr: SocketAddr,
    pub path: &'static str,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Running {
    /// The processes whose trees count as the target's cost (the first is "the gateway").
    pub fn roots(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    fn spawn(&mut self, mut command: Command) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log())?;
        let program = format!("{command:?}");
        let child = command.stderr(log).spawn().map_err(|e| anyhow::anyhow!("cannot start {program}: {e}"))?;
        self.children.push(child);
        Ok(())
    }

    /// The last lines the target's processes wrote on stderr.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Waits until an MCP `initialize` is answered with 200 (or fails with the reason).
    async fn ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for child in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("exited with {status} before it was ready:\n{}", self.log_tail());
                }
            }
            if probe(self.addr, self.path).await.unwrap_or(false) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "not ready after 30 s:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let descendants = procstat::tree(&self.roots());
        for child in self.children.iter_mut().rev() {
            // SIGTERM first so gateways stop their servers; SIGKILL after 2 s.
            // SAFETY: kill(2) on the id of a child we spawned and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(2);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Servers a gateway started and left behind.
        for pid in descendants.into_iter().filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists()) {
            // SAFETY: kill(2) on a process that our child started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// POSTs `initialize`; true on 200. Ends the session it opened.
async fn probe(addr: SocketAddr, path: &str) -> anyhow::Result<bool> {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = |method: &str, session: Option<&str>, body: &'static str| {
        let mut r = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(session) = session {
            r = r.header("mcp-session-id", session);
        }
        r.body(Full::new(bytes::Bytes::from_static(body.as_bytes())))
    };
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpd-bench-probe","version":"1"}}}"#;
    let response = sender.send_request(request("POST", None, init)?).await?;
    let ok = response.status() == 200;
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    response.into_body().collect().await?;
    if let Some(session) = session {
        sender.send_request(request("DELETE", Some(&session), "")?).await?.into_body().collect().await?;
    }
    Ok(ok)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// mcpd's config for one server on `port`, fronting `upstream` (a command line or a URL).
fn mcpd_config(port: u16, upstream: &str, is_url: bool, sessions: bool) -> String {
    let source = match is_url {
        true => format!("url = \"{upstream}\""),
        false => format!("command = \"{upstream}\""),
    };
    // `[server.X.pool]` is for stdio servers only, and HTTP upstreams refuse
    // `session.enabled = false`: their sessions map one to one.
    let mode = match sessions || is_url {
        true => "[server.bench.session]\nenabled = true\nmax_per_client = 1000\n",
        false => "[server.bench.session]\nenabled = false\n[server.bench.pool]\nsize = 1\n",
    };
    format!(
        "[gateway]\nthreads = 1\nmax_sessions = 10000\n[server.bench]\n{source}\nport = {port}\n{mode}[server.bench.http]\nmax_concurrent_requests = 4096\n"
    )
}

/// Starts `kind` and waits until it answers MCP.
pub async fn start(kind: Kind, paths: &Paths) -> anyhow::Result<Running> {
    let port = free_port()?;
    let mut running =
        Running { addr: ([127, 0, 0, 1], port).into(), path: "/mcp", children: Vec::new(), dir: tempfile::tempdir()? };
    let stdio_server = paths.bin.join("mcpd-test-server");
    let http_server = paths.bin.join("mcpd-http-test-server");
    match kind {
        Kind::Direct => {
            let mut command = paths.command(&http_server);
            command.args(["--port", &port.to_string(), "--name", "direct"]);
            running.spawn(command)?;
        }
        Kind::Mcpd { upstream, sessions } => {
            let config = running.dir.path().join("mcpd.toml");
            let text = match upstream {
                Upstream::Stdio => mcpd_config(port, &stdio_server.display().to_string(), false, sessions),
                Upstream::Http => {
                    let upstream_port = free_port()?;
                    let mut command = paths.command(&http_server);
                    command.args(["--port", &upstream_port.to_string(), "--name", "upstream"]);
                    running.spawn(command)?;
                    mcpd_config(port, &format!("http://127.0.0.1:{upstream_port}/mcp"), true, sessions)
                }
            };
            std::fs::write(&config, text)?;
            let mut command = paths.command(&paths.bin.join("mcpd"));
            command.args(["run", "--log-level", "warn", "-c"]).arg(&config);
            running.spawn(command)?;
            // mcpd is "the gateway": its tree first.
            running.children.rotate_right(1);
        }
        Kind::Supergateway { stateful } => {
            let node_script = paths.installed("supergateway/node_modules/supergateway/dist/index.js")?;
            let mut command = paths.command(Path::new("node"));
            command.arg(node_script).arg("--stdio").arg(&stdio_server);
            command.args(["--outputTransport", "streamableHttp", "--port", &port.to_string(), "--logLevel", "none"]);
            if stateful {
                command.arg("--stateful");
            }
            running.spawn(command)?;
        }
        Kind::McpProxy => {
            let program = paths.installed("mcp-proxy/bin/mcp-proxy")?;
            let mut command = paths.command(&program);
            command.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "WARNING"]);
            command.arg(&stdio_server);
            running.spawn(command)?;
            // Starlette mounts the endpoint at /mcp/ (/mcp is a redirect).
            running.path = "/mcp/";
        }
    }
    running.ready().await?;
    Ok(running)
}
