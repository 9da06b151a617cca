//! The one place that reads time. Everything time-dependent takes a [`Clock`], so a test of a 10-minute code
//! expiry advances a [`ManualClock`] instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A boxed sleep future.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Monotonic time, wall time, and sleeping until a monotonic deadline.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Instant;
    fn wall(&self) -> SystemTime;
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// Milliseconds since the Unix epoch (token expiry).
    fn unix_ms(&self) -> u64 {
        self.wall()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
    /// The wall time at which monotonic `t` falls.
    fn wall_at(&self, t: Instant) -> SystemTime {
        let now = self.now();
        if t >= now {
            self.wall() + (t - now)
        } else {
            self.wall() - (now - t)
        }
    }
}

/// The real clock (tokio's timer, so `tokio::time::pause` works too).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// A clock that moves only when told to. Sleepers wake when [`ManualClock::advance`] passes their deadline.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(Instant, SystemTime)>>,
    tick: watch::Sender<Instant>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl ManualClock {
    pub fn new() -> ManualClock {
        let now = Instant::now();
        ManualClock {
            inner: Arc::new(Mutex::new((now, SystemTime::now()))),
            tick: watch::channel(now).0,
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has passed.
    pub fn advance(&self, d: Duration) {
        let now = {
            let mut g = self.inner.lock().expect("clock lock");
            g.0 += d;
            g.1 += d;
            g.0
        };
        self.tick.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.lock().expect("clock lock").0
    }
    fn wall(&self) -> SystemTime {
        self.inner.lock().expect("clock lock").1
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let mut rx = self.tick.subscribe();
        Box::pin(async move {
            while *rx.borrow_and_update() < deadline {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced_past_their_deadline() {
        let clock = ManualClock::new();
        let deadline = clock.now() + Duration::from_secs(600);
        let sleeper = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(599));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clock.wall_at(deadline), clock.wall());
    }
}
