//! A raw SSE reader for the tests that look at the wire: event names, ids,
//! `retry`, comments (keepalives), and a minimal 2024-11-05 HTTP+SSE client
//! ([`Legacy`]) built on it. Real SDK clients are driven elsewhere; this one
//! exists to check exactly what mcpd writes.

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// One SSE event as the client parsed it; a comment-only block is `event` ":".
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }
}

/// An open SSE response; dropping it closes the connection.
pub struct EventStream {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl EventStream {
    pub async fn open(request: reqwest::RequestBuilder) -> EventStream {
        let response = request.send().await.expect("the SSE request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if tx.send(parse(&block)).is_err() {
                        return;
                    }
                }
            }
        });
        EventStream { status, headers, events, reader }
    }

    /// The next event or comment; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Event> {
        tokio::time::timeout(Duration::from_secs(15), self.events.recv()).await.expect("an SSE event within 15 s")
    }

    /// The next event that carries data (skips comments and empty-data
    /// priming events); panics if the stream ends first.
    pub async fn next_message(&mut self) -> Event {
        loop {
            let event = self.next().await.expect("the stream is still open");
            if event.event != ":" && !event.data.is_empty() {
                return event;
            }
        }
    }

    /// Messages until (and including) the answer to request `id`.
    pub async fn until_answer(&mut self, id: u64) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let message = self.next_message().await.json();
            let done = message["id"] == id && (message.get("result").is_some() || message.get("error").is_some());
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

fn parse(block: &str) -> Event {
    let mut event = Event { event: "message".into(), ..Event::default() };
    let mut data: Vec<&str> = Vec::new();
    let mut only_comments = true;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        only_comments = false;
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = value.to_string(),
            "data" => data.push(value),
            "id" => event.id = Some(value.to_string()),
            "retry" => event.retry = value.parse().ok(),
            _ => {}
        }
    }
    if only_comments {
        event.event = ":".into();
    }
    event.data = data.join("\n");
    event
}

/// A 2024-11-05 HTTP+SSE client: the stream, and where to POST.
pub struct Legacy {
    pub stream: EventStream,
    /// The `endpoint` event's data, as sent.
    pub endpoint: String,
    pub post_url: String,
    pub http: reqwest::Client,
}

impl Legacy {
    /// Opens `GET origin + sse_path` and reads the `endpoint` event.
    pub async fn open(origin: &str, sse_path: &str) -> Legacy {
        let http = reqwest::Client::new();
        let mut stream =
            EventStream::open(http.get(format!("{origin}{sse_path}")).header("accept", "text/event-stream")).await;
        assert_eq!(stream.status, 200, "the SSE stream opens");
        let first = stream.next().await.expect("an endpoint event");
        assert_eq!(first.event, "endpoint", "the first event names the POST endpoint: {first:?}");
        let endpoint = first.data.clone();
        Legacy { stream, post_url: format!("{origin}{endpoint}"), endpoint, http }
    }

    pub fn session_id(&self) -> &str {
        self.endpoint.split("sessionId=").nth(1).expect("sessionId in the endpoint")
    }

    /// POSTs one message; returns the status.
    pub async fn post(&self, message: &Value) -> u16 {
        let response = self
            .http
            .post(&self.post_url)
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
            .await
            .expect("POST");
        response.status().as_u16()
    }

    /// Initializes (2024-11-05) and sends `notifications/initialized`; the answer.
    pub async fn initialize(&mut self) -> Value {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {"sampling": {}},
            "clientInfo": {"name": "legacy-raw", "version": "1"}}});
        assert_eq!(self.post(&init).await, 202);
        let answer = self.stream.until_answer(0).await.pop().expect("an answer");
        assert!(answer.get("result").is_some(), "initialize succeeded: {answer}");
        assert_eq!(self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await, 202);
        answer
    }

    /// POSTs request `id` (202) and returns what the stream carried up to its answer.
    pub async fn request(&mut self, id: u64, method: &str, params: Value) -> Vec<Value> {
        let status = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        assert_eq!(status, 202, "a POSTed request is accepted");
        self.stream.until_answer(id).await
    }
}
