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

/// Asks for `want` bytes of receive and send buffer on a UDP socket (`limits.udp_buffer`) and warns once
/// when the kernel grants less. Linux reports twice what it grants (its bookkeeping share), capped by
/// `net.core.rmem_max` / `wmem_max`.
pub(crate) fn size_udp_buffers(socket: &socket2::Socket, want: usize, what: &str) {
    let _ = socket.set_recv_buffer_size(want);
    let _ = socket.set_send_buffer_size(want);
    let reported = if cfg!(target_os = "linux") { 2 } else { 1 };
    let (rcv, snd) = (
        socket.recv_buffer_size().unwrap_or(0) / reported,
        socket.send_buffer_size().unwrap_or(0) / reported,
    );
    if rcv < want || snd < want {
        tracing::warn!(
            socket = what,
            wanted = want,
            receive = rcv,
            send = snd,
            "UDP buffers capped by the kernel; raise net.core.rmem_max / wmem_max for bursty loads"
        );
    }
}

/// An error code as a QUIC application error code.
pub fn varint(code: crate::protocol::ErrorCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code as u32)
}
