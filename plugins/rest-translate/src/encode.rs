//! Turning tool arguments (JSON values) into URL parts: path segments and
//! query pairs, percent-encoded.

use serde_json::Value;

/// A scalar argument as the text that goes on the wire: strings as they
/// are, numbers and booleans as JSON writes them, anything else as JSON
/// text (an API that wants an object in a query parameter gets its JSON).
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A path parameter's value: arrays as comma-separated items (OpenAPI's
/// `simple` style, its default for paths), each part encoded so that a `/`
/// in an ID cannot change which resource the request reaches.
pub fn path_segment(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(|v| percent(&scalar(v))).collect::<Vec<_>>().join(","),
        other => percent(&scalar(other)),
    }
}

/// Appends `name=value` pairs for one query argument to `query`: arrays
/// repeat the name (OpenAPI's `form` style with `explode`, its default);
/// `null` adds nothing.
pub fn query_pairs(query: &mut Vec<String>, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items.iter().filter(|v| !v.is_null()) {
                query.push(format!("{}={}", percent(name), percent(&scalar(item))));
            }
        }
        other => query.push(format!("{}={}", percent(name), percent(&scalar(other)))),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(percent("a b/c?d=é~"), "a%20b%2Fc%3Fd%3D%C3%A9~");
        assert_eq!(path_segment(&json!("../admin")), "..%2Fadmin");
        assert_eq!(path_segment(&json!([1, "a,b"])), "1,a%2Cb");
        assert_eq!(path_segment(&json!(true)), "true");
    }

    #[test]
    fn query_arrays_repeat_and_null_vanishes() {
        let mut q = Vec::new();
        query_pairs(&mut q, "tag", &json!(["a", "b c"]));
        query_pairs(&mut q, "limit", &json!(10));
        query_pairs(&mut q, "skip", &Value::Null);
        query_pairs(&mut q, "filter", &json!({"x": 1}));
        assert_eq!(q, ["tag=a", "tag=b%20c", "limit=10", "filter=%7B%22x%22%3A1%7D"]);
    }
}
