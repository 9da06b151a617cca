//! assist-relay: a real-time remote-assistance relay.
//!
//! ```text
//! client (QUIC)                                                          HTTP API (axum)
//!    │                                                                        │ issues codes, join tokens
//!    ▼                                                                        ▼
//! transport::quic ──bounded send──► room task ──► core::{AssistRoom, MeetingRoom}::handle_input(now, input)
//! (thin: wire <-> core types)          │            pure: no await, no sockets, no clock
//!                                      ▼
//!                     drain poll_output() until Timeout
//!          ┌───────────────────────────┼──────────────────────────────┐
//!          ▼                           ▼                              ▼
//!   Media -> per-receiver MediaQueue   Send -> bounded control queue   Timeout(t) -> sleep until t
//!   (drop to keyframe) -> writer task  -> writer task                  Event -> metrics, logs
//! ```
//!
//! Modules, from the inside out:
//! - [`core`]: the pure forwarding core (remote-assist rooms, meetings, whiteboard and file transfers, media
//!   queues, throttles) and its deterministic tests.
//! - [`protocol`]: the wire format (docs/PROTOCOL.md) and the error codes.
//! - [`media`]: IVF and H.264 Annex B recordings, frame by frame (demo clients, tests).
//! - [`pairing`]: authorization codes, signed tokens, guessing limits.
//! - [`transport`]: TLS (rustls + ring) and QUIC (quinn) around the core.
//! - [`api`]: the HTTP API; [`kb`] (knowledge base) and [`attachments`] (files of tickets and articles) behind it.
//! - [`meetings`]: scheduled meetings' records (invitees, recording directory, minutes) behind the API.
//! - [`recording`]: a meeting's recording (track files and an event log) written off the room task.
//! - [`server`]: assembly: `Server::load(config)` then `run()`.
//! - [`client`]: the demo technician, customer and meeting clients (also used by tests and the load tool).
//! - [`config`], [`metrics`], [`clock`].
#![forbid(unsafe_code)]

pub mod accounts;
pub mod api;
pub mod attachments;
pub mod client;
pub mod clock;
pub mod config;
pub mod core;
pub mod kb;
pub mod media;
pub mod meetings;
pub mod metrics;
pub mod pairing;
pub mod protocol;
pub mod recording;
pub mod relay;
pub mod server;
pub mod store;
pub mod tickets;
pub mod transport;
