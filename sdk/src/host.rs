//! The host imports, as the rest of the SDK calls them. In a wasm build
//! these are mcpd's; in a native build (`cargo test` of a plugin) they are
//! stand-ins, so plugin logic can be unit tested without mcpd: config `{}`,
//! real clocks, log lines on stderr, metrics dropped, and an in-memory store
//! per thread.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::mcpd::plugin::host::{
    counter_series, get_config, histogram_series, log, monotonic_nanos, now_millis, series_add, series_observe,
};
#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::mcpd::plugin::store;

/// Outbound HTTP over the `http-client` import.
#[cfg(target_arch = "wasm32")]
pub(crate) mod http {
    use crate::bindings::mcpd::plugin::http_client as wit;
    use crate::http::{Request, Response};

    pub fn send(request: Request) -> Result<Response, String> {
        let timeout_ms = request.timeout.as_millis().min(u32::MAX as u128) as u32;
        let request = wit::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms,
        };
        wit::send(&request).map(|r| Response { status: r.status, headers: r.headers, body: r.body })
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::sync::OnceLock;
    use std::time::{Instant, SystemTime};

    use crate::log::Level;

    pub fn get_config() -> String {
        "{}".into()
    }

    pub fn now_millis() -> u64 {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    pub fn monotonic_nanos() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    pub fn log(level: Level, message: &str) {
        eprintln!("[plugin {level:?}] {message}");
    }

    pub fn counter_series(_name: &str, _labels: &[(String, String)]) -> Option<u32> {
        None
    }

    pub fn histogram_series(_name: &str, _labels: &[(String, String)]) -> Option<u32> {
        None
    }

    pub fn series_add(_handle: u32, _value: u64) {}

    pub fn series_observe(_handle: u32, _value: f64) {}

    /// No network natively: a test registers answers per URL.
    pub mod http {
        use std::cell::RefCell;
        use std::collections::HashMap;

        use crate::http::{Request, Response};

        thread_local! {
            static ANSWERS: RefCell<HashMap<String, Response>> = RefCell::new(HashMap::new());
            static SEEN: RefCell<Vec<Request>> = const { RefCell::new(Vec::new()) };
        }

        /// Answers requests for `url` (on this thread) with `response`.
        pub fn respond(url: &str, response: Response) {
            ANSWERS.with_borrow_mut(|answers| answers.insert(url.to_string(), response));
        }

        /// The requests sent so far on this thread.
        pub fn requests_seen() -> Vec<Request> {
            SEEN.with_borrow(|seen| seen.clone())
        }

        pub fn send(request: Request) -> Result<Response, String> {
            let url = request.url.clone();
            SEEN.with_borrow_mut(|seen| seen.push(request));
            ANSWERS
                .with_borrow(|answers| answers.get(&url).cloned())
                .ok_or_else(|| format!("{url}: no answer registered (native build: see http::testing::respond)"))
        }
    }

    pub mod store {
        pub use crate::bindings::mcpd::plugin::store::Bucket;
        use std::cell::RefCell;
        use std::collections::HashMap;
        use std::time::{Duration, Instant};

        thread_local! {
            static STORE: RefCell<HashMap<String, (String, Option<Instant>)>> =
                RefCell::new(HashMap::new());
        }

        fn with<R>(f: impl FnOnce(&mut HashMap<String, (String, Option<Instant>)>) -> R) -> R {
            STORE.with_borrow_mut(|map| {
                let now = Instant::now();
                map.retain(|_, (_, expires)| expires.is_none_or(|t| t > now));
                f(map)
            })
        }

        fn expiry(ttl_ms: u64) -> Option<Instant> {
            (ttl_ms > 0).then(|| Instant::now() + Duration::from_millis(ttl_ms))
        }

        pub fn incr(key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
            with(|map| {
                let entry = map.entry(key.to_string()).or_insert_with(|| ("0".into(), expiry(ttl_ms)));
                let n = entry.0.parse::<i64>().map_err(|_| format!("{key} is not an integer"))?.wrapping_add(delta);
                entry.0 = n.to_string();
                Ok(n)
            })
        }

        pub fn get(key: &str) -> Result<Option<String>, String> {
            with(|map| Ok(map.get(key).map(|(v, _)| v.clone())))
        }

        pub fn set(key: &str, value: &str, ttl_ms: u64) -> Result<(), String> {
            with(|map| {
                map.insert(key.to_string(), (value.to_string(), expiry(ttl_ms)));
                Ok(())
            })
        }

        /// Token buckets as `(tokens, last refill)`, refilled continuously.
        pub fn take(key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<Bucket, String> {
            thread_local! {
                static BUCKETS: RefCell<HashMap<String, (f64, Instant)>> = RefCell::new(HashMap::new());
            }
            BUCKETS.with_borrow_mut(|buckets| {
                let now = Instant::now();
                let (tokens, last) = buckets.entry(key.to_string()).or_insert((capacity as f64, now));
                let per_ms = capacity as f64 / period_ms.max(1) as f64;
                *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * 1000.0 * per_ms).min(capacity as f64);
                *last = now;
                if *tokens >= cost as f64 {
                    *tokens -= cost as f64;
                    Ok(Bucket { allowed: true, remaining: *tokens as u64, retry_after_ms: 0 })
                } else {
                    let wait = ((cost as f64 - *tokens) / per_ms).ceil() as u64;
                    Ok(Bucket { allowed: false, remaining: *tokens as u64, retry_after_ms: wait })
                }
            })
        }

        pub fn delete(key: &str) -> Result<(), String> {
            with(|map| {
                map.remove(key);
                Ok(())
            })
        }
    }
}
