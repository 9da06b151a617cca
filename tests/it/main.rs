//! The integration tests, in one binary: each module starts real servers and clients on loopback. One binary
//! links the crate once, instead of once per file, which keeps a cold build's disk use and link time down.

mod common;

mod accounts_api;
mod browser;
mod browser_meetings;
mod cli;
mod kb_api;
mod kb_ticket_api;
mod meetings_api;
mod meetings_minutes_api;
mod meetings_recording;
mod meetings_relay;
mod permissions_api;
mod recording;
mod relay_media;
mod relay_sessions;
mod tickets_api;
mod webrtc;
mod webrtc_meetings;
mod webrtc_signaling;
