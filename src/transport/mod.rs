//! Transports: thin adapters between the wire and the core. [`tls`] builds rustls configs with the ring
//! provider; [`quic`] serves native clients over quinn; [`groups`] reads media group streams (relay and clients).

mod egress;
pub mod groups;
pub mod quic;
pub mod tls;
pub mod webrtc;

/// Priority of the control stream (input, chat): above every media stream, so input is never stuck behind
/// frames. Higher is sent first.
pub const CONTROL_PRIORITY: i32 = 100;
/// Priority of media group streams.
pub const MEDIA_PRIORITY: i32 = 0;
/// Priority of file-transfer streams: below media, so a large transfer never delays frames.
pub const FILE_PRIORITY: i32 = -10;

/// An error code as a QUIC application error code.
pub fn varint(code: crate::protocol::ErrorCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code as u32)
}
