//! Media stream layouts. All integers are big-endian.
//!
//! Group stream (unidirectional, one per group, sender → relay and relay → receiver):
//! ```text
//! offset size field
//! 0      1    stream type = 0x01 (media group)
//! 1      4    track id
//! 5      8    group sequence (increasing per track)
//! 13     ...  frames, each a 24-byte FrameHeader followed by its payload
//! ```
//! Frame header:
//! ```text
//! 0   4  payload length
//! 4   1  codec (1 VP8, 2 VP9, 3 AV1, 4 H.264)
//! 5   1  flags: bit 0 keyframe; other bits must be 0
//! 6   2  reserved, must be 0
//! 8   8  frame sequence (per track)
//! 16  8  capture timestamp, microseconds (sender's clock)
//! ```
//! The relay forwards the header and payload bytes unchanged.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::Codec;

/// First byte of a media group stream.
pub const STREAM_TYPE_GROUP: u8 = 0x01;
/// First byte of a file-transfer stream.
pub const STREAM_TYPE_FILE: u8 = 0x02;
/// File stream header: type, transfer id (u32), offset (u64); the same size as a group header, so a reader
/// takes 13 bytes and then looks at the type.
pub const FILE_STREAM_HEADER_LEN: usize = 13;
pub const GROUP_HEADER_LEN: usize = 13;
pub const FRAME_HEADER_LEN: usize = 24;
const FLAG_KEYFRAME: u8 = 0x01;

/// Why a media header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaHeaderError {
    /// The stream does not start with a known stream type.
    #[error("unknown stream type {0:#04x}")]
    StreamType(u8),
    /// Unknown codec number.
    #[error("unknown codec {0}")]
    Codec(u8),
    /// Reserved bits or bytes were not zero.
    #[error("reserved bits set in frame header")]
    Reserved,
    /// The payload length exceeds the configured maximum frame size.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

/// Header of a media group stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHeader {
    pub track: u32,
    pub group: u64,
}

impl GroupHeader {
    pub fn encode(&self) -> [u8; GROUP_HEADER_LEN] {
        let mut b = [0u8; GROUP_HEADER_LEN];
        b[0] = STREAM_TYPE_GROUP;
        b[1..5].copy_from_slice(&self.track.to_be_bytes());
        b[5..13].copy_from_slice(&self.group.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8; GROUP_HEADER_LEN]) -> Result<GroupHeader, MediaHeaderError> {
        if b[0] != STREAM_TYPE_GROUP {
            return Err(MediaHeaderError::StreamType(b[0]));
        }
        Ok(GroupHeader {
            track: u32::from_be_bytes(b[1..5].try_into().expect("4 bytes")),
            group: u64::from_be_bytes(b[5..13].try_into().expect("8 bytes")),
        })
    }
}

/// Header of a file-transfer stream: the bytes of transfer `transfer` from `offset` on follow until FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStreamHeader {
    pub transfer: u32,
    pub offset: u64,
}

impl FileStreamHeader {
    pub fn encode(&self) -> [u8; FILE_STREAM_HEADER_LEN] {
        let mut b = [0u8; FILE_STREAM_HEADER_LEN];
        b[0] = STREAM_TYPE_FILE;
        b[1..5].copy_from_slice(&self.transfer.to_be_bytes());
        b[5..13].copy_from_slice(&self.offset.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8; FILE_STREAM_HEADER_LEN]) -> Result<FileStreamHeader, MediaHeaderError> {
        if b[0] != STREAM_TYPE_FILE {
            return Err(MediaHeaderError::StreamType(b[0]));
        }
        Ok(FileStreamHeader {
            transfer: u32::from_be_bytes(b[1..5].try_into().expect("4 bytes")),
            offset: u64::from_be_bytes(b[5..13].try_into().expect("8 bytes")),
        })
    }
}

/// The fixed header in front of each frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub payload_len: u32,
    pub codec: Codec,
    pub keyframe: bool,
    pub seq: u64,
    pub capture_ts_us: u64,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&self.payload_len.to_be_bytes());
        b[4] = self.codec.to_wire();
        b[5] = if self.keyframe { FLAG_KEYFRAME } else { 0 };
        b[8..16].copy_from_slice(&self.seq.to_be_bytes());
        b[16..24].copy_from_slice(&self.capture_ts_us.to_be_bytes());
        b
    }

    /// Decodes and checks a header; `max_payload` is the configured maximum frame size.
    pub fn decode(
        b: &[u8; FRAME_HEADER_LEN],
        max_payload: usize,
    ) -> Result<FrameHeader, MediaHeaderError> {
        let payload_len = u32::from_be_bytes(b[0..4].try_into().expect("4 bytes"));
        if payload_len as usize > max_payload {
            return Err(MediaHeaderError::TooLarge {
                len: payload_len as usize,
                max: max_payload,
            });
        }
        let codec = Codec::from_wire(b[4]).ok_or(MediaHeaderError::Codec(b[4]))?;
        if b[5] & !FLAG_KEYFRAME != 0 || b[6] != 0 || b[7] != 0 {
            return Err(MediaHeaderError::Reserved);
        }
        Ok(FrameHeader {
            payload_len,
            codec,
            keyframe: b[5] & FLAG_KEYFRAME != 0,
            seq: u64::from_be_bytes(b[8..16].try_into().expect("8 bytes")),
            capture_ts_us: u64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
        })
    }

    /// Header and payload as one contiguous buffer, as the relay forwards it.
    pub fn to_wire(&self, payload: &[u8]) -> Bytes {
        let mut b = BytesMut::with_capacity(FRAME_HEADER_LEN + payload.len());
        b.put_slice(&self.encode());
        b.put_slice(payload);
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_reject_bad_fields() {
        let g = GroupHeader {
            track: 7,
            group: u64::MAX - 1,
        };
        assert_eq!(GroupHeader::decode(&g.encode()), Ok(g));
        let mut bad = g.encode();
        bad[0] = 9;
        assert_eq!(
            GroupHeader::decode(&bad),
            Err(MediaHeaderError::StreamType(9))
        );

        let h = FrameHeader {
            payload_len: 100,
            codec: Codec::H264,
            keyframe: true,
            seq: 3,
            capture_ts_us: 99,
        };
        assert_eq!(FrameHeader::decode(&h.encode(), 100), Ok(h));
        assert_eq!(
            FrameHeader::decode(&h.encode(), 99),
            Err(MediaHeaderError::TooLarge { len: 100, max: 99 })
        );
        let mut bad = h.encode();
        bad[5] = 0x03;
        assert_eq!(
            FrameHeader::decode(&bad, 100),
            Err(MediaHeaderError::Reserved)
        );
        let mut bad = h.encode();
        bad[4] = 0;
        assert_eq!(
            FrameHeader::decode(&bad, 100),
            Err(MediaHeaderError::Codec(0))
        );
    }
}
