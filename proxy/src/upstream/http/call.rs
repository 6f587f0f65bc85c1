//! One request to an instance, read as [`Event`]s: a JSON answer is one
//! `Response`; an SSE answer yields each event as soon as its bytes arrive
//! (nothing is buffered beyond the event being read, and the next read
//! waits until the front has written the previous event to the client, so
//! a slow client slows the instance's stream instead of growing memory).
//!
//! The same reader serves GET streams (`expects_answer = false`): every
//! event is a `Message`, and the stream's end is a `Failed`.
//!
//! Dropping a call whose answer has not come tells the instance to stop
//! (`notifications/cancelled`), as a dropped stdio call does.

use super::super::{Event, UpstreamError};
use super::HttpUpstream;
use super::client::describe;
use super::instance::{InFlight, Instance};
use super::sse::SseParser;
use crate::mcp::jsonrpc::{self, Kind, Message};
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::ResponseFuture;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Instant;

/// How much of an error answer's body is kept to show the client.
pub(super) const ERROR_BODY_LIMIT: usize = 64 << 10;

/// What [`Call::advance`] does next, decided while the state is borrowed.
enum Step {
    Start,
    Json,
    Data(Bytes),
    Fail(String),
    End,
}

enum State {
    Waiting(ResponseFuture),
    Json(Incoming),
    Sse(Incoming, Box<SseParser>),
    Done,
}

/// What to send upstream if the call is dropped before its answer.
pub(super) struct Cancel {
    pub upstream: Arc<HttpUpstream>,
    pub session: Option<HeaderValue>,
    pub request_id: Box<RawValue>,
}

pub struct Call {
    state: State,
    instance: Arc<Instance>,
    started: Instant,
    expects_answer: bool,
    /// Whether a 404 means "session lost" (the request carried a session id).
    has_session: bool,
    cancel: Option<Cancel>,
    done: bool,
    _in_flight: InFlight,
}

impl Call {
    pub(super) fn new(
        instance: &Arc<Instance>,
        response: ResponseFuture,
        expects_answer: bool,
        has_session: bool,
        cancel: Option<Cancel>,
    ) -> Call {
        Call {
            state: State::Waiting(response),
            _in_flight: instance.begin(),
            instance: Arc::clone(instance),
            started: Instant::now(),
            expects_answer,
            has_session,
            cancel,
            done: false,
        }
    }

    /// Waits for the instance's status line and headers; returns them for a
    /// successful answer (the body is then read by [`Call::next`]).
    pub(super) async fn start(&mut self) -> Result<http::response::Parts, UpstreamError> {
        let State::Waiting(future) = &mut self.state else {
            return Err(self.protocol("the answer was already started"));
        };
        let response = match future.await {
            Ok(response) => response,
            Err(error) => {
                self.done = true;
                self.state = State::Done;
                let reason = describe(&error);
                let instance = self.instance.label.clone();
                return Err(match error.is_connect() {
                    true => {
                        self.instance.note_unreachable(&reason);
                        UpstreamError::Unreachable { instance, reason }
                    }
                    false => {
                        self.instance.note_failure(&reason);
                        UpstreamError::Transport { instance, reason }
                    }
                });
            }
        };
        self.instance.metrics.seconds.observe(self.started.elapsed().as_secs_f64());
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_sse = starts_with_ignore_case(content_type, "text/event-stream");
        let is_json = starts_with_ignore_case(content_type, "application/json");
        match status {
            200..=299 if is_sse => self.state = State::Sse(body, Box::new(SseParser::new(super::MAX_ANSWER))),
            200..=299 if is_json && self.expects_answer => self.state = State::Json(body),
            200..=299 => {
                self.done = true;
                self.state = State::Done;
                let why = format!("answered {status} with {content_type:?} where an answer or an event stream belongs");
                return Err(self.protocol(&why));
            }
            404 if self.has_session => {
                self.done = true;
                self.state = State::Done;
                self.instance.note_success();
                return Err(UpstreamError::SessionLost { instance: self.instance.label.clone() });
            }
            _ => {
                self.done = true;
                self.state = State::Done;
                self.instance.metrics.refused.inc();
                let content_type = (!content_type.is_empty()).then(|| content_type.to_string());
                let headers = super::super::relayed_headers(&parts.headers);
                let body = read_limited(body, ERROR_BODY_LIMIT).await.unwrap_or_default();
                let instance = self.instance.label.clone();
                return Err(UpstreamError::Status { instance, status, content_type, body, headers });
            }
        }
        self.instance.note_success();
        Ok(parts)
    }

