//! What hooks see, borrowed from the request being served: a message's or
//! an HTTP request's parts as references into the parsed body, the caller
//! and the route.
//!
//! A hook call needs the owned WIT records ([`McpMessage`], [`HttpRequest`]),
//! each part copied. A decision kept for reuse needs only a key of some
//! parts, so the chain looks decisions up on these views and builds the
//! records only when a plugin must really be called or a decision changes
//! the message: a chain whose decisions are all reused copies nothing.
//!
//! This module owns the views and their conversion to records; it does not
//! say which parts a route's hooks read (the front fills views accordingly)
//! or how keys are built from them ([`super::reuse`]).

use super::bindings::{Direction, Header, HttpRequest, McpMessage, MessageKind};
use std::borrow::Cow;

/// A message as hooks see it, borrowed. Parts no hook reads are `None`
/// (or empty), exactly as in the record built from it.
#[derive(Debug, Clone)]
pub struct MessageView<'a> {
    pub direction: Direction,
    pub kind: MessageKind,
    pub method: Option<&'a str>,
    pub id: Option<&'a str>,
    /// Tool or prompt name, or resource URI; owned only when its JSON had escapes.
    pub name: Option<Cow<'a, str>>,
    pub params: Option<&'a str>,
    pub error: Option<&'a str>,
    pub session: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub scopes: &'a [String],
    pub client_address: &'a str,
    pub headers: &'a [Header],
    pub route: &'a str,
}

impl MessageView<'_> {
    /// The WIT record a hook call takes.
    pub fn to_message(&self) -> McpMessage {
        let owned = |part: Option<&str>| part.map(str::to_owned);
        McpMessage {
            direction: self.direction,
            kind: self.kind,
            method: owned(self.method),
            id: owned(self.id),
            name: owned(self.name.as_deref()),
            params: owned(self.params),
            error: owned(self.error),
            session: owned(self.session),
            principal: owned(self.principal),
            scopes: self.scopes.to_vec(),
            client_address: self.client_address.to_owned(),
            headers: self.headers.to_vec(),
            route: self.route.to_owned(),
        }
    }
}

impl McpMessage {
    /// This record as a view (to build reuse keys from it).
    pub fn view(&self) -> MessageView<'_> {
        MessageView {
            direction: self.direction,
            kind: self.kind,
            method: self.method.as_deref(),
            id: self.id.as_deref(),
            name: self.name.as_deref().map(Cow::Borrowed),
            params: self.params.as_deref(),
            error: self.error.as_deref(),
            session: self.session.as_deref(),
            principal: self.principal.as_deref(),
            scopes: &self.scopes,
            client_address: &self.client_address,
            headers: &self.headers,
            route: &self.route,
        }
    }
}

/// Request headers as a hook sees them: records (a message's, or a
/// request's once a plugin changed them), or name/value pairs borrowed from
/// the HTTP request, so that a reused decision copies none.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    Records(&'a [Header]),
    Borrowed(&'a [(&'a str, &'a str)]),
}

impl<'a> Headers<'a> {
    /// Every value of the header `name` (lower case), in order.
    pub fn values<'n>(self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        let (records, pairs): (&[Header], &[(&str, &str)]) = match self {
            Headers::Records(records) => (records, &[]),
            Headers::Borrowed(pairs) => (&[], pairs),
        };
        let records = records.iter().filter(move |h| h.name == name).map(|h| h.value.as_str());
        records.chain(pairs.iter().filter(move |(n, _)| *n == name).map(|(_, value)| *value))
    }

    pub fn to_vec(self) -> Vec<Header> {
        match self {
            Headers::Records(records) => records.to_vec(),
            Headers::Borrowed(pairs) => pairs
                .iter()
                .map(|(name, value)| Header { name: (*name).to_owned(), value: (*value).to_owned() })
                .collect(),
        }
    }
}

/// An HTTP request as the HTTP-request hook sees it, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Headers<'a>,
    pub client_address: &'a str,
    pub route: &'a str,
}

impl HttpRequestView<'_> {
    /// The WIT record a hook call takes.
    pub fn to_request(&self) -> HttpRequest {
        HttpRequest {
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            headers: self.headers.to_vec(),
            client_address: self.client_address.to_owned(),
            route: self.route.to_owned(),
        }
    }
}

impl HttpRequest {
    /// This record as a view.
    pub fn view(&self) -> HttpRequestView<'_> {
        HttpRequestView {
            method: &self.method,
            path: &self.path,
            headers: Headers::Records(&self.headers),
            client_address: &self.client_address,
            route: &self.route,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_its_view_make_each_other() {
        let message = McpMessage {
            direction: Direction::ServerToClient,
            kind: MessageKind::Response,
            method: Some("tools/call".into()),
            id: Some("7".into()),
            name: Some("echo".into()),
            params: Some("{}".into()),
            error: None,
            session: Some("s".into()),
            principal: Some("ada".into()),
            scopes: vec!["mcp:read".into()],
            client_address: "127.0.0.1".into(),
            headers: vec![Header { name: "x-user".into(), value: "ada".into() }],
            route: "fx".into(),
        };
        assert_eq!(format!("{:?}", message.view().to_message()), format!("{message:?}"));
        let request = HttpRequest {
            method: "POST".into(),
            path: "/mcp".into(),
            headers: message.headers.clone(),
            client_address: "::1".into(),
            route: "fx".into(),
        };
        assert_eq!(format!("{:?}", request.view().to_request()), format!("{request:?}"));
        let pairs = [("x-user", "ada"), ("accept", "*/*"), ("x-user", "grace")];
        let borrowed = HttpRequestView { headers: Headers::Borrowed(&pairs), ..request.view() };
        let owned = borrowed.to_request();
        assert_eq!(owned.headers.len(), 3, "every pair becomes a record");
        for headers in [borrowed.headers, owned.view().headers] {
            assert_eq!(headers.values("x-user").collect::<Vec<_>>(), ["ada", "grace"], "all values, in order");
            assert_eq!(headers.values("host").count(), 0);
        }
    }
}
