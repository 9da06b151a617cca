//! Attachments of tickets and knowledge-base articles: files on disk by content hash, metadata in SQL.
//!
//! A file lives at `<data_dir>/attachments/<first 2 hex of its sha256>/<sha256>`, so the same content is
//! stored once however many times it is attached. An upload is streamed into a temporary file under
//! `attachments/tmp/` (same file system) while it is hashed, counted against the size limit and sniffed;
//! only when the limits hold is it renamed into place, and the row inserted, under the store's write lock.
//! The temporary file is removed when the upload is dropped, so a refused or broken upload leaves nothing
//! behind. Files no row refers to any more are removed by [`AttachmentStore::collect`], also under the write
//! lock, so it cannot race with an upload of the same content.
//!
//! The content type comes from the bytes ([`sniff`]), never from the client. The original file name is
//! metadata only ([`sanitize_file_name`]); it never takes part in a path. Permissions are the API's business.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes, HttpBody};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::store::{Store, StoreError};

/// Longest stored file name, in bytes (common file-system limit).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// The name given to a file whose name is empty or unusable.
pub const FALLBACK_FILE_NAME: &str = "attachment";
/// Bytes of the file's start kept for [`sniff`] (the longest magic checked is 12 bytes).
const HEAD_BYTES: usize = 16;

/// What an attachment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OwnerKind {
    Ticket,
    Article,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Ticket => "ticket",
            OwnerKind::Article => "article",
        }
    }
}

/// An attachment's metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Attachment {
    pub id: i64,
    pub owner_kind: OwnerKind,
    pub owner_id: i64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    pub size: i64,
    /// Sniffed from the content.
    pub content_type: String,
    /// The original name, sanitised (metadata only).
    pub file_name: String,
    pub uploaded_by: i64,
    pub created_at: String,
}

/// Why an attachment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// The file, or the owner's attachments together, would exceed `limit` bytes.
    #[error("{what} at most {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    /// The request body broke off.
    #[error("reading the upload: {0}")]
    Body(String),
    /// The file system failed.
    #[error("attachment storage: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AttachmentError {
    fn from(e: sqlx::Error) -> AttachmentError {
        AttachmentError::Store(e.into())
    }
}

/// A temporary file removed on drop unless it was moved into place.
#[derive(Debug)]
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // Synchronous, but one unlink; it must also run when the request future is dropped.
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An upload received completely into a temporary file, not yet attached to anything.
#[derive(Debug)]
pub struct Upload {
    tmp: TempFile,
    pub sha256: String,
    pub size: u64,
    pub content_type: &'static str,
}

/// Checks incrementally that a byte stream is UTF-8 text without NULs.
struct TextCheck {
    carry: Vec<u8>,
    ok: bool,
}

impl TextCheck {
    fn feed(&mut self, chunk: &[u8]) {
        if !self.ok {
            return;
        }
        if chunk.contains(&0) {
            self.ok = false;
            return;
        }
        let buf: Cow<[u8]> = if self.carry.is_empty() {
            Cow::Borrowed(chunk)
        } else {
            let mut v = std::mem::take(&mut self.carry);
            v.extend_from_slice(chunk);
            Cow::Owned(v)
        };
        match std::str::from_utf8(&buf) {
            Ok(_) => {}
            // A character split across chunks: keep its first bytes for the next one.
            Err(e) if e.error_len().is_none() => self.carry = buf[e.valid_up_to()..].to_vec(),
            Err(_) => self.ok = false,
        }
    }
    fn is_text(&self) -> bool {
        self.ok && self.carry.is_empty()
    }
}

/// The content type of a file from its first bytes, whether it all is UTF-8 text without NULs, and (only to
/// tell Office formats sharing a container apart) its name's extension.
pub fn sniff(head: &[u8], is_text: bool, file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "image/gif"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "image/webp"
    } else if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else if head.starts_with(b"PK\x03\x04") {
        match ext.as_str() {
            "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            _ => "application/zip",
        }
    } else if head.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        match ext.as_str() {
            "doc" => "application/msword",
            "xls" => "application/vnd.ms-excel",
            "ppt" => "application/vnd.ms-powerpoint",
            _ => "application/octet-stream",
        }
    } else if is_text {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// The client's file name made safe to keep and show: the base name after the last `/` or `\`, without
/// control characters, at most [`MAX_FILE_NAME_BYTES`] bytes (cut on a character boundary); an empty, `.`
/// or `..` name becomes [`FALLBACK_FILE_NAME`].
pub fn sanitize_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let mut name = clean.trim();
    if name.len() > MAX_FILE_NAME_BYTES {
        let mut cut = MAX_FILE_NAME_BYTES;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = name[..cut].trim_end();
    }
    if name.is_empty() || name == "." || name == ".." {
        FALLBACK_FILE_NAME.to_owned()
    } else {
        name.to_owned()
    }
}

