//! Building the `Decision` a hook returns.
//!
//! ```
//! use mcpd_plugin_sdk::{codes, Decision};
//! let stop = Decision::reject(401, codes::UNAUTHORIZED, "no API key")
//!     .header("www-authenticate", "Bearer");
//! let carry_on = Decision::modify().principal("ada").header("x-user", "ada");
//! let answer = Decision::respond(r#"{"content":[]}"#);
//! # let _ = (stop, carry_on, answer);
//! ```
//!
//! The builder methods apply to whichever kind of decision they are called
//! on: `header` adds to the rejection's answer or to the request that
//! carries on; `principal` and `params` turn `proceed` into `modify` and
//! leave a rejection or direct answer alone (that message goes no further,
//! so there is nothing to change).

use serde_json::Value;

use crate::{Changes, Decision, Header, HttpReply, Rejection, RpcError};

impl Decision {
    /// Carry on unchanged (the same as `Decision::Proceed`).
    pub fn proceed() -> Self {
        Decision::Proceed
    }

    /// Stop and answer the client with this HTTP status and a JSON-RPC error
    /// (see [`crate::codes`]).
    pub fn reject(status: u16, code: i32, message: impl Into<String>) -> Self {
        Decision::Reject(Rejection {
            status,
            error: RpcError { code, message: message.into(), data: None },
            headers: Vec::new(),
        })
    }

    /// Stop and answer directly with this JSON-RPC `result` (JSON text).
    pub fn respond(result_json: impl Into<String>) -> Self {
        Decision::Respond(result_json.into())
    }

    /// Stop and answer directly with this JSON-RPC `result`.
    pub fn respond_json(result: &Value) -> Self {
        Decision::Respond(result.to_string())
    }

    /// Stop and answer with this HTTP response as it is: for documents that
    /// are not MCP messages (e.g. OAuth protected-resource metadata). Add
    /// headers with `header`; `content-type` defaults to JSON.
    pub fn reply(status: u16, body: impl Into<String>) -> Self {
        let content_type = Header { name: "content-type".into(), value: "application/json".into() };
        Decision::Reply(HttpReply { status, headers: vec![content_type], body: body.into() })
    }

    /// Carry on with changes; add them with `principal`, `params`, `header`.
    pub fn modify() -> Self {
        Decision::Modify(Changes { params: None, principal: None, scopes: None, headers: Vec::new() })
    }

    /// Sets who the client is, for later plugins and for logs.
    pub fn principal(self, principal: impl Into<String>) -> Self {
        self.change(|c| c.principal = Some(principal.into()))
    }

    /// Sets what the client may do (e.g. OAuth scopes), for later plugins.
    pub fn scopes<S: Into<String>>(self, scopes: impl IntoIterator<Item = S>) -> Self {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.change(|c| c.scopes = Some(scopes))
    }

    /// Replaces the params (for responses: the result) with this JSON text.
    pub fn params(self, params_json: impl Into<String>) -> Self {
        self.change(|c| c.params = Some(params_json.into()))
    }

    /// Replaces the params (for responses: the result) with this value.
    pub fn params_json(self, params: &Value) -> Self {
        self.change(|c| c.params = Some(params.to_string()))
    }

    /// A header: added to the request that carries on, or to a rejection's
    /// or reply's answer (replacing one of the same name). A direct answer (`respond`)
    /// has no headers to set.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let header = Header { name: name.into().to_ascii_lowercase(), value: value.into() };
        match &mut self {
            Decision::Reject(r) => put_header(&mut r.headers, header),
            Decision::Reply(r) => put_header(&mut r.headers, header),
            Decision::Proceed | Decision::Modify(_) => {
                return self.change(|c| put_header(&mut c.headers, header));
            }
            Decision::Respond(_) => {}
        }
        self
    }

    /// The JSON-RPC error's `data` member (JSON text); rejections only.
    pub fn data(mut self, data_json: impl Into<String>) -> Self {
        if let Decision::Reject(r) = &mut self {
            r.error.data = Some(data_json.into());
        }
        self
    }

    fn change(self, f: impl FnOnce(&mut Changes)) -> Self {
        match self {
            Decision::Proceed => {
                let mut d = Decision::modify();
                if let Decision::Modify(c) = &mut d {
                    f(c);
                }
                d
            }
            Decision::Modify(mut c) => {
                f(&mut c);
                Decision::Modify(c)
            }
            stop => stop,
        }
    }
}

fn put_header(headers: &mut Vec<Header>, header: Header) {
    headers.retain(|h| h.name != header.name);
    headers.push(header);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    #[test]
    fn reject_with_headers_and_data() {
        let d = Decision::reject(429, codes::LIMIT_EXCEEDED, "slow down")
            .header("Retry-After", "1")
            .header("retry-after", "2")
            .data(r#"{"limit":10}"#)
            .principal("ignored");
        let Decision::Reject(r) = d else { panic!("{d:?}") };
        assert_eq!(r.status, 429);
        assert_eq!(r.error.code, -32002);
        assert_eq!(r.error.data.as_deref(), Some(r#"{"limit":10}"#));
        assert_eq!(r.headers.len(), 1);
        assert_eq!((r.headers[0].name.as_str(), r.headers[0].value.as_str()), ("retry-after", "2"));
    }

    #[test]
    fn proceed_becomes_modify() {
        let d = Decision::proceed().principal("ada").params_json(&serde_json::json!({"a": 1})).header("X-User", "ada");
        assert_eq!(
            d,
            Decision::Modify(Changes {
                params: Some(r#"{"a":1}"#.into()),
                principal: Some("ada".into()),
                scopes: None,
                headers: vec![Header { name: "x-user".into(), value: "ada".into() }],
            })
        );
    }

    #[test]
    fn reply_carries_headers() {
        let d = Decision::reply(200, "{}").header("Cache-Control", "max-age=60").principal("p");
        let Decision::Reply(r) = d else { panic!("{d:?}") };
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.headers[1].name, "cache-control");
    }

    #[test]
    fn respond_ignores_changes() {
        let d = Decision::respond("{}").header("x", "y").principal("p");
        assert_eq!(d, Decision::Respond("{}".into()));
    }
}
