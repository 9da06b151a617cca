//! The host's actions in a meeting: mute or allow a share, remove a participant, change a role; and an
//! administrator's: recording on or off.

use std::time::Instant;

use super::MeetingRoom;
use crate::core::io::{Event, Output, RosterEntry};
use crate::core::room::notice_msg;
use crate::core::TrackId;
use crate::protocol::message::{MeetingRole, ParticipantState, TrackState};
use crate::protocol::{ErrorCode, ServerMsg};

impl MeetingRoom {
    /// Recording switched on or off (the relay has started or stopped its recorder). Everyone is told. A
    /// recording starts as a late joiner does: the roster of who is in the meeting, then each live track's
    /// held group (keyframe and what followed, as [`Output::Published`]), and for a live track with no held
    /// group a keyframe request (through the track's throttle), so every share is recorded from its next
    /// keyframe at the latest.
    pub(super) fn set_recording(&mut self, now: Instant, active: bool, reason: String) {
        self.recording = active;
        self.broadcast(ServerMsg::Recording { active, reason });
        self.event(Event::Recording(active));
        if !active {
            return;
        }
        let roster = self
            .participants
            .iter()
            .map(|p| RosterEntry {
                participant: p.id,
                name: p.name.clone(),
                role: p.role,
                present: p.conn.is_some(),
            })
            .collect();
        self.event(Event::Roster(roster));
        let mut unheld = Vec::new();
        for t in self.tracks.iter().filter(|t| !t.muted) {
            if t.cache.is_empty() {
                unheld.push(t.id);
            }
            for f in &t.cache {
                self.out.push_back(Output::Published(f.clone()));
            }
        }
        for track in unheld {
            self.request_keyframe(now, track);
        }
    }

    /// MUTE_TRACK from the host `me`.
    pub(super) fn mute_track(&mut self, now: Instant, me: u32, track: TrackId, muted: bool) {
        let Some(t) = self.tracks.iter_mut().find(|t| t.id == track) else {
            self.send(me, notice_msg(ErrorCode::NotFound, "no such track"));
            return;
        };
        if t.muted == muted {
            return;
        }
        t.muted = muted;
        // A request pending for the muted share is moot.
        t.keyframes.satisfy();
        t.cache.clear();
        t.cache_bytes = 0;
        let publisher = t.publisher;
        let state = if muted {
            TrackState::Muted
        } else {
            TrackState::Live
        };
        self.broadcast(ServerMsg::Track {
            track,
            publisher,
            state,
        });
        if muted {
            let text = "the host muted your share";
            self.send(publisher, notice_msg(ErrorCode::TrackMuted, text));
        } else {
            // Everyone restarts it at its next keyframe.
            for p in &mut self.participants {
                if p.id != publisher && !p.awaiting.contains(&track) {
                    p.awaiting.push(track);
                }
            }
            self.request_keyframe(now, track);
        }
    }

    /// REMOVE_PARTICIPANT from the host `me`: the participant (and a guest's address) may not come back.
    pub(super) fn remove_participant(&mut self, me: u32, participant: u32) {
        match self.by_id(participant) {
            Some(j) if participant != me => {
                let p = &self.participants[j];
                self.banned.push(p.identity.clone());
                self.banned.extend(p.origin.clone());
                if let Some(conn) = p.conn {
                    self.out.push_back(Output::Close {
                        conn,
                        code: ErrorCode::Removed,
                        reason: "removed from this meeting by the host",
                    });
                }
                self.remove(j, ParticipantState::Removed);
            }
            _ => {
                self.send(me, notice_msg(ErrorCode::NotFound, "no such participant"));
            }
        }
    }

    /// SET_ROLE from the host `me`: a participant who no longer presents loses its shares.
    pub(super) fn set_role(&mut self, me: u32, participant: u32, role: MeetingRole) {
        let j = self.by_id(participant);
        let Some(j) = j.filter(|_| participant != me && role != MeetingRole::Host) else {
            let text = "the host may make another participant a presenter or a participant";
            self.send(me, notice_msg(ErrorCode::NotFound, text));
            return;
        };
        if self.participants[j].role == role {
            return;
        }
        self.participants[j].role = role;
        self.announce(j, ParticipantState::RoleChanged);
        if !role.presents() {
            let ended: Vec<TrackId> = self
                .tracks
                .iter()
                .filter(|t| t.publisher == participant)
                .map(|t| t.id)
                .collect();
            for t in ended {
                self.end_track(t);
            }
        }
    }
}
