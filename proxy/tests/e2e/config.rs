//! `mcpd check` and `mcpd run` on good and bad configuration files.

use crate::common::*;

fn expect_error(text: &str, line_col_key: &str, message: &str) {
    let (ok, output, path) = check_config(text);
    assert!(!ok, "mcpd check accepted:\n{text}");
    let expected = format!("{}:{line_col_key}", path.display());
    assert!(output.contains(&expected), "expected {expected:?} in:\n{output}");
    assert!(output.contains(message), "expected {message:?} in:\n{output}");
}

#[test]
fn the_seed_style_config_is_accepted() {
    let text = r#"
[server.api-tools]
command = "python"
args = ["-m", "my_mcp_server"]
transport = "streamable-http"
port = 8443
health_check = "/health"
health_check_interval = "30s"
[server.api-tools.http]
chunked_encoding = true
max_request_size = "10MB"
request_timeout = "300s"
keepalive_timeout = "60s"
max_concurrent_requests = 100
[server.api-tools.session]
enabled = true
timeout = "3600s"
max_per_client = 5
storage = "memory"
"#;
    let (ok, output, _) = check_config(text);
    assert!(ok, "{output}");
    assert!(output.contains("server \"api-tools\""), "{output}");
}

#[test]
fn unknown_keys_wrong_types_and_bad_values_name_file_line_and_key() {
    let base = "[server.a]\ncommand = \"x\"\n";
    expect_error(&format!("{base}comand = \"y\"\n"), "3:1: server.a.comand", "unknown field `comand`");
    expect_error(&format!("{base}port = \"eighty\"\n"), "3:8: server.a.port", "invalid type");
    expect_error(&format!("{base}port = 70000\n"), "3:8: server.a.port", "not a TCP port");
    expect_error(
        &format!("{base}[server.a.http]\nrequest_timeout = \"soon\"\n"),
        "4:19: server.a.http.request_timeout",
        "invalid duration",
    );
    expect_error(
        &format!("{base}[server.a.http]\nmax_request_size = \"10XB\"\n"),
        "4:20: server.a.http.max_request_size",
        "unknown unit",
    );
    expect_error(
        &format!("{base}[server.a.session]\nmax_per_client = 0\n"),
        "4:18: server.a.session.max_per_client",
        "at least 1",
    );
    expect_error("[server.a]\nargs = []\n", "1:1: server.a", "missing `command`");
    expect_error(
        "[server.a]\ncommand = \"x\"\nport = 9000\n[server.b]\ncommand = \"y\"\nport = 9000\n",
        "6:8: server.b.port",
        "already used by server \"a\"",
    );
    expect_error("[server.a\ncommand = 1\n", "1:10: (syntax)", "");
}

#[test]
fn parts_not_built_yet_are_refused_not_ignored() {
    let base = "[server.a]\ncommand = \"x\"\n";
    expect_error(
        &format!("{base}[server.a.tls]\nauto_cert = true\ndomain = \"mcp.example.com\"\n"),
        "3:1: server.a.tls",
        "not supported yet",
    );
    expect_error(
        &format!("{base}[server.a.session]\nstorage = \"redis\"\n"),
        "4:11: server.a.session.storage",
        "not supported yet",
    );
    expect_error(
        &format!("{base}transport = [\"streamable-http\", \"websocket\"]\n"),
        "3:13: server.a.transport",
        "unknown transport \"websocket\"",
    );
}

#[test]
fn run_refuses_a_bad_config_with_the_same_message() {
    let (_, _, path) = check_config("[server.a]\ncommand = \"x\"\nbogus = 1\n");
    let out =
        std::process::Command::new(mcpd_bin()).args(["run", "--log-format", "text", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3:1: server.a.bogus", path.display())), "{stderr}");
}

#[test]
fn a_missing_file_is_named() {
    let out = std::process::Command::new(mcpd_bin()).args(["check", "-c", "/nonexistent/mcpd.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/mcpd.toml: cannot read"));
}
