//! A meeting's recording as its room task sees it: where frames and events go, and how the task learns that
//! the writer stopped by itself (quota, full disk). The files are written by [`crate::recording`] off the
//! room task; nothing here waits on the disk except `finish`, which runs once.

use std::path::{Path, PathBuf};

use crate::core::{Event, Frame, SessionId};
use crate::recording::{Recorder, RecorderConfig, RecordingSummary, StopReason};

use super::Relay;

/// The running recording of one meeting.
pub(super) struct RoomRecorder {
    rec: Recorder,
    dir: PathBuf,
}

impl RoomRecorder {
    /// Starts a recording under `<data_dir>/recordings/<meeting>-<unix ms>`.
    pub(super) fn start(relay: &Relay, meeting: SessionId) -> Result<RoomRecorder, String> {
        let now_ms = relay.clock.unix_ms();
        let name = format!("recordings/{meeting}-{now_ms}");
        let dir = relay.cfg.server.data_dir.join(&name);
        let m = &relay.cfg.meeting;
        let cfg = RecorderConfig {
            dir: dir.clone(),
            quota_bytes: m.recording_quota.0,
            queue: m.recording_queue,
            // As the API reports it: relative to the data directory.
            log_name: Some(name),
        };
        let rec = Recorder::start(cfg, relay.clock.clone()).map_err(|e| e.to_string())?;
        Ok(RoomRecorder { rec, dir })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn frame(&self, frame: &Frame) {
        self.rec.frame(frame);
    }

    /// Logs the events a meeting's record keeps: who is there as it starts, joins and leaves, chat,
    /// annotations, transfers.
    pub(super) fn event(&self, relay: &Relay, e: &Event) {
        let t = relay.clock.unix_ms();
        let (kind, fields) = match e {
            Event::Participant {
                participant,
                name,
                role,
                state,
            } => (
                "participant",
                serde_json::json!({
                    "participant": participant, "name": name, "role": role.as_str(),
                    "state": format!("{state:?}").to_lowercase(),
                }),
            ),
            Event::Chat { from, text } => {
                ("chat", serde_json::json!({ "from": from, "text": text }))
            }
            Event::Annotated { from, kind } => (
                "annotation",
                serde_json::json!({ "from": from, "kind": kind.as_str() }),
            ),
            Event::Roster(entries) => {
                let participants: Vec<_> = entries
                    .iter()
                    .map(|p| {
                        let state = if p.present { "present" } else { "away" };
                        serde_json::json!({
                            "participant": p.participant, "name": p.name, "role": p.role.as_str(),
                            "state": state,
                        })
                    })
                    .collect();
                (
                    "roster",
                    serde_json::json!({ "participants": participants }),
                )
            }
            Event::Transfer(n) => (
                "transfer",
                serde_json::json!({
                    "transfer": n.transfer, "from": n.from, "to": n.to, "name": n.name,
                    "size": n.size, "state": n.state.as_str(),
                }),
            ),
            _ => return,
        };
        self.rec.event(t, kind, fields);
    }

    /// The meeting ended while recording (`reason` as the close code names it): the log's last room event,
    /// so a reader knows why everyone is gone and why the recording stopped.
    pub(super) fn meeting_ended(&self, relay: &Relay, reason: &str) {
        let fields = serde_json::json!({ "reason": reason });
        self.rec
            .event(relay.clock.unix_ms(), "meeting_ended", fields);
    }

    /// Completes when the writer stopped by itself, with the reason.
    pub(super) async fn stopped_by_itself(&self) -> StopReason {
        self.rec.stopped_by_itself().await
    }

    /// Stops (if still running: `why` is `Requested` or `MeetingEnded`; after the writer stopped by itself,
    /// the reason it gave), finishes the files and counts the stop.
    pub(super) async fn finish(self, relay: &Relay, why: StopReason) -> RecordingSummary {
        let summary = self.rec.stop_because(why).await;
        relay
            .metrics
            .recordings_stopped
            .with_label_values(&[summary.reason.as_str()])
            .inc();
        summary
    }
}
