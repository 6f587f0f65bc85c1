//! The plugins' key-value store with expiry (the `store` import), in memory.
//!
//! Keys are namespaced by plugin. Integers (`incr`) and text (`set`) share
//! one map; expired entries vanish on access and in a periodic sweep. A Redis
//! backend will take this one's place behind the same methods, so that
//! counters hold across mcpd nodes.

use dashmap::DashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    Text(String),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

#[derive(Default)]
pub struct KvStore {
    map: DashMap<String, Entry>,
}

fn expiry(ttl_ms: u64, now: Instant) -> Option<Instant> {
    (ttl_ms > 0).then(|| now + Duration::from_millis(ttl_ms))
}

impl KvStore {
    pub fn incr(&self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        let now = Instant::now();
        let mut entry =
            self.map.entry(key).or_insert_with(|| Entry { value: Value::Int(0), expires: expiry(ttl_ms, now) });
        if !entry.live(now) {
            *entry = Entry { value: Value::Int(0), expires: expiry(ttl_ms, now) };
        }
        match &mut entry.value {
            Value::Int(n) => {
                *n = n.saturating_add(delta);
                Ok(*n)
            }
            Value::Text(_) => Err("the key holds text, not a counter".into()),
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        let entry = self.map.get(key)?;
        if !entry.live(now) {
            return None;
        }
        Some(match &entry.value {
            Value::Int(n) => n.to_string(),
            Value::Text(s) => s.clone(),
        })
    }

    pub fn set(&self, key: String, value: String, ttl_ms: u64) {
        let expires = expiry(ttl_ms, Instant::now());
        self.map.insert(key, Entry { value: Value::Text(value), expires });
    }

    pub fn delete(&self, key: &str) {
        self.map.remove(key);
    }

    /// Drops expired entries; returns how many.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let before = self.map.len();
        self.map.retain(|_, entry| entry.live(now));
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_expire_and_text_is_separate() {
        let kv = KvStore::default();
        assert_eq!(kv.incr("a".into(), 2, 0), Ok(2));
        assert_eq!(kv.incr("a".into(), 3, 0), Ok(5));
        assert_eq!(kv.get("a").as_deref(), Some("5"));
        kv.set("t".into(), "hello".into(), 0);
        assert!(kv.incr("t".into(), 1, 0).is_err());
        assert_eq!(kv.incr("short".into(), 1, 1), Ok(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.get("short"), None, "an expired counter reads as absent");
        assert_eq!(kv.incr("short".into(), 1, 1000), Ok(1), "and starts again from 0");
        kv.delete("a");
        assert_eq!(kv.get("a"), None);
        assert_eq!(kv.sweep(), 0);
    }
}
