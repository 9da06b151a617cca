//! Signed join and resume tokens: `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`.
//!
//! Payload (31 bytes): version 1 | kind (1 join, 2 resume) | role | session id (16) | generation (u32 BE) |
//! expiry (u64 BE, Unix milliseconds). Clients treat tokens as opaque strings. Verification checks the tag
//! in constant time (`ring::hmac::verify`) before looking at any field.

use data_encoding::BASE64URL_NOPAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::PairingError;
use crate::core::{Role, SessionId};

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
        let mut p = [0u8; PAYLOAD_LEN];
        p[0] = TOKEN_VERSION;
        p[1] = c.kind as u8;
        p[2] = c.role.to_wire();
        p[3..19].copy_from_slice(&c.session.0);
        p[19..23].copy_from_slice(&c.generation.to_be_bytes());
        p[23..31].copy_from_slice(&c.expires_unix_ms.to_be_bytes());
        let tag = hmac::sign(&self.0, &p);
        format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(&p),
            BASE64URL_NOPAD.encode(tag.as_ref())
        )
    }

    pub fn verify(&self, token: &str, now_unix_ms: u64) -> Result<Claims, PairingError> {
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
        let kind = match payload[1] {
            1 => TokenKind::Join,
            2 => TokenKind::Resume,
            _ => return Err(bad),
        };
        let claims = Claims {
            kind,
            role: Role::from_wire(payload[2]).ok_or(bad)?,
            session: SessionId(payload[3..19].try_into().expect("16 bytes")),
            generation: u32::from_be_bytes(payload[19..23].try_into().expect("4 bytes")),
            expires_unix_ms: u64::from_be_bytes(payload[23..31].try_into().expect("8 bytes")),
        };
        if now_unix_ms >= claims.expires_unix_ms {
            return Err(PairingError::TokenExpired);
        }
        Ok(claims)
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
