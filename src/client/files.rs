//! File transfer from a client's side (docs/PROTOCOL.md, "File transfer"): the bytes of an accepted
//! transfer go on their own unidirectional stream after a 13-byte header; the recipient checks the SHA-256
//! it was offered.

use std::io::Write;
use std::path::{Path, PathBuf};

use quinn::{Connection, RecvStream};

use super::{connection_error, ClientError};
use crate::protocol::{safe_file_name, FileStreamHeader};

/// SHA-256 of a file's bytes, as FILE_OFFER carries it.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

/// Sends `data[offset..]` for an accepted transfer and finishes the stream.
pub async fn send_file(
    conn: &Connection,
    transfer: u32,
    offset: u64,
    data: &[u8],
) -> Result<(), ClientError> {
    let io = super::write_error;
    let mut s = conn.open_uni().await.map_err(|e| connection_error(&e))?;
    s.write_all(&FileStreamHeader { transfer, offset }.encode())
        .await
        .map_err(io)?;
    let start = usize::try_from(offset)
        .ok()
        .filter(|o| *o <= data.len())
        .ok_or_else(|| ClientError::Other("offset past the end of the file".into()))?;
    s.write_all(&data[start..]).await.map_err(io)?;
    let _ = s.finish();
    let _ = s.stopped().await;
    Ok(())
}

/// Reads a file stream's bytes (after its header) until it ends, at most `max` bytes. A stream the relay
/// reset (the sender broke off) returns what arrived with `complete = false`.
pub async fn read_file(mut stream: RecvStream, max: usize) -> Result<(Vec<u8>, bool), ClientError> {
    let mut out = Vec::new();
    loop {
        match stream.read_chunk(64 << 10, true).await {
            Ok(Some(c)) => {
                if out.len() + c.bytes.len() > max {
                    let _ = stream.stop(0u32.into());
                    return Err(ClientError::Protocol(
                        "file stream longer than offered".into(),
                    ));
                }
                out.extend_from_slice(&c.bytes);
            }
            Ok(None) => return Ok((out, true)),
            Err(quinn::ReadError::Reset(_)) => return Ok((out, false)),
            Err(e) => return Err(ClientError::Connect(e.to_string())),
        }
    }
}

/// Writes a received file to a new file in `dir`, named after the offered `name` reduced to a safe base name
/// again (the relay did so already, but the name still comes from a peer). An existing file is never
/// overwritten: `name` taken, the file becomes `1-name`, `2-name`, and so on.
pub fn save_new(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    let safe = safe_file_name(name);
    for n in 0..1000 {
        let path = match n {
            0 => dir.join(&safe),
            n => dir.join(format!("{n}-{safe}")),
        };
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(data)?;
                f.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{} and 999 numbered variants exist",
            dir.join(&safe).display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_file_never_overwrites_and_never_leaves_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = save_new(dir.path(), "../notes.txt", b"one").unwrap();
        let second = save_new(dir.path(), "notes.txt", b"two").unwrap();
        assert_eq!(first, dir.path().join("notes.txt"));
        assert_eq!(second, dir.path().join("1-notes.txt"));
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
    }
}
