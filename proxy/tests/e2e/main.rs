//! End-to-end tests: the real `mcpd` binary fronting the real fixture MCP
//! server, driven by the official Rust MCP SDK (rmcp) and by raw HTTP for
//! the protocol corners an SDK never exercises. One test binary for all.

#[allow(deprecated)]
mod common;

mod auth;
mod client;
mod config;
mod conformance;
mod edge;
mod examples;
mod failures;
mod host_imports;
mod http_upstream;
mod legacy_sse;
mod limits;
mod plugins;
mod policy;
mod protocol;
mod python_sdk;
mod resume;
mod reuse;
mod shared_routing;
mod sse_client;
mod stateless;
mod translate;
mod ts_client;
