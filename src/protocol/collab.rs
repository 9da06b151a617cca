//! Wire types of meetings and of the collaboration channels (whiteboard, file transfer) that meetings and
//! remote-assist sessions share. Encoded inside the control messages of [`super::message`].

use bytes::{BufMut, BytesMut};

use super::message::{put_str, Body, DecodeError};

/// Points in one annotation: bounds the decoder's allocation (a 64 KiB message holds at most 16 K points).
pub const MAX_ANNOTATION_POINTS: usize = 4096;

/// A participant's role in a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeetingRole {
    /// 1: created the meeting; mutes shares, removes participants, ends the meeting. Also a presenter.
    Host = 1,
    /// 2: may publish screen-share tracks.
    Presenter = 2,
    /// 3: receives tracks, chats and annotates; publishes nothing.
    Participant = 3,
}

impl MeetingRole {
    pub fn from_wire(v: u8) -> Option<MeetingRole> {
        match v {
            1 => Some(MeetingRole::Host),
            2 => Some(MeetingRole::Presenter),
            3 => Some(MeetingRole::Participant),
            _ => None,
        }
    }
    pub(super) fn decode(r: &mut Body<'_>) -> Result<MeetingRole, DecodeError> {
        MeetingRole::from_wire(r.u8()?).ok_or(DecodeError::Invalid("meeting role"))
    }
    /// May publish tracks.
    pub fn presents(self) -> bool {
        self != MeetingRole::Participant
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingRole::Host => "host",
            MeetingRole::Presenter => "presenter",
            MeetingRole::Participant => "participant",
        }
    }
}

/// What happened to a participant, in PARTICIPANT messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantState {
    /// 1: present (joined, or already there when the receiver joined).
    Present = 1,
    /// 2: connection lost; may come back within the resume grace period.
    Away = 2,
    /// 3: came back (its tracks continue under the same ids).
    Back = 3,
    /// 4: left the meeting (or did not come back in time).
    Left = 4,
    /// 5: removed by the host.
    Removed = 5,
    /// 6: its role changed to the one in the message.
    RoleChanged = 6,
}

impl ParticipantState {
    pub(super) fn decode(r: &mut Body<'_>) -> Result<ParticipantState, DecodeError> {
        Ok(match r.u8()? {
            1 => ParticipantState::Present,
            2 => ParticipantState::Away,
            3 => ParticipantState::Back,
            4 => ParticipantState::Left,
            5 => ParticipantState::Removed,
            6 => ParticipantState::RoleChanged,
            _ => return Err(DecodeError::Invalid("participant state")),
        })
    }
}

/// A track's state, in TRACK messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackState {
    /// 1: published; frames flow to subscribers.
    Live = 1,
    /// 2: gone (its publisher left or stopped presenting).
    Ended = 2,
    /// 3: muted by the host: no frames until it is live again.
    Muted = 3,
}

impl TrackState {
    pub(super) fn decode(r: &mut Body<'_>) -> Result<TrackState, DecodeError> {
        Ok(match r.u8()? {
            1 => TrackState::Live,
            2 => TrackState::Ended,
            3 => TrackState::Muted,
            _ => return Err(DecodeError::Invalid("track state")),
        })
    }
}

/// A file transfer's state, in FILE_STATE messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// 1: the offer reached the recipient (`transfer` is now the relay's id for it).
    Offered = 1,
    /// 2: the recipient accepts bytes from `offset` on: open a file stream at that offset.
    Accepted = 2,
    /// 3: the recipient declined.
    Declined = 3,
    /// 4: the recipient received every byte and the SHA-256 matched.
    Completed = 4,
    /// 5: refused or failed (too large, hash mismatch, recipient gone): see the NOTICE sent with it.
    Failed = 5,
}

