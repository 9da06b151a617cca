//! Signed join and resume tokens: `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`.
//!
//! Payload (31 bytes): version 1 | kind (1 join, 2 resume, 3 meeting join, 4 meeting resume) | role | session id (16) | generation (u32 BE) |
//! expiry (u64 BE, Unix milliseconds). Clients treat tokens as opaque strings. Verification checks the tag
//! in constant time (`ring::hmac::verify`) before looking at any field.

use data_encoding::BASE64URL_NOPAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::PairingError;
use crate::core::{Role, SessionId};
use crate::protocol::message::MeetingRole;

const PAYLOAD_LEN: usize = 31;
const TOKEN_VERSION: u8 = 1;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// First join of a technician.
    Join = 1,
    /// Resume of either role after a dropped connection.
    Resume = 2,
}

/// The signed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub kind: TokenKind,
    pub role: Role,
    pub session: SessionId,
    pub generation: u32,
    pub expires_unix_ms: u64,
}

const KIND_MEETING_JOIN: u8 = 3;
const KIND_MEETING_RESUME: u8 = 4;

/// What a meeting token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingTokenKind {
    /// First entry of a staff member (`subject` = user id) with `role`.
    Join,
    /// Coming back as participant `subject` after a dropped connection.
    Resume,
}

/// The signed fields of a meeting token (same layout as [`Claims`]: kind 3 join / 4 resume, the role byte is
/// the meeting role, the 4-byte number is the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetingClaims {
    pub kind: MeetingTokenKind,
    pub role: MeetingRole,
    pub meeting: SessionId,
    pub subject: u32,
    pub expires_unix_ms: u64,
}

/// The HMAC key. Keep it secret; everyone holding it can mint tokens.
pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn new(secret: &[u8]) -> TokenKey {
        TokenKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// 32 random bytes for a new key.
    pub fn generate_secret() -> [u8; 32] {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).expect("system randomness");
        s
    }

    pub fn sign(&self, c: &Claims) -> String {
        self.sign_raw(
            c.kind as u8,
            c.role.to_wire(),
            c.session,
            c.generation,
            c.expires_unix_ms,
        )
    }

    /// Signs a meeting token.
    pub fn sign_meeting(&self, c: &MeetingClaims) -> String {
        let kind = match c.kind {
            MeetingTokenKind::Join => KIND_MEETING_JOIN,
            MeetingTokenKind::Resume => KIND_MEETING_RESUME,
        };
        self.sign_raw(kind, c.role as u8, c.meeting, c.subject, c.expires_unix_ms)
    }

    /// Verifies a meeting token; a remote-assist token is `TokenInvalid`.
    pub fn verify_meeting(
        &self,
        token: &str,
        now_unix_ms: u64,
    ) -> Result<MeetingClaims, PairingError> {
        let (kind, role, meeting, subject, expires_unix_ms) =
            self.verify_raw(token, now_unix_ms)?;
        let kind = match kind {
            KIND_MEETING_JOIN => MeetingTokenKind::Join,
            KIND_MEETING_RESUME => MeetingTokenKind::Resume,
            _ => return Err(PairingError::TokenInvalid),
        };
        Ok(MeetingClaims {
            kind,
            role: MeetingRole::from_wire(role).ok_or(PairingError::TokenInvalid)?,
            meeting,
            subject,
            expires_unix_ms,
        })
    }

    /// True if `token` carries a meeting kind (checked before choosing how to verify a resume).
    pub fn is_meeting_token(token: &str) -> bool {
        let Some((p, _)) = token.split_once('.') else {
            return false;
        };
        BASE64URL_NOPAD.decode(p.as_bytes()).is_ok_and(|b| {
            b.len() == PAYLOAD_LEN && matches!(b[1], KIND_MEETING_JOIN | KIND_MEETING_RESUME)
        })
    }

    fn sign_raw(&self, kind: u8, role: u8, id: SessionId, number: u32, expires: u64) -> String {
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = TOKEN_VERSION;
        p[1] = kind;
        p[2] = role;
        p[3..19].copy_from_slice(&id.0);
        p[19..23].copy_from_slice(&number.to_be_bytes());
        p[23..31].copy_from_slice(&expires.to_be_bytes());
        let tag = hmac::sign(&self.0, &p);
        format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(&p),
            BASE64URL_NOPAD.encode(tag.as_ref())
        )
    }

    pub fn verify(&self, token: &str, now_unix_ms: u64) -> Result<Claims, PairingError> {
        let bad = PairingError::TokenInvalid;
        let (kind, role, session, generation, expires_unix_ms) =
            self.verify_raw(token, now_unix_ms)?;
        let kind = match kind {
            1 => TokenKind::Join,
            2 => TokenKind::Resume,
            _ => return Err(bad),
        };
        Ok(Claims {
            kind,
            role: Role::from_wire(role).ok_or(bad)?,
            session,
            generation,
            expires_unix_ms,
        })
    }

    /// Checks the tag and expiry; returns kind, role, id, number and expiry.
    fn verify_raw(
        &self,
        token: &str,
        now_unix_ms: u64,
    ) -> Result<(u8, u8, SessionId, u32, u64), PairingError> {
        let bad = PairingError::TokenInvalid;
        if token.len() > 256 {
            return Err(bad);
        }
        let (p, t) = token.split_once('.').ok_or(bad.clone())?;
        let payload = BASE64URL_NOPAD
            .decode(p.as_bytes())
            .map_err(|_| bad.clone())?;
        let tag = BASE64URL_NOPAD
            .decode(t.as_bytes())
            .map_err(|_| bad.clone())?;
        hmac::verify(&self.0, &payload, &tag).map_err(|_| bad.clone())?;
        if payload.len() != PAYLOAD_LEN || payload[0] != TOKEN_VERSION {
            return Err(bad);
        }
        let expires = u64::from_be_bytes(payload[23..31].try_into().expect("8 bytes"));
        if now_unix_ms >= expires {
            return Err(PairingError::TokenExpired);
        }
        Ok((
            payload[1],
            payload[2],
            SessionId(payload[3..19].try_into().expect("16 bytes")),
            u32::from_be_bytes(payload[19..23].try_into().expect("4 bytes")),
            expires,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            kind: TokenKind::Resume,
            role: Role::Customer,
            session: SessionId([9; 16]),
            generation: 3,
            expires_unix_ms: 1_000,
        }
    }

    #[test]
    fn tokens_verify_expire_and_reject_tampering() {
        let key = TokenKey::new(&TokenKey::generate_secret());
        let t = key.sign(&claims());
        assert_eq!(key.verify(&t, 999), Ok(claims()));
        assert_eq!(key.verify(&t, 1_000), Err(PairingError::TokenExpired));
        let other = TokenKey::new(b"another key");
        assert_eq!(other.verify(&t, 0), Err(PairingError::TokenInvalid));
        // Flip one character of the payload: the tag no longer matches.
        let mut chars: Vec<char> = t.chars().collect();
        chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(key.verify(&tampered, 0), Err(PairingError::TokenInvalid));
        for junk in ["", ".", "a.b", "no-dot", &"x".repeat(1000)] {
            assert_eq!(key.verify(junk, 0), Err(PairingError::TokenInvalid));
        }
    }
}
