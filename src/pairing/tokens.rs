//! Signed join and resume tokens: `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`.
//!
//! Payload (31 bytes): version 1 | kind (1 join, 2 resume) | role | session id (16) | generation (u32 BE) |
//! expiry (u64 BE, Unix milliseconds). Meeting tokens (35 bytes): version 2 | kind (3 join, 4 resume) |
//! meeting role | meeting id (16) | subject (u32: user id to join, participant id to resume) | generation (u32)
//! | expiry (u64). Clients treat tokens as opaque strings. Verification checks the tag
//! in constant time (`ring::hmac::verify`) before looking at any field.

use data_encoding::BASE64URL_NOPAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::PairingError;
use crate::core::{Role, SessionId};
use crate::protocol::message::MeetingRole;

const PAYLOAD_LEN: usize = 31;
const TOKEN_VERSION: u8 = 1;
/// Meeting tokens carry one more u32 (the participant's generation) before the expiry.
const PAYLOAD_V2_LEN: usize = 35;
const TOKEN_VERSION_2: u8 = 2;

/// The fields every token kind shares.
struct Raw {
    kind: u8,
    role: u8,
    id: SessionId,
    number: u32,
    /// Version 2 only (0 in version 1).
    extra: u32,
    expires: u64,
}

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
    /// Resume tokens: the participant's admission count when it was issued; an older one is refused.
    pub generation: u32,
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
        self.sign_raw(&Raw {
            kind: c.kind as u8,
            role: c.role.to_wire(),
            id: c.session,
            number: c.generation,
            extra: 0,
            expires: c.expires_unix_ms,
        })
    }

    /// Signs a meeting token.
    pub fn sign_meeting(&self, c: &MeetingClaims) -> String {
        let kind = match c.kind {
            MeetingTokenKind::Join => KIND_MEETING_JOIN,
            MeetingTokenKind::Resume => KIND_MEETING_RESUME,
        };
        self.sign_raw(&Raw {
            kind,
            role: c.role as u8,
            id: c.meeting,
            number: c.subject,
            extra: c.generation,
            expires: c.expires_unix_ms,
        })
    }

    /// Verifies a meeting token; a remote-assist token is `TokenInvalid`.
    pub fn verify_meeting(
        &self,
        token: &str,
        now_unix_ms: u64,
    ) -> Result<MeetingClaims, PairingError> {
        let r = self.verify_raw(token, now_unix_ms)?;
        let kind = match r.kind {
            KIND_MEETING_JOIN => MeetingTokenKind::Join,
            KIND_MEETING_RESUME => MeetingTokenKind::Resume,
            _ => return Err(PairingError::TokenInvalid),
        };
        Ok(MeetingClaims {
            kind,
            role: MeetingRole::from_wire(r.role).ok_or(PairingError::TokenInvalid)?,
            meeting: r.id,
            subject: r.number,
            generation: r.extra,
            expires_unix_ms: r.expires,
        })
    }

    /// True if `token` carries a meeting kind (checked before choosing how to verify a resume).
    pub fn is_meeting_token(token: &str) -> bool {
        let Some((p, _)) = token.split_once('.') else {
            return false;
        };
        BASE64URL_NOPAD.decode(p.as_bytes()).is_ok_and(|b| {
            b.len() >= PAYLOAD_LEN && matches!(b[1], KIND_MEETING_JOIN | KIND_MEETING_RESUME)
        })
    }

    /// Meeting kinds are signed as version 2 (with `extra`), the others as version 1.
    fn sign_raw(&self, r: &Raw) -> String {
        let v2 = matches!(r.kind, KIND_MEETING_JOIN | KIND_MEETING_RESUME);
        let mut p = Vec::with_capacity(PAYLOAD_V2_LEN);
        p.push(if v2 { TOKEN_VERSION_2 } else { TOKEN_VERSION });
        p.push(r.kind);
        p.push(r.role);
        p.extend_from_slice(&r.id.0);
        p.extend_from_slice(&r.number.to_be_bytes());
        if v2 {
            p.extend_from_slice(&r.extra.to_be_bytes());
        }
        p.extend_from_slice(&r.expires.to_be_bytes());
        let tag = hmac::sign(&self.0, &p);
        format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(&p),
            BASE64URL_NOPAD.encode(tag.as_ref())
        )
    }

    pub fn verify(&self, token: &str, now_unix_ms: u64) -> Result<Claims, PairingError> {
        let bad = PairingError::TokenInvalid;
        let r = self.verify_raw(token, now_unix_ms)?;
        let kind = match r.kind {
            1 => TokenKind::Join,
            2 => TokenKind::Resume,
            _ => return Err(bad),
        };
        Ok(Claims {
            kind,
            role: Role::from_wire(r.role).ok_or(bad)?,
            session: r.id,
            generation: r.number,
            expires_unix_ms: r.expires,
        })
    }

    /// Checks the tag, the layout and the expiry.
    fn verify_raw(&self, token: &str, now_unix_ms: u64) -> Result<Raw, PairingError> {
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
        let u32_at = |i: usize| u32::from_be_bytes(payload[i..i + 4].try_into().expect("4 bytes"));
        let (extra, at) = match (payload.len(), payload.first()) {
            (PAYLOAD_LEN, Some(&TOKEN_VERSION)) => (0, 23),
            (PAYLOAD_V2_LEN, Some(&TOKEN_VERSION_2)) => (u32_at(23), 27),
            _ => return Err(bad),
        };
        let expires = u64::from_be_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
        if now_unix_ms >= expires {
            return Err(PairingError::TokenExpired);
        }
        Ok(Raw {
            kind: payload[1],
            role: payload[2],
            id: SessionId(payload[3..19].try_into().expect("16 bytes")),
            number: u32_at(19),
            extra,
            expires,
        })
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