impl FileState {
    pub(super) fn decode(r: &mut Body<'_>) -> Result<FileState, DecodeError> {
        Ok(match r.u8()? {
            1 => FileState::Offered,
            2 => FileState::Accepted,
            3 => FileState::Declined,
            4 => FileState::Completed,
            5 => FileState::Failed,
            _ => return Err(DecodeError::Invalid("file state")),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Offered => "offered",
            FileState::Accepted => "accepted",
            FileState::Declined => "declined",
            FileState::Completed => "completed",
            FileState::Failed => "failed",
        }
    }
}

/// The kind of a whiteboard operation; it fixes how many points it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationKind {
    /// 1: free-hand stroke, 1..=4096 points.
    Stroke = 1,
    /// 2: rectangle between two corner points.
    Rect = 2,
    /// 3: ellipse inside the rectangle of two points.
    Ellipse = 3,
    /// 4: arrow from the first point to the second.
    Arrow = 4,
    /// 5: `text` anchored at one point (`width` is the font size in 1/65535 of the share's height).
    Text = 5,
    /// 6: removes every annotation on `track`; no points, no text.
    Clear = 6,
}

impl AnnotationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationKind::Stroke => "stroke",
            AnnotationKind::Rect => "rect",
            AnnotationKind::Ellipse => "ellipse",
            AnnotationKind::Arrow => "arrow",
            AnnotationKind::Text => "text",
            AnnotationKind::Clear => "clear",
        }
    }
}

/// One whiteboard operation. Coordinates are normalised to the annotated share like input events: 0 is the
/// left/top edge, 65535 the right/bottom edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub kind: AnnotationKind,
    /// The share it is drawn on (a meeting track id; 0 in a remote-assist session).
    pub track: u32,
    /// 0xRRGGBBAA.
    pub color: u32,
    /// Line width (font size for text), normalised like coordinates.
    pub width: u16,
    pub points: Vec<(u16, u16)>,
    pub text: String,
}

impl Annotation {
    /// Bytes it takes on the wire (after the type byte): what the relay's whiteboard bound counts.
    pub fn wire_len(&self) -> usize {
        1 + 4 + 4 + 2 + 2 + 4 * self.points.len() + 2 + self.text.len()
    }

    pub(super) fn encode(&self, b: &mut BytesMut) {
        b.put_u8(self.kind as u8);
        b.put_u32(self.track);
        b.put_u32(self.color);
        b.put_u16(self.width);
        b.put_u16(self.points.len() as u16);
        for (x, y) in &self.points {
            b.put_u16(*x);
            b.put_u16(*y);
        }
        put_str(b, &self.text);
    }

    pub(super) fn decode(r: &mut Body<'_>) -> Result<Annotation, DecodeError> {
        let kind = match r.u8()? {
            1 => AnnotationKind::Stroke,
            2 => AnnotationKind::Rect,
            3 => AnnotationKind::Ellipse,
            4 => AnnotationKind::Arrow,
            5 => AnnotationKind::Text,
            6 => AnnotationKind::Clear,
            _ => return Err(DecodeError::Invalid("annotation kind")),
        };
        let track = r.u32()?;
        let color = r.u32()?;
        let width = r.u16()?;
        let n = r.u16()? as usize;
        let ok = match kind {
            AnnotationKind::Stroke => (1..=MAX_ANNOTATION_POINTS).contains(&n),
            AnnotationKind::Rect | AnnotationKind::Ellipse | AnnotationKind::Arrow => n == 2,
            AnnotationKind::Text => n == 1,
            AnnotationKind::Clear => n == 0,
        };
        if !ok {
            return Err(DecodeError::Invalid("annotation point count"));
        }
        let mut points = Vec::with_capacity(n);
        for _ in 0..n {
            points.push((r.u16()?, r.u16()?));
        }
        let text = r.str()?;
        let text_ok = match kind {
            AnnotationKind::Text => !text.is_empty(),
            _ => text.is_empty(),
        };
        if !text_ok {
            return Err(DecodeError::Invalid("annotation text"));
        }
        Ok(Annotation {
            kind,
            track,
            color,
            width,
            points,
            text,
        })
    }
}

