//! The GCRA state of each user kept in Redis, so that every node shares one limit.
//!
//! One Lua script reads and advances a user's theoretical arrival time atomically. It takes
//! "now" from the Redis server's `TIME`, never from the calling node: nodes whose clocks
//! disagree still share one limit. Time is cut to whole milliseconds, as the in-process
//! limiter's clock is, so both decide alike for the same requests at the same instants.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, Script};
use waygate_core::gcra::{Decision, Gcra};

/// The same rule as `waygate_core::gcra::Gcra::check`. A key expires when its arrival time
/// is reached: from then on a missing key and the stored one decide the same.
const CHECK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + math.floor(tonumber(t[2]) / 1000) * 1000
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local start = now
local stored = redis.call('GET', KEYS[1])
if stored then start = math.max(tonumber(stored), now) end
local next = start + interval
local allowed_from = next - window
if now < allowed_from then
  return {0, allowed_from - now, now}
end
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000))
local remaining = math.floor((now + window - next) / interval)
return {1, math.min(math.max(remaining, 0), burst), now}
";

pub struct RedisGcra {
    gcra: Gcra,
    /// Shared by every request of this process; reconnects by itself.
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    script: Script,
}

/// A decision and the Redis server's time it was taken at (µs since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub decision: Decision,
    pub now_micros: i64,
}

impl RedisGcra {
    /// Connects lazily: a Redis that is down at start-up fails requests, not the start.
    pub fn new(url: &str, prefix: String, timeout: Duration, gcra: Gcra) -> RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Ok(RedisGcra {
            gcra,
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix,
            timeout,
            script: Script::new(CHECK),
        })
    }

    pub fn limit(&self) -> u32 {
        self.gcra.limit()
    }

    /// The Redis key of `key`'s state.
    pub fn key(&self, key: &str) -> String {
        format!("{}send-limit:{key}", self.prefix)
    }

    /// Decides one request of `key`: EVALSHA, loading the script when Redis does not know it
    /// (NOSCRIPT). Bounded by the timeout as a whole, so a hung Redis cannot hold a send.
    pub async fn check(&self, key: &str) -> RedisResult<Checked> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(self.key(key));
        invocation
            .arg(self.gcra.emission_interval_micros())
            .arg(self.gcra.burst_window_micros())
            .arg(self.gcra.limit());
        let call = invocation.invoke_async::<(i64, i64, i64)>(&mut connection);
        let (allowed, value, now_micros) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| timed_out(self.timeout))??;
        let decision = if allowed == 1 {
            Decision::Allow {
                remaining: u32::try_from(value).unwrap_or(0),
            }
        } else {
            Decision::Deny {
                retry_after_micros: value.unsigned_abs(),
            }
        };
        Ok(Checked {
            decision,
            now_micros,
        })
    }
}

fn timed_out(after: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer from Redis within {after:?}"),
    ))
}
