//! Messages per second per connection: a token bucket refilled continuously.

use std::time::Instant;

pub struct RateLimiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        RateLimiter {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// Takes one token; false when the connection is over its rate.
    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
