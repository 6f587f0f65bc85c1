//! The host imports, as the rest of the SDK calls them. In a wasm build
//! these are mcpd's; in a native build (`cargo test` of a plugin) they are
//! stand-ins, so plugin logic can be unit tested without mcpd: config `{}`,
//! real clocks, log lines on stderr, metrics dropped, and an in-memory store
//! per thread.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::mcpd::plugin::host::{
    counter_add, get_config, histogram_observe, log, monotonic_nanos, now_millis,
};
#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::mcpd::plugin::store;

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

    pub fn counter_add(_name: &str, _labels: &[(String, String)], _value: u64) {}

    pub fn histogram_observe(_name: &str, _labels: &[(String, String)], _value: f64) {}

    pub mod store {
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

        pub fn delete(key: &str) -> Result<(), String> {
            with(|map| {
                map.remove(key);
                Ok(())
            })
        }
    }
}
