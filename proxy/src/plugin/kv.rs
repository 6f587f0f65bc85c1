//! The plugins' key-value store with expiry (the `store` import), in memory.
//!
//! Keys are namespaced by plugin. Integers (`incr`), text (`set`) and token
//! buckets (`take`) share one map; expired entries vanish on access and in a
//! periodic sweep. [`super::store`] puts this or Redis behind the import.

use dashmap::DashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    Text(String),
    /// Tokens and when they were last topped up.
    Bucket(f64, Instant),
}

/// A token bucket after a `take`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub allowed: bool,
    pub remaining: u64,
    pub retry_after_ms: u64,
}

/// Tops up `tokens` for `elapsed_ms` and takes `cost` if there are enough.
/// Shared with the Redis backend's script, which does the same sums.
pub fn take_tokens(tokens: &mut f64, elapsed_ms: f64, capacity: u64, period_ms: u64, cost: u64) -> BucketState {
    let per_ms = capacity as f64 / period_ms.max(1) as f64;
    *tokens = (*tokens + elapsed_ms.max(0.0) * per_ms).min(capacity as f64);
    if *tokens >= cost as f64 {
        *tokens -= cost as f64;
        BucketState { allowed: true, remaining: *tokens as u64, retry_after_ms: 0 }
    } else {
        let wait = if per_ms > 0.0 { ((cost as f64 - *tokens) / per_ms).ceil() as u64 } else { u64::MAX };
        BucketState { allowed: false, remaining: *tokens as u64, retry_after_ms: wait }
    }
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
    /// foldhash, seeded per map (see `reuse`'s cache).
    map: DashMap<String, Entry, foldhash::quality::RandomState>,
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
            _ => Err("the key holds a value that is not a counter".into()),
        }
    }

    /// See `store.take` in the WIT. The bucket's entry expires once it
    /// would be full again, so idle buckets do not pile up.
    pub fn take(&self, key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<BucketState, String> {
        let now = Instant::now();
        let full = Duration::from_millis(period_ms.max(1));
        let fresh = || Entry { value: Value::Bucket(capacity as f64, now), expires: Some(now + full) };
        // The key is copied only for a new bucket: takes repeat per request.
        let mut entry = match self.map.get_mut(key) {
            Some(entry) => entry,
            None => self.map.entry(key.to_owned()).or_insert_with(fresh),
        };
        if !entry.live(now) {
            *entry = fresh();
        }
        let Value::Bucket(tokens, last) = &mut entry.value else {
            return Err("the key holds a value that is not a token bucket".into());
        };
        let state = take_tokens(tokens, now.duration_since(*last).as_secs_f64() * 1000.0, capacity, period_ms, cost);
        *last = now;
        entry.expires = Some(now + full);
        Ok(state)
    }

    /// Puts back `cost` tokens a `take` took (at most up to `capacity`).
    pub fn give_back(&self, key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<(), String> {
        let now = Instant::now();
        let Some(mut entry) = self.map.get_mut(key) else {
            // Gone (expired, so full again): nothing to give back.
            return Ok(());
        };
        let Value::Bucket(tokens, last) = &mut entry.value else {
            return Err("the key holds a value that is not a token bucket".into());
        };
        take_tokens(tokens, now.duration_since(*last).as_secs_f64() * 1000.0, capacity, period_ms, 0);
        *tokens = (*tokens + cost as f64).min(capacity as f64);
        *last = now;
        Ok(())
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
            Value::Bucket(tokens, _) => (*tokens as u64).to_string(),
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

    #[test]
    fn buckets_allow_capacity_then_refuse_with_a_wait() {
        let kv = KvStore::default();
        for left in (0..3).rev() {
            let state = kv.take("b", 3, 60_000, 1).unwrap();
            assert_eq!((state.allowed, state.remaining), (true, left));
        }
        let refused = kv.take("b", 3, 60_000, 1).unwrap();
        assert!(!refused.allowed);
        assert!((19_000..=20_000).contains(&refused.retry_after_ms), "{refused:?}");
        let mut tokens = 0.0;
        assert!(take_tokens(&mut tokens, 20_000.0, 3, 60_000, 1).allowed, "a token comes back after period/capacity");
    }

    #[test]
    fn given_back_tokens_can_be_taken_again_up_to_capacity() {
        let kv = KvStore::default();
        assert!(kv.take("g", 2, 60_000, 2).unwrap().allowed);
        assert!(!kv.take("g", 2, 60_000, 1).unwrap().allowed, "empty");
        kv.give_back("g", 2, 60_000, 1).unwrap();
        assert!(kv.take("g", 2, 60_000, 1).unwrap().allowed, "the token given back");
        kv.give_back("g", 2, 60_000, 5).unwrap();
        assert_eq!(kv.take("g", 2, 60_000, 1).unwrap().remaining, 1, "never above capacity");
        assert_eq!(kv.give_back("absent", 2, 60_000, 1), Ok(()), "a missing bucket is full");
        assert_eq!(kv.get("absent"), None);
    }
}
