//! Where the plugins' `store` import keeps its data: in this process
//! ([`KvStore`]), or in Redis so that counters and token buckets hold across
//! mcpd nodes (`[gateway] store = "redis://…"`).
//!
//! Keys arrive already namespaced by plugin. In Redis they are prefixed with
//! `mcpd:kv:`; integers are Redis integers, values strings, and a token
//! bucket is a hash updated by one script (read, top up, take, write) so a
//! `take` is atomic across nodes. Bucket time comes from the Redis server's
//! clock, so nodes with skewed clocks still agree.

use super::kv::{BucketState, KvStore};
use redis::aio::ConnectionManager;
use std::time::Duration;

/// How long a store call may take before the plugin gets an error.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

pub enum PluginStore {
    Memory(KvStore),
    Redis(RedisStore),
}

impl PluginStore {
    pub fn memory() -> PluginStore {
        PluginStore::Memory(KvStore::default())
    }

    /// Connects to Redis at `url` (fails if it cannot be reached now).
    pub async fn redis(url: &str) -> Result<PluginStore, String> {
        Ok(PluginStore::Redis(RedisStore::connect(url).await?))
    }

    pub async fn incr(&self, key: String, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        match self {
            PluginStore::Memory(kv) => kv.incr(key, delta, ttl_ms),
            PluginStore::Redis(r) => r.incr(&key, delta, ttl_ms).await,
        }
    }

    pub async fn get(&self, key: String) -> Result<Option<String>, String> {
        match self {
            PluginStore::Memory(kv) => Ok(kv.get(&key)),
            PluginStore::Redis(r) => r.get(&key).await,
        }
    }

    pub async fn set(&self, key: String, value: String, ttl_ms: u64) -> Result<(), String> {
        match self {
            PluginStore::Memory(kv) => {
                kv.set(key, value, ttl_ms);
                Ok(())
            }
            PluginStore::Redis(r) => r.set(&key, &value, ttl_ms).await,
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), String> {
        match self {
            PluginStore::Memory(kv) => {
                kv.delete(&key);
                Ok(())
            }
            PluginStore::Redis(r) => r.delete(&key).await,
        }
    }

    pub async fn take(&self, key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<BucketState, String> {
        match self {
            PluginStore::Memory(kv) => kv.take(key, capacity, period_ms, cost),
            // Boxed: Redis's future is large, and a reused decision's take
            // (memory, most often) would otherwise carry and copy it.
            PluginStore::Redis(r) => Box::pin(r.take(key, capacity, period_ms, cost)).await,
        }
    }

    /// Puts back `cost` tokens that a `take` of the same bucket took: for a
    /// reused decision whose later take was refused (see `reuse`).
    pub async fn give_back(&self, key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<(), String> {
        match self {
            PluginStore::Memory(kv) => kv.give_back(key, capacity, period_ms, cost),
            PluginStore::Redis(r) => Box::pin(r.give_back(key, capacity, period_ms, cost)).await,
        }
    }

    /// Drops expired entries (memory only; Redis expires keys itself).
    pub fn sweep(&self) -> usize {
        match self {
            PluginStore::Memory(kv) => kv.sweep(),
            PluginStore::Redis(_) => 0,
        }
    }
}

pub struct RedisStore {
    client: redis::Client,
    /// Made on first use, on the runtime that serves requests: the
    /// connection's driver task must outlive the loader's runtime.
    connection: tokio::sync::OnceCell<ConnectionManager>,
    bucket: redis::Script,
    give_back: redis::Script,
    incr: redis::Script,
}

/// INCRBY, and set the expiry only when this call created the key.
const INCR_SCRIPT: &str = r#"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
end
return n
"#;

/// The token bucket of `kv::take_tokens`, with the server's clock.
/// ARGV: capacity, period_ms, cost. Returns {allowed, remaining, retry_after_ms}.
const BUCKET_SCRIPT: &str = r#"
local capacity = tonumber(ARGV[1])
local period = math.max(tonumber(ARGV[2]), 1)
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local per_ms = capacity / period
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], period)
return {allowed, math.floor(tokens), wait}
"#;

/// Tops the bucket up like `BUCKET_SCRIPT`, then adds ARGV[3] tokens back
/// (at most up to capacity). A bucket that is gone is full: left alone.
const GIVE_BACK_SCRIPT: &str = r#"
local capacity = tonumber(ARGV[1])
local period = math.max(tonumber(ARGV[2]), 1)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
if not state[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tokens = tonumber(state[1])
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * capacity / period + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], period)
return 1
"#;

fn redis_key(key: &str) -> String {
    format!("mcpd:kv:{key}")
}

fn failed(e: impl std::fmt::Display) -> String {
    format!("redis: {e}")
}

async fn timed<T>(call: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(result) => result.map_err(failed),
        Err(_) => Err(format!("redis: no answer within {REDIS_TIMEOUT:?}")),
    }
}

impl RedisStore {
    /// Checks that Redis answers `PING` now, so a wrong URL stops startup.
    async fn connect(url: &str) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(failed)?;
        let mut probe = timed(client.get_multiplexed_async_connection()).await?;
        timed(redis::cmd("PING").query_async::<String>(&mut probe)).await?;
        Ok(RedisStore {
            client,
            connection: tokio::sync::OnceCell::new(),
            bucket: redis::Script::new(BUCKET_SCRIPT),
            give_back: redis::Script::new(GIVE_BACK_SCRIPT),
            incr: redis::Script::new(INCR_SCRIPT),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let made = self.connection.get_or_try_init(|| timed(ConnectionManager::new(self.client.clone()))).await?;
        Ok(made.clone())
    }

    async fn incr(&self, key: &str, delta: i64, ttl_ms: u64) -> Result<i64, String> {
        let mut c = self.connection().await?;
        timed(self.incr.key(redis_key(key)).arg(delta).arg(ttl_ms).invoke_async(&mut c)).await
    }

    async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let mut c = self.connection().await?;
        timed(redis::cmd("GET").arg(redis_key(key)).query_async(&mut c)).await
    }

    async fn set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), String> {
        let mut c = self.connection().await?;
        let mut command = redis::cmd("SET");
        command.arg(redis_key(key)).arg(value);
        if ttl_ms > 0 {
            command.arg("PX").arg(ttl_ms);
        }
        timed(command.query_async(&mut c)).await
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        let mut c = self.connection().await?;
        timed(redis::cmd("DEL").arg(redis_key(key)).query_async::<i64>(&mut c)).await.map(|_| ())
    }

    async fn give_back(&self, key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<(), String> {
        let mut c = self.connection().await?;
        let mut script = self.give_back.key(redis_key(key));
        script.arg(capacity).arg(period_ms).arg(cost);
        timed(script.invoke_async(&mut c)).await.map(|_: i64| ())
    }

    async fn take(&self, key: &str, capacity: u64, period_ms: u64, cost: u64) -> Result<BucketState, String> {
        let mut c = self.connection().await?;
        let (allowed, remaining, wait): (i64, i64, i64) =
            timed(self.bucket.key(redis_key(key)).arg(capacity).arg(period_ms).arg(cost).invoke_async(&mut c)).await?;
        Ok(BucketState {
            allowed: allowed == 1,
            remaining: remaining.max(0) as u64,
            retry_after_ms: wait.max(0) as u64,
        })
    }
}
