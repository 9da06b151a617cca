//! Placeholder until the recording writer lands.

use std::path::{Path, PathBuf};

use crate::core::{Event, Frame, SessionId};

use super::Relay;

pub(super) struct RoomRecorder {
    dir: PathBuf,
}

pub(super) struct StopReason;
impl StopReason {
    pub(super) fn describe(&self) -> &'static str {
        "stopped"
    }
}
pub(super) struct RecordingSummary {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub bytes: u64,
}

impl RoomRecorder {
    pub(super) fn start(_relay: &Relay, _meeting: SessionId) -> Result<RoomRecorder, String> {
        Err("recording is not available".into())
    }
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }
    pub(super) fn frame(&self, _frame: &Frame) {}
    pub(super) fn event(&self, _relay: &Relay, _e: &Event) {}
    pub(super) async fn stopped_by_itself(&mut self) -> StopReason {
        std::future::pending().await
    }
    pub(super) async fn finish(self, _relay: &Relay) -> RecordingSummary {
        RecordingSummary {
            dir: self.dir,
            files: vec![],
            bytes: 0,
        }
    }
}
