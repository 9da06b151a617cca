//! Pairing: how a technician and a customer find the same session without trusting each other's network.
//!
//! - [`codes`]: authorization codes: random digits, single-use, expiring, with distinct errors for unknown,
//!   expired and used codes.
//! - [`tokens`]: HMAC-SHA256 join and resume tokens (ring), verified in constant time.
//! - [`limiter`]: limits on failed redemptions, per address and global, with backoff.
//!
//! The README's "Why codes can't be guessed" derives the defaults.

pub mod codes;
pub mod limiter;
pub mod tokens;

use std::net::IpAddr;
use std::time::Duration;

pub use codes::{CodeBook, IssuedCode, Redeemed};
pub use limiter::AttemptLimiter;
pub use tokens::{Claims, MeetingClaims, MeetingTokenKind, TokenKey, TokenKind};

use crate::core::SessionId;
use crate::protocol::ErrorCode;

/// Why a pairing step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// No live or recently spent code matches.
    #[error("no such code")]
    CodeUnknown,
    /// The code existed but expired.
    #[error("code expired")]
    CodeExpired,
    /// The code was already redeemed.
    #[error("code already used")]
    CodeUsed,
    /// Too many failed attempts from this address or overall.
    #[error("too many failed attempts; retry in {}s", retry_after.as_secs_f64().ceil().max(1.0))]
    RateLimited { retry_after: Duration },
    /// The token's signature or format is wrong.
    #[error("invalid token")]
    TokenInvalid,
    /// The token's lifetime is over.
    #[error("token expired")]
    TokenExpired,
    /// Too many live codes at once.
    #[error("too many live codes")]
    TooManyCodes,
    /// A meeting code used before the meeting's scheduled start.
    #[error("the meeting has not started yet")]
    NotYetValid,
}

impl PairingError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PairingError::CodeUnknown => ErrorCode::CodeUnknown,
            PairingError::CodeExpired => ErrorCode::CodeExpired,
            PairingError::CodeUsed => ErrorCode::CodeUsed,
            PairingError::RateLimited { .. } => ErrorCode::RateLimited,
            PairingError::TokenInvalid => ErrorCode::TokenInvalid,
            PairingError::TokenExpired => ErrorCode::TokenExpired,
            PairingError::TooManyCodes => ErrorCode::Busy,
            PairingError::NotYetValid => ErrorCode::MeetingNotStarted,
        }
    }
}

/// Redeems a code under the guessing limits: the attempt is admitted (or refused) before the code is looked
/// at, a failure is charged to the address and the global budget, a success is not. `accept` may decline
/// the code's session (see [`CodeBook::redeem_if`]); that is not a failed guess, so it is not charged either.
pub fn redeem_limited<T>(
    book: &CodeBook,
    limiter: &AttemptLimiter,
    now: std::time::Instant,
    from: IpAddr,
    code: &str,
    meeting: bool,
    accept: impl FnOnce(SessionId) -> Option<T>,
) -> Result<Redeemed<T>, PairingError> {
    let permit = limiter.admit(now, from)?;
    match book.redeem_kind(now, code, meeting, accept) {
        Ok(r) => {
            limiter.succeeded(permit);
            Ok(r)
        }
        // Only a correct code gets this answer: not charging it gives a guesser nothing.
        Err(PairingError::NotYetValid) => {
            limiter.succeeded(permit);
            Err(PairingError::NotYetValid)
        }
        Err(e) => {
            limiter.failed(now, permit);
            Err(e)
        }
    }
}
