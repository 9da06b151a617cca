//! The meeting client's file transfers: the one file it offers, and the files offered to it, received,
//! checked against the offered SHA-256 and written (docs/PROTOCOL.md 8.3).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use quinn::RecvStream;

use super::{Shared, MAX_FILE_BYTES};
use crate::client::files::{read_file, save_new, sha256};
use crate::client::ClientError;
use crate::protocol::{ClientMsg, FileStreamHeader};

/// The file this client offers.
pub(super) struct Outgoing {
    pub(super) to: u32,
    pub(super) name: String,
    pub(super) data: Bytes,
    pub(super) sha256: [u8; 32],
    pub(super) offered: bool,
}

impl Outgoing {
    pub(super) fn read(path: &Path, to: u32) -> Result<Outgoing, ClientError> {
        let in_file = |e: String| ClientError::Other(format!("{}: {e}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| in_file(e.to_string()))?;
        // A device or a pipe reports no size and may never end: only regular files are sent.
        if !meta.is_file() {
            return Err(in_file("not a regular file".into()));
        }
        let len = meta.len();
        if len > MAX_FILE_BYTES {
            return Err(in_file(format!(
                "{len} bytes; this demo client holds a file in memory and sends at most {MAX_FILE_BYTES}"
            )));
        }
        let data = std::fs::read(path).map_err(|e| in_file(e.to_string()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| in_file("not a file".into()))?;
        Ok(Outgoing {
            to,
            name,
            sha256: sha256(&data),
            data: data.into(),
            offered: false,
        })
    }
}

/// A file offered to this client and accepted: what arrived so far.
pub(super) struct Incoming {
    /// The sender's participant id, and how to name it.
    pub(super) sender: u32,
    pub(super) from: String,
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) sha256: [u8; 32],
    pub(super) have: Vec<u8>,
}

/// Receives the bytes of an accepted transfer; checks the SHA-256 once all have arrived, writes the file
/// and tells the relay (FILE_RESULT). A stream cut short is resumed from the bytes received.
pub(super) async fn receive_file(
    shared: Arc<Shared>,
    header: FileStreamHeader,
    mut stream: RecvStream,
) {
    let transfer = header.transfer;
    let left = shared
        .incoming
        .lock()
        .expect("not poisoned")
        .get(&transfer)
        .filter(|t| t.have.len() as u64 == header.offset)
        .map(|t| t.size - header.offset);
    let Some(left) = left else {
        // Not a transfer this client accepted, or not from where it asked.
        let _ = stream.stop(0u32.into());
        return;
    };
    let (data, complete) = match read_file(stream, left as usize).await {
        Ok(got) => got,
        Err(e) => return shared.say(format!("file transfer {transfer}: {e}")),
    };
    let file = {
        let mut incoming = shared.incoming.lock().expect("not poisoned");
        let Some(t) = incoming.get_mut(&transfer) else {
            return;
        };
        t.have.extend_from_slice(&data);
        if complete {
            Ok(incoming.remove(&transfer).expect("present"))
        } else {
            shared.say(format!(
                "file {:?} from {}: interrupted after {} of {} bytes; asking to resume",
                t.name,
                t.from,
                t.have.len(),
                t.size
            ));
            Err(t.have.len() as u64)
        }
    };
    let file = match file {
        Ok(file) => file,
        Err(offset) => {
            let resume = ClientMsg::FileAnswer {
                transfer,
                accept: true,
                offset,
            };
            return shared.send(resume).await;
        }
    };
    let dir = shared
        .accept_dir
        .clone()
        .expect("accepted into a directory");
    // Hashing and writing up to MAX_FILE_BYTES must not hold up the runtime.
    let checked = tokio::task::spawn_blocking(move || {
        let ok = file.have.len() as u64 == file.size && sha256(&file.have) == file.sha256;
        let saved = ok.then(|| save_new(&dir, &file.name, &file.have));
        (file, ok, saved)
    })
    .await;
    let Ok((file, ok, saved)) = checked else {
        return;
    };
    match saved {
        Some(Ok(path)) => {
            shared.say(format!(
                "file {:?} from {}: {} bytes, SHA-256 verified, saved to {}",
                file.name,
                file.from,
                file.size,
                path.display()
            ));
            shared.received.lock().expect("not poisoned").push(path);
        }
        Some(Err(e)) => shared.fail(ClientError::Other(format!(
            "file {:?} from {}: verified but not saved in {}: {e}",
            file.name,
            file.from,
            shared
                .accept_dir
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
        ))),
        None => shared.say(format!(
            "file {:?} from {}: its SHA-256 does not match the offer; not saved",
            file.name, file.from
        )),
    }
    shared.send(ClientMsg::FileResult { transfer, ok }).await;
}
