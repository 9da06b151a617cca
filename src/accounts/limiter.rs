//! Limits on failed logins and verifications: one token bucket per source address (IPv4 /32, IPv6 /64) and
//! one per account key; a failure takes a token from both, a success costs nothing. While either bucket is
//! empty the attempt is refused with the time to wait, before any password is checked.

use std::net::IpAddr;
use std::time::Instant;

use dashmap::DashMap;

use super::AccountError;
use crate::core::TokenBucket;
use crate::pairing::limiter::address_key;

/// Buckets forgotten once full again; at most this many are kept (oldest-full first would need an index,
/// so past it, full buckets are swept on the next insert).
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct AuthLimiter {
    per_sec: f64,
    burst: u32,
    addrs: DashMap<IpAddr, TokenBucket>,
    accounts: DashMap<String, TokenBucket>,
}

impl AuthLimiter {
    pub fn new(failures_per_min: f64, burst: u32) -> AuthLimiter {
        AuthLimiter {
            per_sec: failures_per_min / 60.0,
            burst,
            addrs: DashMap::new(),
            accounts: DashMap::new(),
        }
    }

    /// Refuses the attempt while the address's or the account's failure budget is spent.
    pub fn check(&self, now: Instant, from: IpAddr, account: &str) -> Result<(), AccountError> {
        let addr = self
            .addrs
            .get_mut(&address_key(from))
            .map_or(std::time::Duration::ZERO, |mut b| b.wait_time(now));
        let acct = self
            .accounts
            .get_mut(account)
            .map_or(std::time::Duration::ZERO, |mut b| b.wait_time(now));
        let w = addr.max(acct);
        if w.is_zero() {
            Ok(())
        } else {
            Err(AccountError::RateLimited(w.as_secs().max(1)))
        }
    }

    /// Counts a failure against both budgets.
    pub fn failed(&self, now: Instant, from: IpAddr, account: &str) {
        if self.addrs.len() + self.accounts.len() > MAX_TRACKED {
            self.addrs.retain(|_, b| !b.is_full(now));
            self.accounts.retain(|_, b| !b.is_full(now));
        }
        let new = || TokenBucket::new(now, self.per_sec, self.burst);
        self.addrs
            .entry(address_key(from))
            .or_insert_with(new)
            .try_take(now);
        self.accounts
            .entry(account.to_owned())
            .or_insert_with(new)
            .try_take(now);
    }

    /// Takes one token from the account's budget alone (for things every attempt spends, such as sending a
    /// verification code), or says how long to wait.
    pub fn take_account(&self, now: Instant, account: &str) -> Result<(), AccountError> {
        let mut b = self
            .accounts
            .entry(account.to_owned())
            .or_insert_with(|| TokenBucket::new(now, self.per_sec, self.burst));
        if b.try_take(now) {
            Ok(())
        } else {
            Err(AccountError::RateLimited(b.wait_time(now).as_secs().max(1)))
        }
    }

    /// A success clears the account's record (the address keeps its count: one address guessing many
    /// accounts stays limited).
    pub fn succeeded(&self, _from: IpAddr, account: &str) {
        self.accounts.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failures_are_limited_per_address_and_per_account_and_heal() {
        let t0 = Instant::now();
        let l = AuthLimiter::new(6.0, 3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            l.check(t0, a, "u1").unwrap();
            l.failed(t0, a, "u1");
        }
        assert!(matches!(
            l.check(t0, a, "u2"),
            Err(AccountError::RateLimited(_))
        ));
        // Another address guessing the same account is limited by the account's budget.
        assert!(matches!(
            l.check(t0, b, "u1"),
            Err(AccountError::RateLimited(_))
        ));
        l.check(t0, b, "u2").unwrap();
        // 6 per minute: one token back after 10 s.
        l.check(t0 + Duration::from_secs(10), a, "u2").unwrap();
    }
}
