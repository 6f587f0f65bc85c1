//! What an HTTP answer becomes for the model: a tool result. A 2xx with a
//! JSON body is that JSON as text, and as `structuredContent` when it is
//! an object; any other status is a failed call (`isError: true`) whose text
//! says the status and what the API said, so the model can correct itself.

use mcpd_plugin_sdk::ToolResult;
use mcpd_plugin_sdk::http::Response;
use serde_json::Value;

/// The tool result for this answer.
pub fn tool_result(response: &Response) -> ToolResult {
    let body = body_text(response);
    if !response.ok() {
        let status = status_line(response.status);
        return match body {
            Some(body) => ToolResult::error(format!("HTTP {status}: {body}")),
            None => ToolResult::error(format!("HTTP {status}")),
        };
    }
    let Some(body) = body else {
        return ToolResult::text(format!("HTTP {}", status_line(response.status)));
    };
    match json_body(response) {
        // The body as the API wrote it (no re-serialisation), structured
        // when MCP allows it (objects only).
        Some(Value::Object(object)) => ToolResult::text(body).structured(Value::Object(object)),
        _ => ToolResult::text(body),
    }
}

/// The body parsed, if the answer says (or, saying nothing, looks like)
/// it is JSON.
fn json_body(response: &Response) -> Option<Value> {
    let declared = response.header("content-type").map(|t| t.split(';').next().unwrap_or_default().trim());
    let json = match declared {
        Some(mime) => mime == "application/json" || mime.ends_with("+json"),
        None => true,
    };
    if json { serde_json::from_slice(&response.body).ok() } else { None }
}

/// The body as text (invalid UTF-8 replaced), `None` if it is empty.
fn body_text(response: &Response) -> Option<String> {
    let text = response.text();
    if text.trim().is_empty() { None } else { Some(text) }
}

/// `404 Not Found`: the reason phrase for the common statuses.
fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return status.to_string(),
    };
    format!("{status} {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpd_plugin_sdk::Header;
    use serde_json::json;

    fn response(status: u16, content_type: Option<&str>, body: &str) -> Response {
        let headers =
            content_type.map(|t| Header { name: "content-type".into(), value: t.into() }).into_iter().collect();
        Response { status, headers, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn json_objects_are_structured() {
        let r = tool_result(&response(200, Some("application/json; charset=utf-8"), r#"{"id": 7}"#)).to_value();
        assert_eq!(r, json!({"content": [{"type": "text", "text": "{\"id\": 7}"}], "structuredContent": {"id": 7}}));
        let r = tool_result(&response(200, None, "[1,2]")).to_value();
        assert_eq!(r, json!({"content": [{"type": "text", "text": "[1,2]"}]}));
    }

    #[test]
    fn other_bodies_are_text() {
        let r = tool_result(&response(200, Some("text/plain"), "{\"not\": \"parsed\"}")).to_value();
        assert!(r.get("structuredContent").is_none());
        let r = tool_result(&response(204, None, "")).to_value();
        assert_eq!(r["content"][0]["text"], "HTTP 204 No Content");
        assert!(r.get("isError").is_none());
    }

    #[test]
    fn error_statuses_are_failed_calls() {
        let r = tool_result(&response(404, Some("application/json"), r#"{"error":"no such user"}"#)).to_value();
        assert_eq!(
            r,
            json!({"content": [{"type": "text", "text": "HTTP 404 Not Found: {\"error\":\"no such user\"}"}], "isError": true})
        );
        let r = tool_result(&response(599, None, "")).to_value();
        assert_eq!(r["content"][0]["text"], "HTTP 599");
        assert_eq!(r["isError"], true);
    }
}