/// A file offered by a client (FILE_OFFER, client → relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOffer {
    /// The sender's own number for this offer, echoed in FILE_STATE.
    pub reference: u32,
    /// Recipient participant (meetings); ignored in a remote-assist session.
    pub to: u32,
    /// As the sender names it; the relay reduces it to a safe base name.
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl FileOffer {
    pub(super) fn encode(&self, b: &mut BytesMut) {
        b.put_u32(self.reference);
        b.put_u32(self.to);
        put_str(b, &self.name);
        b.put_u64(self.size);
        b.put_slice(&self.sha256);
    }
    pub(super) fn decode(r: &mut Body<'_>) -> Result<FileOffer, DecodeError> {
        Ok(FileOffer {
            reference: r.u32()?,
            to: r.u32()?,
            name: r.str()?,
            size: r.u64()?,
            sha256: r.take(32)?.try_into().expect("32 bytes"),
        })
    }
}

/// Reply to a meeting HELLO (MEETING_WELCOME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingWelcome {
    pub meeting: [u8; 16],
    /// This client's participant id (stable across resumes).
    pub participant: u32,
    pub role: MeetingRole,
    pub resume_token: String,
    /// A recording is running.
    pub recording: bool,
    pub resume_grace_ms: u32,
    pub max_frame_bytes: u32,
    pub max_message_bytes: u32,
    pub max_file_bytes: u64,
    /// Tracks one presenter may publish at once (local track ids 0..max_tracks).
    pub max_tracks: u32,
}

impl MeetingWelcome {
    pub(super) fn encode(&self, b: &mut BytesMut) {
        b.put_slice(&self.meeting);
        b.put_u32(self.participant);
        b.put_u8(self.role as u8);
        put_str(b, &self.resume_token);
        b.put_u8(u8::from(self.recording));
        b.put_u32(self.resume_grace_ms);
        b.put_u32(self.max_frame_bytes);
        b.put_u32(self.max_message_bytes);
        b.put_u64(self.max_file_bytes);
        b.put_u32(self.max_tracks);
    }
    pub(super) fn decode(r: &mut Body<'_>) -> Result<MeetingWelcome, DecodeError> {
        Ok(MeetingWelcome {
            meeting: r.take(16)?.try_into().expect("16 bytes"),
            participant: r.u32()?,
            role: MeetingRole::decode(r)?,
            resume_token: r.str()?,
            recording: r.bool()?,
            resume_grace_ms: r.u32()?,
            max_frame_bytes: r.u32()?,
            max_message_bytes: r.u32()?,
            max_file_bytes: r.u64()?,
            max_tracks: r.u32()?,
        })
    }
}

/// Invisible characters that change how a name reads: bidirectional overrides and isolates (a name that
/// shows as `invoiceexe.pdf` but is `invoice` U+202E `fdp.exe`), zero-width characters, the byte-order mark.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Reduces a file name offered by a peer to a safe base name: the last path component (either slash),
/// without control characters, invisible formatting characters (bidirectional overrides, zero-width),
/// leading dots or dashes, or Windows-reserved characters, at most 255 bytes; `file` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !is_format(*c))
        .filter(|c| !matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|'))
        .collect();
    // No leading dot (hidden files, `..`) or dash (read as an option by tools the file is handed to).
    let trimmed = cleaned.trim().trim_start_matches(['.', '-']).trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 255 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "file".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_file_names_become_safe_base_names() {
        for (given, want) in [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
            ("/abs/path/x.txt", "x.txt"),
            ("..", "file"),
            ("", "file"),
            (".bashrc", "bashrc"),
            ("a\u{0}b\nc.txt", "abc.txt"),
            ("con:*?.txt", "con.txt"),
            ("日志 2026.log", "日志 2026.log"),
            ("dir/", "file"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("a\u{200B}b.txt", "ab.txt"),
            ("--help", "help"),
            ("-.-x", "x"),
        ] {
            assert_eq!(safe_file_name(given), want, "{given:?}");
        }
        let long = "é".repeat(300);
        let safe = safe_file_name(&long);
        assert!(safe.len() <= 255 && safe.chars().all(|c| c == 'é'));
    }
}
