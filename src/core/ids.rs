//! Typed identifiers. Nothing here allocates or reads a clock.

use std::fmt;

/// A relay session (one technician paired with one customer). 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// Parses the 32-hex-digit form used in URLs and logs.
    pub fn parse(s: &str) -> Option<SessionId> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .ok()?;
        Some(SessionId(bytes.try_into().ok()?))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// One QUIC (later: WebRTC) connection as the room knows it. A resumed peer gets a new `ConnId`, so events
/// still in flight from the connection it replaced are recognised as stale and ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(pub u64);

/// A media track within a session (the customer's screen is track 0).
pub type TrackId = u32;

/// Which side of a remote-assist session a peer is on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Role {
    /// Views the screen and sends input events; authenticated by a signed join token.
    Technician,
    /// Shares the screen and receives input events; authenticated by the authorization code.
    Customer,
}

impl Role {
    /// Wire value (docs/PROTOCOL.md, "Roles").
    pub fn to_wire(self) -> u8 {
        match self {
            Role::Technician => 1,
            Role::Customer => 2,
        }
    }
    pub fn from_wire(v: u8) -> Option<Role> {
        match v {
            1 => Some(Role::Technician),
            2 => Some(Role::Customer),
            _ => None,
        }
    }
    /// The other side of the session.
    pub fn peer(self) -> Role {
        match self {
            Role::Technician => Role::Customer,
            Role::Customer => Role::Technician,
        }
    }
    /// Metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Technician => "technician",
            Role::Customer => "customer",
        }
    }
}
