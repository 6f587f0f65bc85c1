//! What a request is about: the tool or prompt name (`tools/call`,
//! `prompts/get`) or the resource URI (`resources/read`, `…/subscribe`,
//! `…/unsubscribe`) in its params. Plugins see it as `name`, and decisions
//! kept for reuse are keyed by it, so it is read for every message that
//! reaches a hook.
//!
//! The meaning is serde's, for a struct with optional `name` and `uri`
//! strings: params that are not such an object, or that name either field
//! twice, have no subject. [`of`] gets the same answer by scanning params
//! already known to be valid JSON (a parsed message's), which is several
//! times cheaper than deserializing, and hands anything unusual (escapes, a
//! non-object) to serde.

use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(serde::Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

/// Which params field holds the subject of `method`, if it has one.
fn field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    }
}

/// The subject of a `method` request with `params` (valid JSON).
pub fn of<'a>(method: &str, params: &'a RawValue) -> Option<Cow<'a, str>> {
    let field = field(method)?;
    match scan(params.get(), field) {
        Scan::Found(subject) => subject.map(Cow::Borrowed),
        Scan::Unsure => deserialized(field, params.get()),
    }
}

/// The subject of a `method` request with `params`, which may be any text
/// (e.g. what a plugin returned).
pub fn of_text<'a>(method: &str, params: &'a str) -> Option<Cow<'a, str>> {
    deserialized(field(method)?, params)
}

fn deserialized<'a>(field: &str, params: &'a str) -> Option<Cow<'a, str>> {
    let named: Named<'a> = serde_json::from_str(params).ok()?;
    if field == "name" { named.name } else { named.uri }
}

enum Scan<'a> {
    /// What serde would say.
    Found(Option<&'a str>),
    /// Something the scan leaves to serde.
    Unsure,
}

/// Reads `field` from the JSON object in `text`, which must be valid JSON
/// (so values are skipped, not checked).
fn scan<'a>(text: &'a str, field: &str) -> Scan<'a> {
    let json = text.as_bytes();
    let mut at = skip_space(json, 0);
    if json.get(at) != Some(&b'{') {
        // serde also reads a struct from an array, by position.
        return Scan::Unsure;
    }
    at = skip_space(json, at + 1);
    let (mut name, mut uri): (Option<Option<&str>>, Option<Option<&str>>) = (None, None);
    while json.get(at) == Some(&b'"') {
        let Some(key) = plain_string(json, at) else { return Scan::Unsure };
        at = skip_space(json, key.end + 1);
        // The ':' after the key.
        at = skip_space(json, at + 1);
        let slot = match &json[key.start..key.end] {
            b"name" => Some(&mut name),
            b"uri" => Some(&mut uri),
            _ => None,
        };
        match slot {
            // A field twice is an error to serde: no subject.
            Some(Some(_)) => return Scan::Found(None),
            Some(slot) => {
                let value = match json.get(at) {
                    // Quotes are ASCII, so the span's ends are char boundaries.
                    Some(b'"') => match plain_string(json, at) {
                        Some(span) => Some(&text[span]),
                        None => return Scan::Unsure,
                    },
                    Some(b'n') => None,
                    // Not a string: an error to serde.
                    _ => return Scan::Found(None),
                };
                *slot = Some(value);
            }
            None => {}
        }
        at = skip_space(json, skip_value(json, at));
        match json.get(at) {
            Some(b',') => at = skip_space(json, at + 1),
            _ => break,
        }
    }
    let found = if field == "name" { name } else { uri };
    Scan::Found(found.flatten())
}

/// The span of the string starting at `json[at]` (a '"') without its
/// quotes; `None` when it has escapes.
fn plain_string(json: &[u8], at: usize) -> Option<std::ops::Range<usize>> {
    let start = at + 1;
    let length = json.get(start..)?.iter().position(|&b| b == b'"' || b == b'\\')?;
    match json[start + length] {
        b'"' => Some(start..start + length),
        _ => None,
    }
}

/// Where the value starting at `json[at]` ends (one past it).
fn skip_value(json: &[u8], start: usize) -> usize {
    match json.get(start) {
        Some(b'"') => skip_string(json, start),
        Some(b'{' | b'[') => {
            let (mut at, mut depth) = (start, 0usize);
            while let Some(&byte) = json.get(at) {
                match byte {
                    b'"' => {
                        at = skip_string(json, at);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            at
        }
        // A number, true, false or null: up to what follows it.
        _ => {
            let rest = json.get(start..).unwrap_or_default();
            start
                + rest
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(rest.len())
        }
    }
}

/// One past the closing quote of the string starting at `json[at]`.
fn skip_string(json: &[u8], mut at: usize) -> usize {
    at += 1;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    at
}

fn skip_space(json: &[u8], mut at: usize) -> usize {
    while matches!(json.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &[&str] = &[
        r#"{"name":"echo","arguments":{"text":"hello"}}"#,
        r#"{"arguments":{"name":"inner","list":[1,{"name":"x"}]},"name":"outer"}"#,
        r#" { "name" : "spaced" , "arguments" : { } } "#,
        r#"{"name":null}"#,
        r#"{"name":7}"#,
        r#"{"name":"a","name":"b"}"#,
        r#"{"uri":"file:///x","uri":"file:///y","name":"n"}"#,
        r#"{"uri":5,"name":"n"}"#,
        r#"{"name":"e\"scaped"}"#,
        r#"{"na\u006de":"escaped key"}"#,
        r#"{"text":"a \"quoted\" name","name":"after"}"#,
        r#"{"s":"back\\","name":"after a backslash"}"#,
        r#"{"n":-1.5e3,"t":true,"f":false,"z":null,"name":"after scalars"}"#,
        r#"{"a":[[],[{}],"]"],"b":{"c":"}"},"name":"after brackets in strings"}"#,
        r#"{"uri":"file:///ünïcode","name":"ö"}"#,
        r#"{}"#,
        r#"["by position","file:///p"]"#,
        r#""a string""#,
        r#"42"#,
        r#"null"#,
        r#"{"name":"x","arguments":null}"#,
    ];

    #[test]
    fn the_scan_agrees_with_serde() {
        for case in CASES {
            let raw = RawValue::from_string(case.to_string()).expect("valid JSON");
            for method in ["tools/call", "resources/read", "tools/list"] {
                assert_eq!(of(method, &raw), of_text(method, case), "{method} {case}");
            }
        }
    }

    #[test]
    fn the_common_shapes_are_scanned_without_serde() {
        assert!(matches!(scan(CASES[0], "name"), Scan::Found(Some("echo"))));
        assert!(matches!(scan(CASES[1], "name"), Scan::Found(Some("outer"))));
        assert!(matches!(scan(CASES[5], "name"), Scan::Found(None)), "a duplicate is decided");
        assert!(matches!(scan(CASES[8], "name"), Scan::Unsure), "escapes go to serde");
    }
}
