//! Rate and interval limiters driven by an injected `now`. They never read the clock themselves, so tests
//! step time by hand.

use std::time::{Duration, Instant};

/// Classic token bucket: `rate` tokens per second up to `burst`. Fractional tokens are kept, so a rate of
/// 0.5/s lets one event through every two seconds.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(now: Instant, rate_per_sec: f64, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate_per_sec.max(0.0),
            burst,
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.updated = self.updated.max(now);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives a token back (a redemption that succeeded does not count against the budget).
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// How long until one token is available (zero if one is available now).
    pub fn wait_time(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 || self.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }

    /// True when the bucket is full, i.e. it carries no memory of past use and may be forgotten.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// What a throttled request turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Throttled {
    /// Send it now.
    Send,
    /// Too soon after the last one: remembered, and sent when the interval has passed unless satisfied first.
    Suppressed,
}

/// At most one request per `interval`. A request that comes too soon is merged into one pending request,
/// which [`IntervalThrottle::poll_due`] releases at the end of the interval unless [`IntervalThrottle::satisfy`]
/// cleared it first (e.g. the keyframe arrived anyway).
#[derive(Debug, Clone)]
pub struct IntervalThrottle {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl IntervalThrottle {
    pub fn new(interval: Duration) -> IntervalThrottle {
        IntervalThrottle {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    pub fn request(&mut self, now: Instant) -> Throttled {
        match self.last_sent {
            Some(t) if now < t + self.interval => {
                self.pending = true;
                Throttled::Suppressed
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                Throttled::Send
            }
        }
    }

    /// The thing asked for happened; drop any pending request.
    pub fn satisfy(&mut self) {
        self.pending = false;
    }

    /// When a pending request falls due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(t)) => Some(t + self.interval),
            _ => None,
        }
    }

    /// Releases the pending request if its time has come.
    pub fn poll_due(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(t) if now >= t => {
                self.pending = false;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_rate_and_caps_at_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(t0, 2.0, 3);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert_eq!(b.wait_time(t0), Duration::from_millis(500));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert!(b.is_full(t0 + Duration::from_secs(100)));
        b.give_back();
        assert!(b.is_full(t0 + Duration::from_secs(100)));
    }

    #[test]
    fn interval_throttle_merges_requests_into_one_pending() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut th = IntervalThrottle::new(ms(1000));
        assert_eq!(th.request(t0), Throttled::Send);
        assert_eq!(th.request(t0 + ms(10)), Throttled::Suppressed);
        assert_eq!(th.request(t0 + ms(20)), Throttled::Suppressed);
        assert_eq!(th.poll_timeout(), Some(t0 + ms(1000)));
        assert!(!th.poll_due(t0 + ms(999)));
        assert!(th.poll_due(t0 + ms(1000)));
        assert!(!th.poll_due(t0 + ms(5000)), "released once only");
        assert_eq!(th.request(t0 + ms(1500)), Throttled::Suppressed);
        th.satisfy();
        assert_eq!(
            th.poll_timeout(),
            None,
            "satisfied before due: nothing sent"
        );
    }
}
