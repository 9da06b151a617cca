//! Authorization codes.
//!
//! A code is `digits` decimal digits from ring's `SystemRandom` (rejection sampling, so every code is equally
//! likely), shown in groups of four. Redemption removes the code from the live map in one atomic step, so of
//! any number of concurrent redemptions exactly one wins. Spent codes (used or expired) are remembered until
//! twice their lifetime has passed, so a late attempt hears "used" or "expired" rather than "unknown".

use std::time::{Duration, Instant};

use dashmap::DashMap;
use ring::rand::{SecureRandom, SystemRandom};

use super::PairingError;
use crate::core::SessionId;

#[derive(Debug, Clone, Copy)]
struct Live {
    session: SessionId,
    expires_at: Instant,
    /// Meeting codes: not valid before the scheduled start.
    not_before: Instant,
    /// Meeting codes: every participant uses the same one until it expires.
    multi_use: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spent {
    Used,
    Expired,
}

/// A freshly issued code.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// Digits only, e.g. `123456789012`.
    pub code: String,
    /// Grouped for people, e.g. `1234 5678 9012`.
    pub display: String,
    pub expires_at: Instant,
}

/// What [`CodeBook::redeem_if`] did with a live, unexpired code.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// Spent: the code belongs to this session, and `accept` returned this value.
    Session(SessionId, T),
    /// `accept` declined the session: the code is still live.
    Declined(SessionId),
}

/// The live and recently spent codes.
#[derive(Debug)]
pub struct CodeBook {
    digits: u32,
    ttl: Duration,
    max_live: usize,
    live: DashMap<String, Live>,
    spent: DashMap<String, (Spent, Instant)>,
    rng: SystemRandom,
    /// Serialises issuing, so the `max_live` check and the insert are one step: concurrent requests can
    /// never push the number of live codes past the cap the guessing bound rests on. Issuing is rare (one
    /// per session); redemption does not take this lock.
    issuing: std::sync::Mutex<()>,
}