    /// Waits for the status line unless it came already.
    pub async fn ready(&mut self) -> Result<(), UpstreamError> {
        match self.state {
            State::Waiting(_) => self.start().await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The next thing the instance sends for this request.
    pub async fn next(&mut self) -> Event {
        let event = self.advance().await;
        if matches!(event, Event::Response { .. } | Event::Failed(_) | Event::Rejected(_)) {
            self.done = true;
            self.state = State::Done;
        }
        event
    }

    async fn advance(&mut self) -> Event {
        loop {
            let step = match &mut self.state {
                State::Waiting(_) => Step::Start,
                State::Json(_) => Step::Json,
                State::Sse(body, parser) => match parser.next_event() {
                    Ok(Some(event)) if event.is_message() => Step::Data(event.data),
                    Ok(Some(_)) => continue, // events of other types mean nothing here
                    Ok(None) => match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                parser.push(&data);
                            }
                            continue;
                        }
                        Some(Err(error)) => Step::Fail(describe(&error)),
                        None => Step::End,
                    },
                    Err(error) => Step::Fail(error.to_string()),
                },
                State::Done => return Event::Failed("the answer was already read".into()),
            };
            return match step {
                Step::Start => match self.start().await {
                    Ok(_) => continue,
                    Err(error) => Event::Rejected(error),
                },
                Step::Json => {
                    let State::Json(body) = std::mem::replace(&mut self.state, State::Done) else {
                        unreachable!("checked above")
                    };
                    match read_limited(body, super::MAX_ANSWER).await {
                        Ok(bytes) => answer(&bytes).unwrap_or_else(|| {
                            let label = &self.instance.label;
                            Event::Failed(format!("{label} answered with something that is not a JSON-RPC response"))
                        }),
                        Err(reason) => self.failed(&reason),
                    }
                }
                Step::Data(data) if self.expects_answer => answer(&data).unwrap_or(Event::Message(data)),
                Step::Data(data) => Event::Message(data),
                Step::Fail(reason) => self.failed(&reason),
                Step::End if self.expects_answer => self.failed("the event stream ended before the answer"),
                Step::End => Event::Failed("the event stream ended".into()),
            };
        }
    }

    fn failed(&self, reason: &str) -> Event {
        self.instance.note_failure(reason);
        Event::Failed(format!("MCP server instance {} failed before answering: {reason}", self.instance.label))
    }

    fn protocol(&self, reason: &str) -> UpstreamError {
        UpstreamError::Protocol { instance: self.instance.label.clone(), reason: reason.to_string() }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.done || !self.expects_answer {
            return;
        }
        let (Some(cancel), Ok(runtime)) = (self.cancel.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let instance = Arc::clone(&self.instance);
        runtime.spawn(async move {
            let params = format!(
                r#"{{"requestId":{},"reason":"the client went away or the request timed out"}}"#,
                cancel.request_id.get()
            );
            let body = Bytes::from(jsonrpc::notification("notifications/cancelled", Some(&params)));
            let request = cancel.upstream.post(instance.url.clone(), cancel.session.as_ref(), None, body);
            let sent = tokio::time::timeout(super::session::CONTROL_TIMEOUT, cancel.upstream.send(request)).await;
            tracing::debug!(instance = %instance.label, ok = matches!(sent, Ok(Ok(_))), "cancelled upstream request");
        });
    }
}

/// `bytes` as the answer, when it is a JSON-RPC response.
fn answer(bytes: &Bytes) -> Option<Event> {
    let message = Message::parse(bytes).ok()?;
    (message.kind() == Kind::Response)
        .then(|| Event::Response { bytes: bytes.clone(), is_error: message.error.is_some() })
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The whole body, up to `limit` bytes; one frame is passed on without a copy.
pub(super) async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, String> {
    let mut collected = crate::body::Collected::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| describe(&e))?;
        let Ok(data) = frame.into_data() else { continue };
        if !collected.push(data, limit as u64) {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
    }
    Ok(collected.finish())
}
