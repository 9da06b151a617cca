//! Sessions per source address (`limits.max_sessions_per_address`): how many distinct sessions the
//! connections from one address key (IPv4 /32, IPv6 /64) take part in at once.
//!
//! Both sides of one session behind the same NAT, and a connection resuming a session its address is
//! already in, count once. A customer's slot is taken inside the code's redemption
//! ([`crate::pairing::CodeBook::redeem_if`]), so an address at the limit is refused without spending the
//! code. The connection holds its [`SessionSlot`] until it ends. Touched at connect and disconnect only,
//! never per frame.

use std::net::IpAddr;

use dashmap::DashMap;

use crate::core::SessionId;
use crate::pairing::limiter::address_key;

/// See the module documentation.
#[derive(Debug)]
pub struct SessionsPerAddress {
    max: usize,
    /// Per address key: each session it is in, with how many of its connections are in that session.
    map: DashMap<IpAddr, Vec<(SessionId, u32)>>,
}

/// One connection's share of its address's sessions; released on drop.
#[must_use = "the slot is released when dropped"]
#[derive(Debug)]
pub struct SessionSlot<'a> {
    owner: &'a SessionsPerAddress,
    key: IpAddr,
    session: SessionId,
}

impl SessionsPerAddress {
    pub fn new(max: usize) -> SessionsPerAddress {
        SessionsPerAddress {
            max,
            map: DashMap::new(),
        }
    }

    /// A slot for a connection from `ip` in `session`; `None` if the address is already in the maximum
    /// number of other sessions.
    pub fn acquire(&self, ip: IpAddr, session: SessionId) -> Option<SessionSlot<'_>> {
        let key = address_key(ip);
        let mut sessions = self.map.entry(key).or_default();
        let full = sessions.len() >= self.max;
        match sessions.iter_mut().find(|(s, _)| *s == session) {
            Some((_, n)) => *n += 1,
            None if full => return None,
            None => sessions.push((session, 1)),
        }
        Some(SessionSlot {
            owner: self,
            key,
            session,
        })
    }

    /// Sessions the address key of `ip` takes part in now.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.map.get(&address_key(ip)).map_or(0, |s| s.len())
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        self.owner.map.remove_if_mut(&self.key, |_, sessions| {
            if let Some(i) = sessions.iter().position(|(s, _)| *s == self.session) {
                if sessions[i].1 > 1 {
                    sessions[i].1 -= 1;
                } else {
                    sessions.swap_remove(i);
                }
            }
            sessions.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn counts_distinct_sessions_and_frees_on_drop() {
        let book = SessionsPerAddress::new(2);
        let (a, b, c) = (SessionId([1; 16]), SessionId([2; 16]), SessionId([3; 16]));
        let nat = ip("10.0.0.1");
        let s1 = book.acquire(nat, a).unwrap();
        // The other side of the same session from the same NAT counts once.
        let s2 = book.acquire(nat, a).unwrap();
        assert_eq!(book.count(nat), 1);
        let s3 = book.acquire(nat, b).unwrap();
        assert_eq!(book.count(nat), 2);
        assert!(book.acquire(nat, c).is_none());
        // A session the address is already in still admits a connection (a resume) at the limit.
        let s3b = book.acquire(nat, b).unwrap();
        // Another address is not affected; an IPv6 /64 is one key.
        let _other = book.acquire(ip("10.0.0.2"), c).unwrap();
        let _v6 = book.acquire(ip("2001:db8::1"), a).unwrap();
        let _v6b = book.acquire(ip("2001:db8::2"), b).unwrap();
        assert!(book.acquire(ip("2001:db8::3"), c).is_none());
        // Session a stays counted until its last connection goes.
        drop(s1);
        assert!(book.acquire(nat, c).is_none());
        drop(s2);
        let s4 = book.acquire(nat, c).unwrap();
        drop((s3, s3b, s4));
        assert_eq!(book.count(nat), 0);
        assert!(book.map.get(&nat).is_none(), "empty keys are removed");
    }
}