impl CodeBook {
    pub fn new(digits: u32, ttl: Duration, max_live: usize) -> CodeBook {
        assert!((1..=18).contains(&digits), "1..=18 digits fit in a u64");
        CodeBook {
            digits,
            ttl,
            max_live,
            live: DashMap::new(),
            spent: DashMap::new(),
            rng: SystemRandom::new(),
            issuing: std::sync::Mutex::new(()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn random_code(&self) -> String {
        let space = 10u64.pow(self.digits);
        let limit = u64::MAX - (u64::MAX % space);
        loop {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b).expect("system randomness");
            let x = u64::from_be_bytes(b);
            if x < limit {
                return format!("{:0width$}", x % space, width = self.digits as usize);
            }
        }
    }

    /// Issues a code for `session`, valid until `now + ttl`.
    pub fn issue(&self, now: Instant, session: SessionId) -> Result<IssuedCode, PairingError> {
        self.issue_window(session, now, now + self.ttl, false)
    }

    /// Issues a code valid from `not_before` until `expires_at`; `multi_use` codes (meetings) are not spent
    /// by a redemption. Meeting and assist codes share one space and one cap, so they never collide.
    pub fn issue_window(
        &self,
        session: SessionId,
        not_before: Instant,
        expires_at: Instant,
        multi_use: bool,
    ) -> Result<IssuedCode, PairingError> {
        let _issuing = self.issuing.lock().unwrap_or_else(|e| e.into_inner());
        if self.live.len() >= self.max_live {
            return Err(PairingError::TooManyCodes);
        }
        loop {
            let code = self.random_code();
            if self.spent.contains_key(&code) {
                continue;
            }
            if let dashmap::Entry::Vacant(v) = self.live.entry(code.clone()) {
                v.insert(Live {
                    session,
                    expires_at,
                    not_before,
                    multi_use,
                });
                return Ok(IssuedCode {
                    display: display(&code),
                    code,
                    expires_at,
                });
            }
        }
    }

    /// Puts back a code issued before a restart (a scheduled meeting's), unless it is taken or the cap is
    /// reached.
    pub fn restore(
        &self,
        code: &str,
        session: SessionId,
        not_before: Instant,
        expires_at: Instant,
        multi_use: bool,
    ) -> Result<(), PairingError> {
        let _issuing = self.issuing.lock().unwrap_or_else(|e| e.into_inner());
        if self.live.len() >= self.max_live {
            return Err(PairingError::TooManyCodes);
        }
        match self.live.entry(code.to_string()) {
            dashmap::Entry::Vacant(v) => {
                v.insert(Live {
                    session,
                    expires_at,
                    not_before,
                    multi_use,
                });
                Ok(())
            }
            dashmap::Entry::Occupied(_) => Err(PairingError::CodeUsed),
        }
    }

    /// Redeems a code typed by a person (spaces and dashes are ignored). Single-use.
    pub fn redeem(&self, now: Instant, typed: &str) -> Result<SessionId, PairingError> {
        match self.redeem_if(now, typed, |_| Some(())) {
            Ok(Redeemed::Session(session, ())) => Ok(session),
            Ok(Redeemed::Declined(_)) => unreachable!("always accepted"),
            Err(e) => Err(e),
        }
    }

    /// Redeems a live code only if `accept` takes its session, in the same atomic step: declined, the code
    /// stays live and unspent (the caller had a reason of its own, such as a per-address limit, to refuse).
    pub fn redeem_if<T>(
        &self,
        now: Instant,
        typed: &str,
        accept: impl FnOnce(SessionId) -> Option<T>,
    ) -> Result<Redeemed<T>, PairingError> {
        self.redeem_kind(now, typed, false, accept)
    }

    /// As [`CodeBook::redeem_if`], for codes of one kind: `meeting` codes (multi-use, windowed) or assist
    /// codes. A live code of the other kind answers `CodeUnknown` and stays untouched, so typing an assist
    /// code where a meeting code belongs neither spends it nor tells the typist it exists.
    pub fn redeem_kind<T>(
        &self,
        now: Instant,
        typed: &str,
        meeting: bool,
        accept: impl FnOnce(SessionId) -> Option<T>,
    ) -> Result<Redeemed<T>, PairingError> {
        let Some(code) = normalize(typed, self.digits) else {
            return Err(PairingError::CodeUnknown);
        };
        if self.live.get(&code).is_some_and(|l| l.multi_use != meeting) {
            return Err(PairingError::CodeUnknown);
        }
        let mut taken = None;
        let mut declined = None;
        let mut early = false;
        let removed = self.live.remove_if(&code, |_, live| {
            if now >= live.expires_at {
                return true;
            }
            if now < live.not_before {
                early = true;
                return false;
            }
            match accept(live.session) {
                Some(t) => {
                    taken = Some((live.session, t));
                    !live.multi_use
                }
                None => {
                    declined = Some(live.session);
                    false
                }
            }
        });
        if early {
            return Err(PairingError::NotYetValid);
        }
        if let Some(session) = declined {
            return Ok(Redeemed::Declined(session));
        }
        if removed.is_none() {
            if let Some((session, t)) = taken.take() {
                return Ok(Redeemed::Session(session, t)); // a meeting code stays live
            }
        }
        match removed {
            Some((code, live)) if now < live.expires_at => {
                self.spent
                    .insert(code, (Spent::Used, live.expires_at + self.ttl));
                Ok(Redeemed::Session(
                    live.session,
                    taken.expect("accepted before removal").1,
                ))
            }
            Some((code, live)) => {
                self.spent
                    .insert(code, (Spent::Expired, live.expires_at + self.ttl));
                Err(PairingError::CodeExpired)
            }
            None => match self.spent.get(&code).map(|e| e.0) {
                Some(Spent::Used) => Err(PairingError::CodeUsed),
                Some(Spent::Expired) => Err(PairingError::CodeExpired),
                None => Err(PairingError::CodeUnknown),
            },
        }
    }

    /// Withdraws a live code (its session ended before anyone redeemed it).
    pub fn revoke(&self, code: &str) {
        if let Some((code, live)) = self.live.remove(code) {
            self.spent
                .insert(code, (Spent::Expired, live.expires_at + self.ttl));
        }
    }

    /// Moves expired codes to the spent list and forgets spent codes past their retention.
    pub fn sweep(&self, now: Instant) {
        self.live.retain(|code, live| {
            if now >= live.expires_at {
                self.spent
                    .insert(code.clone(), (Spent::Expired, live.expires_at + self.ttl));
                false
            } else {
                true
            }
        });
        self.spent.retain(|_, (_, forget_at)| now < *forget_at);
    }

    /// Live codes now.
    pub fn live(&self) -> usize {
        self.live.len()
    }
}

/// Groups digits in fours for display.
pub fn display(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Strips spaces and dashes; `None` unless exactly `digits` ASCII digits remain.
pub fn normalize(typed: &str, digits: u32) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sid(n: u8) -> SessionId {
        SessionId([n; 16])
    }

    #[test]
    fn a_declined_redemption_leaves_the_code_live() {
        let t0 = Instant::now();
        let book = CodeBook::new(12, Duration::from_secs(600), 10);
        let c = book.issue(t0, sid(7)).unwrap();
        assert_eq!(
            book.redeem_if(t0, &c.code, |_| None::<()>),
            Ok(Redeemed::Declined(sid(7)))
        );
        assert_eq!(
            book.redeem_if(t0, &c.code, Some),
            Ok(Redeemed::Session(sid(7), sid(7)))
        );
        assert_eq!(book.redeem(t0, &c.code), Err(PairingError::CodeUsed));
        // An expired code is expired, whatever `accept` would say.
        let e = book.issue(t0, sid(8)).unwrap();
        let late = t0 + Duration::from_secs(600);
        assert_eq!(
            book.redeem_if(late, &e.code, |_| -> Option<()> { panic!("not asked") }),
            Err(PairingError::CodeExpired)
        );
    }

    #[test]
    fn codes_are_digits_grouped_and_single_use() {
        let t0 = Instant::now();
        let book = CodeBook::new(12, Duration::from_secs(600), 10);
        let c = book.issue(t0, sid(1)).unwrap();
        assert_eq!(c.code.len(), 12);
        assert!(c.code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(c.display.len(), 14);
        assert_eq!(
            book.redeem(t0, &c.display),
            Ok(sid(1)),
            "grouped form accepted"
        );
        assert_eq!(book.redeem(t0, &c.code), Err(PairingError::CodeUsed));
        assert_eq!(
            book.redeem(t0, "0000 0000 0000"),
            Err(PairingError::CodeUnknown)
        );
        assert_eq!(book.redeem(t0, "12ab"), Err(PairingError::CodeUnknown));
    }

    #[test]
    fn expired_codes_say_so_and_are_eventually_forgotten() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(600);
        let book = CodeBook::new(12, ttl, 10);
        let c = book.issue(t0, sid(1)).unwrap();
        assert_eq!(
            book.redeem(t0 + ttl, &c.code),
            Err(PairingError::CodeExpired)
        );
        let c2 = book.issue(t0, sid(2)).unwrap();
        book.sweep(t0 + ttl);
        assert_eq!(book.live(), 0);
        assert_eq!(
            book.redeem(t0 + ttl, &c2.code),
            Err(PairingError::CodeExpired)
        );
        book.sweep(t0 + 2 * ttl);
        assert_eq!(
            book.redeem(t0 + 2 * ttl, &c2.code),
            Err(PairingError::CodeUnknown)
        );
    }

    #[test]
    fn live_codes_are_capped() {
        let t0 = Instant::now();
        let book = CodeBook::new(12, Duration::from_secs(600), 2);
        book.issue(t0, sid(1)).unwrap();
        book.issue(t0, sid(2)).unwrap();
        assert_eq!(
            book.issue(t0, sid(3)).unwrap_err(),
            PairingError::TooManyCodes
        );
    }

    #[test]
    fn of_many_concurrent_redemptions_exactly_one_wins() {
        let t0 = Instant::now();
        let book = Arc::new(CodeBook::new(12, Duration::from_secs(600), 10));
        for round in 0..50 {
            let c = book.issue(t0, sid(round)).unwrap().code;
            let wins: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| book.redeem(t0, &c).is_ok() as usize))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1);
        }
    }

    /// Guards the cap the guessing bound rests on: concurrent issuers never leave more than `max_live` live.
    #[test]
    fn concurrent_issuing_never_passes_the_cap() {
        let t0 = Instant::now();
        let book = CodeBook::new(12, Duration::from_secs(600), 100);
        let issued: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8u8)
                .map(|t| {
                    let book = &book;
                    s.spawn(move || (0..50).filter(|_| book.issue(t0, sid(t)).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(issued, 100);
        assert_eq!(book.live(), 100);
    }

    #[test]
    fn codes_are_spread_over_the_space() {
        let t0 = Instant::now();
        let book = CodeBook::new(6, Duration::from_secs(600), 100_000);
        let mut first = [0usize; 10];
        for i in 0..5000u32 {
            let c = book.issue(t0, SessionId([(i % 251) as u8; 16])).unwrap();
            first[(c.code.as_bytes()[0] - b'0') as usize] += 1;
        }
        assert!(
            first.iter().all(|&n| (350..650).contains(&n)),
            "leading digit roughly uniform: {first:?}"
        );
    }
}
