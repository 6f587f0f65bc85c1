//! Bare MCP-over-HTTP requests for the scenarios that need more than the
//! load generator's call loop (sessions.rs, sse_latency.rs): one keep-alive
//! HTTP/1.1 connection, `initialize` + `notifications/initialized`, GET
//! streams. Not a general MCP client: no retries, no JSON-RPC matching.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpd-bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// One keep-alive connection to `addr`.
pub struct Http {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Http> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Http { sender, host: addr.to_string() })
    }

    /// Sends one request; the answer's body is left to the caller.
    pub async fn send(
        &mut self,
        method: hyper::Method,
        path: &str,
        session: Option<&str>,
        body: String,
    ) -> anyhow::Result<hyper::Response<Incoming>> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        self.sender.ready().await?;
        Ok(self.sender.send_request(request.body(Full::new(Bytes::from(body)))?).await?)
    }

    /// A new session (initialize, then initialized); returns its id.
    pub async fn initialize(&mut self, path: &str) -> anyhow::Result<String> {
        let response = self.send(hyper::Method::POST, path, None, INIT.into()).await?;
        let status = response.status();
        let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        response.into_body().collect().await?;
        anyhow::ensure!(status == 200, "initialize answered {status}");
        let session = session.ok_or_else(|| anyhow::anyhow!("initialize answered without Mcp-Session-Id"))?;
        let response = self.send(hyper::Method::POST, path, Some(&session), INITIALIZED.into()).await?;
        let status = response.status();
        response.into_body().collect().await?;
        anyhow::ensure!(status == 202, "notifications/initialized answered {status}");
        Ok(session)
    }
}

/// Opens a GET stream on `path` (the session's stream, or a legacy `/sse`
/// connection) on a connection of its own and waits for its first event,
/// so the stream is established when this returns. Hold the result to keep
/// the stream open.
pub async fn open_stream(
    addr: SocketAddr,
    path: &str,
    session: Option<&str>,
) -> anyhow::Result<(Http, hyper::Response<Incoming>)> {
    let mut http = Http::connect(addr).await?;
    let mut response = http.send(hyper::Method::GET, path, session, String::new()).await?;
    let status = response.status();
    anyhow::ensure!(status == 200, "GET {path} answered {status}");
    if session.is_none() {
        // Legacy SSE: the `endpoint` event shows the connection is a session.
        let frame = response.body_mut().frame().await;
        anyhow::ensure!(matches!(frame, Some(Ok(_))), "GET {path}: the stream ended before its first event");
    }
    Ok((http, response))
}
