//! Limits on guessing codes.
//!
//! Every redemption attempt first takes one token from its address's bucket and one from a global bucket; a
//! success gives both back, so only failures (and attempts in flight) count. The global bucket bounds how
//! many guesses the whole world gets per code lifetime, whatever the number of source addresses, and is
//! what the README's guessing bound rests on. The per-address bucket, plus exponential backoff after
//! `backoff_after` consecutive failures, keeps one noisy source from spending the global budget; it only
//! counts failures, so a NAT full of customers who type their codes right is never slowed. IPv6 addresses
//! are grouped by /64, since one host commonly holds a whole /64.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::PairingError;
use crate::config::PairingConfig;
use crate::core::TokenBucket;

/// The address key: IPv4 as is, IPv6 by its /64 prefix.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Debug)]
struct AddrState {
    bucket: TokenBucket,
    consecutive_failures: u32,
    blocked_until: Option<Instant>,
}

/// An admitted attempt; hand it back with [`AttemptLimiter::succeeded`] or [`AttemptLimiter::failed`].
#[derive(Debug)]
#[must_use]
pub struct Permit {
    key: IpAddr,
}

#[derive(Debug)]
pub struct AttemptLimiter {
    cfg: PairingConfig,
    global: Mutex<TokenBucket>,
    addrs: DashMap<IpAddr, AddrState>,
}

impl AttemptLimiter {
    pub fn new(now: Instant, cfg: &PairingConfig) -> AttemptLimiter {
        AttemptLimiter {
            global: Mutex::new(TokenBucket::new(
                now,
                cfg.global_failures_per_sec,
                cfg.global_failure_burst,
            )),
            cfg: cfg.clone(),
            addrs: DashMap::new(),
        }
    }

    /// Admits an attempt from `ip`, or says how long to wait.
    pub fn admit(&self, now: Instant, ip: IpAddr) -> Result<Permit, PairingError> {
        let key = address_key(ip);
        let mut st = self.addrs.entry(key).or_insert_with(|| AddrState {
            bucket: TokenBucket::new(
                now,
                self.cfg.address_failures_per_min / 60.0,
                self.cfg.address_failure_burst,
            ),
            consecutive_failures: 0,
            blocked_until: None,
        });
        if let Some(until) = st.blocked_until.filter(|u| now < *u) {
            return Err(PairingError::RateLimited {
                retry_after: until - now,
            });
        }
        if !st.bucket.try_take(now) {
            return Err(PairingError::RateLimited {
                retry_after: st.bucket.wait_time(now),
            });
        }
        let mut global = self.global.lock().expect("limiter lock");
        if !global.try_take(now) {
            st.bucket.give_back();
            return Err(PairingError::RateLimited {
                retry_after: global.wait_time(now).max(Duration::from_secs(1)),
            });
        }
        Ok(Permit { key })
    }

    /// The attempt succeeded: its tokens come back and the address's failure streak ends.
    pub fn succeeded(&self, permit: Permit) {
        self.global.lock().expect("limiter lock").give_back();
        if let Some(mut st) = self.addrs.get_mut(&permit.key) {
            st.bucket.give_back();
            st.consecutive_failures = 0;
            st.blocked_until = None;
        }
    }

    /// The attempt failed: its tokens stay spent, and a long streak backs the address off exponentially.
    pub fn failed(&self, now: Instant, permit: Permit) {
        if let Some(mut st) = self.addrs.get_mut(&permit.key) {
            st.consecutive_failures += 1;
            if st.consecutive_failures >= self.cfg.backoff_after {
                let exp = (st.consecutive_failures - self.cfg.backoff_after).min(20);
                let wait = Duration::from_secs(1u64 << exp).min(self.cfg.backoff_max.0);
                st.blocked_until = Some(now + wait);
            }
        }
    }

    /// Forgets addresses with nothing to remember (full bucket, no backoff).
    pub fn sweep(&self, now: Instant) {
        self.addrs
            .retain(|_, st| !(st.bucket.is_full(now) && st.blocked_until.is_none_or(|u| now >= u)));
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.addrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PairingLayer;

    fn cfg() -> PairingConfig {
        PairingLayer::default().resolve()
    }

    #[test]
    fn one_address_backs_off_exponentially_and_success_resets_it() {
        let t0 = Instant::now();
        let l = AttemptLimiter::new(t0, &cfg());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            let p = l.admit(t0, ip).unwrap();
            l.failed(t0, p);
        }
        let wait = |r: Result<Permit, PairingError>| match r {
            Err(PairingError::RateLimited { retry_after }) => retry_after,
            other => panic!("expected rate limit, got {other:?}"),
        };
        assert_eq!(wait(l.admit(t0, ip)), Duration::from_secs(1));
        let t1 = t0 + Duration::from_secs(1);
        let p = l.admit(t1, ip).unwrap();
        l.failed(t1, p);
        assert_eq!(wait(l.admit(t1, ip)), Duration::from_secs(2));
        let t2 = t1 + Duration::from_secs(2);
        let p = l.admit(t2, ip).unwrap();
        l.succeeded(p);
        assert!(l.admit(t2, ip).is_ok(), "a success ends the streak");
        // Another address is unaffected all along.
        assert!(l.admit(t0, "192.0.2.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_global_budget_bounds_guesses_from_unlimited_addresses() {
        let t0 = Instant::now();
        let c = cfg();
        let l = AttemptLimiter::new(t0, &c);
        let mut admitted = 0u64;
        // One attempt per fresh address, 2000 per second, for 10 simulated minutes.
        for i in 0..1_200_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 500);
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if let Ok(p) = l.admit(now, ip) {
                admitted += 1;
                l.failed(now, p);
            }
            if i % 100_000 == 0 {
                l.sweep(now);
            }
        }
        let bound = u64::from(c.global_failure_burst) + (c.global_failures_per_sec * 600.0) as u64;
        assert!(
            admitted <= bound,
            "{admitted} guesses admitted, bound {bound}"
        );
        assert!(admitted >= bound - 200, "the budget is usable: {admitted}");
    }

    #[test]
    fn successes_behind_one_nat_are_never_limited() {
        let t0 = Instant::now();
        let l = AttemptLimiter::new(t0, &cfg());
        let nat: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..10_000 {
            let p = l.admit(t0, nat).unwrap();
            l.succeeded(p);
        }
    }

    #[test]
    fn ipv6_is_grouped_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(
            address_key(a),
            address_key("2001:db8:1:3::1".parse().unwrap())
        );
    }
}