type AttachmentRow = (i64, String, i64, String, i64, String, String, i64, String);

const COLUMNS: &str =
    "id, owner_kind, owner_id, sha256, size, content_type, file_name, uploaded_by, created_at";

fn attachment_of(r: AttachmentRow) -> Attachment {
    Attachment {
        id: r.0,
        owner_kind: if r.1 == "article" {
            OwnerKind::Article
        } else {
            OwnerKind::Ticket
        },
        owner_id: r.2,
        sha256: r.3,
        size: r.4,
        content_type: r.5,
        file_name: r.6,
        uploaded_by: r.7,
        created_at: r.8,
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The attachment files under the data directory.
#[derive(Debug, Clone)]
pub struct AttachmentStore {
    root: PathBuf,
}

impl AttachmentStore {
    /// The store under `<data_dir>/attachments` (created on first upload).
    pub fn new(data_dir: &Path) -> AttachmentStore {
        AttachmentStore {
            root: data_dir.join("attachments"),
        }
    }

    /// Where the content with this hash lives (`None` for anything but a SHA-256 hex string).
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256_hex(sha256).then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Streams `body` into a temporary file, hashing and sniffing it; stops with
    /// [`AttachmentError::TooLarge`] as soon as it exceeds `max` bytes.
    pub async fn receive(
        &self,
        body: Body,
        max: u64,
        file_name: &str,
    ) -> Result<Upload, AttachmentError> {
        let tmp_dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir).await?;
        let mut rnd = [0u8; 16];
        SystemRandom::new()
            .fill(&mut rnd)
            .map_err(|_| std::io::Error::other("no randomness for a temporary name"))?;
        let path = tmp_dir.join(format!("{}.part", data_encoding::HEXLOWER.encode(&rnd)));
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        let tmp = TempFile(Some(path));

        let mut stream = body.into_data_stream();
        let mut hash = digest::Context::new(&digest::SHA256);
        let mut text = TextCheck {
            carry: Vec::new(),
            ok: true,
        };
        let mut head = Vec::with_capacity(HEAD_BYTES);
        let mut size: u64 = 0;
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| AttachmentError::Body(e.to_string()))?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            let chunk: Bytes = chunk;
            size = size.saturating_add(chunk.len() as u64);
            if size > max {
                return Err(AttachmentError::TooLarge {
                    what: "a file may hold",
                    limit: max,
                });
            }
            if head.len() < HEAD_BYTES {
                let n = (HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..n]);
            }
            hash.update(&chunk);
            text.feed(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        drop(file);
        Ok(Upload {
            tmp,
            sha256: data_encoding::HEXLOWER.encode(hash.finish().as_ref()),
            size,
            content_type: sniff(&head, text.is_text(), file_name),
        })
    }

    /// Attaches a received upload to `owner`/`owner_id` unless the owner's attachments would then exceed
    /// `max_owner` bytes; moves the file into place (or drops it if that content is already stored).
    #[allow(clippy::too_many_arguments)]
    pub async fn commit(
        &self,
        store: &Store,
        mut up: Upload,
        owner: OwnerKind,
        owner_id: i64,
        file_name: &str,
        uploaded_by: i64,
        now: &str,
        max_owner: u64,
    ) -> Result<Attachment, AttachmentError> {
        let dest = self
            .path_of(&up.sha256)
            .ok_or_else(|| std::io::Error::other("bad content hash"))?;
        let mut tx = store.write().await?;
        let (used,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments \
             WHERE owner_kind = $1 AND owner_id = $2",
        )
        .bind(owner.as_str())
        .bind(owner_id)
        .fetch_one(&mut **tx)
        .await?;
        if u64::try_from(used).unwrap_or(0).saturating_add(up.size) > max_owner {
            return Err(AttachmentError::TooLarge {
                what: "the attachments of one ticket or article may hold together",
                limit: max_owner,
            });
        }
        let size = i64::try_from(up.size).unwrap_or(i64::MAX);
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO attachments (owner_kind, owner_id, sha256, size, content_type, file_name, \
             uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(owner.as_str())
        .bind(owner_id)
        .bind(&up.sha256)
        .bind(size)
        .bind(up.content_type)
        .bind(file_name)
        .bind(uploaded_by)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        let created = if tokio::fs::try_exists(&dest).await? {
            false // the same content is stored already; the temporary file goes on drop
        } else {
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            let tmp = up
                .tmp
                .0
                .take()
                .ok_or_else(|| std::io::Error::other("upload moved"))?;
            if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
                up.tmp.0 = Some(tmp);
                return Err(e.into());
            }
            true
        };
        if let Err(e) = tx.commit().await {
            if created {
                let _ = tokio::fs::remove_file(&dest).await;
            }
            return Err(e.into());
        }
        Ok(Attachment {
            id,
            owner_kind: owner,
            owner_id,
            sha256: up.sha256.clone(),
            size,
            content_type: up.content_type.to_owned(),
            file_name: file_name.to_owned(),
            uploaded_by,
            created_at: now.to_owned(),
        })
    }

    /// Removes the files with these hashes that no attachment row refers to any more.
    pub async fn collect(&self, store: &Store, hashes: &[String]) -> Result<(), AttachmentError> {
        if hashes.is_empty() {
            return Ok(());
        }
        let mut tx = store.write().await?;
        for h in hashes {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM attachments WHERE sha256 = $1")
                .bind(h)
                .fetch_one(&mut **tx)
                .await?;
            if n == 0 {
                if let Some(p) = self.path_of(h) {
                    match tokio::fs::remove_file(&p).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// One attachment's metadata.
pub async fn get(store: &Store, id: i64) -> Result<Option<Attachment>, AttachmentError> {
    let row: Option<AttachmentRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM attachments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&store.pool)
            .await?;
    Ok(row.map(attachment_of))
}

/// The attachments of one ticket or article, oldest first.
pub async fn list(
    store: &Store,
    owner: OwnerKind,
    owner_id: i64,
) -> Result<Vec<Attachment>, AttachmentError> {
    let rows: Vec<AttachmentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE owner_kind = $1 AND owner_id = $2 ORDER BY id"
    ))
    .bind(owner.as_str())
    .bind(owner_id)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.into_iter().map(attachment_of).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_reduced_to_a_base_name() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("..\\..\\x.exe"), "x.exe");
        assert_eq!(sanitize_file_name("a\u{0}b\r\n\u{7}.txt"), "ab.txt");
        for bad in ["", ".", "..", "dir/", "a/..", " \u{1} "] {
            assert_eq!(sanitize_file_name(bad), FALLBACK_FILE_NAME, "{bad:?}");
        }
        let long = "打".repeat(100); // 300 bytes
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_FILE_NAME_BYTES && s.chars().all(|c| c == '打'));
        assert_eq!(sanitize_file_name("报告 2024.pdf"), "报告 2024.pdf");
    }

    #[test]
    fn content_is_sniffed_from_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....", false, "x.txt"), "image/png");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ", false, "a"), "image/webp");
        assert_eq!(
            sniff(b"PK\x03\x04", false, "A.DOCX"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(sniff(b"PK\x03\x04", false, "a.txt"), "application/zip");
        assert_eq!(sniff(b"hello", true, "a.png"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"\xff\xfe", false, "a"), "application/octet-stream");
    }

    #[test]
    fn text_check_spans_chunks() {
        let bytes = "打印机".as_bytes();
        let mut t = TextCheck {
            carry: Vec::new(),
            ok: true,
        };
        for b in bytes {
            t.feed(std::slice::from_ref(b));
        }
        assert!(t.is_text());
        t.feed(&bytes[..1]);
        assert!(!t.is_text(), "a truncated character is not text");
        let mut t = TextCheck {
            carry: Vec::new(),
            ok: true,
        };
        t.feed(b"a\0b");
        assert!(!t.is_text());
    }
}
