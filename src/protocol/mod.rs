//! The wire protocol between clients and the relay (docs/PROTOCOL.md is the normative text; this module is
//! its one implementation).
//!
//! - [`ErrorCode`]: every error and close code, the single place where typed errors become numbers.
//! - [`message`]: control-stream messages (HELLO, input events, chat, ...) and their length-prefixed codec.
//! - [`media`]: the group-stream header and the 24-byte frame header.
//!
//! Every decoder takes untrusted bytes, checks every length against a limit before allocating, and returns an
//! error instead of panicking; their unit tests feed them random and truncated input.

pub mod collab;
pub mod media;
pub mod message;

pub use collab::safe_file_name;
pub use media::{FileStreamHeader, FILE_STREAM_HEADER_LEN, STREAM_TYPE_FILE};
pub use media::{FrameHeader, GroupHeader, FRAME_HEADER_LEN, GROUP_HEADER_LEN, STREAM_TYPE_GROUP};
pub use message::{ClientMsg, DecodeError, Hello, InputEvent, ServerMsg};

/// ALPN protocol id of version 1 of the QUIC protocol.
pub const ALPN: &[u8] = b"assist-relay/1";
/// Protocol version carried in HELLO.
pub const VERSION: u8 = 1;

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal, $word:literal; )*) => {
        /// Application error codes: QUIC connection close codes, NOTICE codes, and the `code` of HTTP error bodies.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum ErrorCode { $( $(#[doc = $doc])* $name = $value, )* }

        impl ErrorCode {
            /// Every code (the test below checks docs/PROTOCOL.md lists each one).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];
            /// The stable snake_case name used in JSON bodies, logs and metric labels.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => $word,)* }
            }
            pub fn from_u32(v: u32) -> Option<ErrorCode> {
                match v { $($value => Some(ErrorCode::$name),)* _ => None }
            }
            /// What it means, in words a person understands (shown by the demo clients).
            pub fn describe(self) -> &'static str {
                match self { $(ErrorCode::$name => concat!($($doc),*),)* }.trim_start()
            }
        }
    };
}

error_codes! {
    /// session finished normally
    Ok = 0x00, "ok";
    /// the relay is shutting down; reconnect later or elsewhere
    GoingAway = 0x01, "going_away";
    /// the session was ended by a participant or an operator
    SessionEnded = 0x02, "session_ended";
    /// the session was idle for too long
    IdleTimeout = 0x03, "idle_timeout";
    /// the session reached its maximum duration
    MaxDuration = 0x04, "max_duration";
    /// the other side left and did not come back within the resume grace period
    PeerGone = 0x05, "peer_gone";
    /// this connection was replaced by a newer one that resumed the same role
    Replaced = 0x06, "replaced";
    /// the authorization code expired before both sides joined
    SessionExpired = 0x07, "session_expired";
    /// the host removed this participant from the meeting
    Removed = 0x08, "removed";
    /// malformed message or stream
    ProtocolViolation = 0x10, "protocol_violation";
    /// a control message exceeded the maximum message size
    MessageTooLarge = 0x11, "message_too_large";
    /// a media frame exceeded the maximum frame size
    FrameTooLarge = 0x12, "frame_too_large";
    /// no HELLO arrived in time
    HelloTimeout = 0x14, "hello_timeout";
    /// a valid message at the wrong time (a message before HELLO, or a second HELLO)
    UnexpectedMessage = 0x15, "unexpected_message";
    /// protocol version not supported
    UnsupportedVersion = 0x16, "unsupported_version";
    /// no such authorization code
    CodeUnknown = 0x20, "code_unknown";
    /// the authorization code has expired
    CodeExpired = 0x21, "code_expired";
    /// the authorization code was already used
    CodeUsed = 0x22, "code_used";
    /// too many failed attempts; wait and try again
    RateLimited = 0x23, "rate_limited";
    /// the token is invalid
    TokenInvalid = 0x24, "token_invalid";
    /// the token has expired
    TokenExpired = 0x25, "token_expired";
    /// no such session
    SessionNotFound = 0x26, "session_not_found";
    /// this role is already connected to the session
    RoleTaken = 0x27, "role_taken";
    /// too many connections from this address
    TooManyConnections = 0x28, "too_many_connections";
    /// the session can no longer be resumed with this token
    ResumeRefused = 0x29, "resume_refused";
    /// the peer did not read its control stream fast enough
    SlowConsumer = 0x2A, "slow_consumer";
    /// too many sessions from this address
    TooManySessions = 0x2B, "too_many_sessions";
    /// the meeting has not started yet: its code is valid from the scheduled start
    MeetingNotStarted = 0x2C, "meeting_not_started";
    /// the meeting has as many participants as it allows
    MeetingFull = 0x2D, "meeting_full";
    /// input events are dropped: the customer allows view only
    InputViewOnly = 0x30, "input_view_only";
    /// input events are dropped: too many per second
    InputRateLimited = 0x31, "input_rate_limited";
    /// the message could not be delivered: the other side is not connected
    PeerAway = 0x32, "peer_away";
    /// not permitted for this role
    NotPermitted = 0x33, "not_permitted";
    /// the whiteboard holds as much as it may: clear it before drawing more
    WhiteboardFull = 0x34, "whiteboard_full";
    /// the file is larger than the relay accepts
    FileTooLarge = 0x35, "file_too_large";
    /// no such transfer, or not in a state that allows this
    TransferInvalid = 0x36, "transfer_invalid";
    /// the host muted this track
    TrackMuted = 0x37, "track_muted";
    /// no such participant or track
    NotFound = 0x38, "not_found";
    /// too many transfers at once in this room
    TooManyTransfers = 0x39, "too_many_transfers";
    /// the request was invalid
    BadRequest = 0x40, "bad_request";
    /// authentication is missing or wrong
    Unauthorized = 0x41, "unauthorized";
    /// the request body is too large
    PayloadTooLarge = 0x42, "payload_too_large";
    /// the SDP offer could not be used
    InvalidOffer = 0x43, "invalid_offer";
    /// the offer lacks the video its peer needs in a codec the relay forwards (VP8, H.264)
    UnsupportedCodec = 0x44, "unsupported_codec";
    /// the server is at capacity; try again later
    Busy = 0x50, "busy";
    /// internal error
    Internal = 0x51, "internal";
}

/// Stream reset (RESET_STREAM / STOP_SENDING) codes.
pub mod stream_code {
    /// The relay abandoned a stale group because the receiver fell behind; the next group starts with a keyframe.
    pub const GROUP_SKIPPED: u32 = 0x01;
    /// The relay does not accept this stream (e.g. a technician opening a media stream, or a file stream
    /// for a transfer not accepted at that offset).
    pub const REFUSED: u32 = 0x03;
    /// The relay abandoned a file stream because the sender's stream broke off; answer the transfer again
    /// with the offset received so far to resume.
    pub const TRANSFER_INTERRUPTED: u32 = 0x04;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/PROTOCOL.md's error table must list every code with its value, name and meaning, so a client
    /// written from the document alone knows each code the relay can send.
    #[test]
    fn the_protocol_document_lists_every_error_code() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        for code in ErrorCode::ALL {
            let row = format!(
                "| 0x{:02X} | `{}` | {} |",
                *code as u32,
                code.as_str(),
                code.describe()
            );
            assert!(doc.contains(&row), "docs/PROTOCOL.md lacks the row {row}");
            assert_eq!(ErrorCode::from_u32(*code as u32), Some(*code));
        }
        assert!(doc.contains(&format!("`{}`", std::str::from_utf8(ALPN).unwrap())));
    }
}
