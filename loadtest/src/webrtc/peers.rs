//! The peers of `loadtest webrtc`: the viewers (each a str0m [`RtcClient`] reading its frames into a
//! [`Tally`]) and the publisher's warm-up and measured sending, run on the generator thread.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use assist_relay::client::webrtc::{RtcClient, RtcEvent, RtcOptions};
use assist_relay::media::{Codec, MediaFrame};
use assist_relay::protocol::ServerMsg;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Semaphore};

use super::payload::{self, FrameTag, Kind, Tally};
use super::report::WarmupReport;
use super::WebrtcArgs;
use crate::fanout::FanoutPlan;
use crate::load::{micros, step};
use crate::report::new_histogram;

/// Nanoseconds since the run's base instant (the clock every payload's send time is read on).
pub(super) fn ns_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What every viewer is told while it runs: until when to wait, and (once the publisher is done) how many
/// measured frames there are.
#[derive(Debug, Clone, Copy)]
pub(super) struct Control {
    pub(super) deadline: Instant,
    pub(super) expected: Option<u64>,
}

/// Counters the viewers and the publisher share with the controller.
pub(super) struct Shared {
    pub(super) base: Instant,
    /// Viewers that have received a warm-up frame.
    pub(super) ready: AtomicUsize,
    /// Measured frames produced and received (progress bar).
    pub(super) produced: AtomicU64,
    pub(super) delivered: AtomicU64,
    /// Keyframe requests the publisher got (whole run).
    pub(super) keyframe_requests: AtomicU64,
}

/// What one viewer saw; its peer is handed back to stay connected until teardown.
pub(super) struct ViewerOutcome {
    pub(super) client: Option<RtcClient>,
    pub(super) tally: Tally,
    pub(super) bad_payloads: u64,
    pub(super) first_bad: Option<String>,
    pub(super) track_mids: u64,
    pub(super) warmup_frames: u64,
    pub(super) error: Option<String>,
}

/// Enters viewer `i` with the meeting code, reports the join on `joined`, then reads its events until it
/// holds every measured frame, its peer closes, or the deadline.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_viewer(
    i: usize,
    api: String,
    code: String,
    limit: Duration,
    permits: Arc<Semaphore>,
    joined: mpsc::Sender<Result<(), String>>,
    shared: Arc<Shared>,
    mut ctl: watch::Receiver<Control>,
    planned: u64,
) -> ViewerOutcome {
    let mut out = ViewerOutcome {
        client: None,
        tally: Tally::new(planned),
        bad_payloads: 0,
        first_bad: None,
        track_mids: 0,
        warmup_frames: 0,
        error: None,
    };
    // Waiting for a turn is outside the join's bound (each turn ahead is bounded by it).
    let Ok(permit) = permits.acquire_owned().await else {
        out.error = Some(format!("viewer {i}: setup stopped"));
        let _ = joined
            .send(Err(out.error.clone().unwrap_or_default()))
            .await;
        return out;
    };
    let join = async {
        let opts = RtcOptions {
            recv_tracks: 1,
            ..RtcOptions::default()
        };
        let query = format!("as=guest&name=viewer{i}");
        let mut c = RtcClient::connect(&api, &query, &code, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        c.wait_msg(limit, |m| {
            matches!(m, ServerMsg::MeetingWelcome(_)).then_some(())
        })
        .await
        .context("no MEETING_WELCOME on the control channel")?;
        anyhow::Ok(c)
    };
    let joining = step(limit, || format!("viewer {i}'s join"), join).await;
    drop(permit);
    let mut client = match joining {
        Ok(c) => {
            let _ = joined.send(Ok(())).await;
            c
        }
        Err(e) => {
            let _ = joined.send(Err(format!("{e:#}"))).await;
            out.error = Some(format!("{e:#}"));
            return out;
        }
    };
    drop(joined);
    // Read events here; the client stays with the outcome so the peer lives until teardown.
    let mut events = std::mem::replace(&mut client.events, mpsc::channel(1).1);
    out.client = Some(client);
    let mut ready = false;
    let mut ctl_gone = false;
    loop {
        let c = *ctl.borrow_and_update();
        if c.expected.is_some_and(|e| out.tally.frames >= e) {
            break;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some(RtcEvent::Frame { keyframe, contiguous, data, .. }) => {
                    let recv_ns = ns_since(shared.base);
                    match payload::parse(&data) {
                        Ok(tag) if tag.kind == Kind::Warmup => {
                            out.warmup_frames += 1;
                            if !ready {
                                ready = true;
                                shared.ready.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(tag) => {
                            let before = (out.tally.frames, out.tally.out_of_range);
                            out.tally.record(&tag, keyframe, contiguous, recv_ns);
                            if out.tally.frames > before.0 {
                                shared.delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            if out.tally.out_of_range > before.1 {
                                out.bad_payloads += 1;
                            }
                        }
                        Err(e) => {
                            out.bad_payloads += 1;
                            out.first_bad.get_or_insert_with(|| {
                                format!("viewer {i}: a {} B payload that is not the tool's: {e:?}", data.len())
                            });
                        }
                    }
                }
                Some(RtcEvent::Message(ServerMsg::TrackMid { .. })) => out.track_mids += 1,
                Some(RtcEvent::Closed) | None => {
                    out.error = Some(format!(
                        "viewer {i}: the peer connection closed after {} measured frames",
                        out.tally.frames
                    ));
                    break;
                }
                Some(_) => {}
            },
            r = ctl.changed(), if !ctl_gone => ctl_gone = r.is_err(),
            _ = tokio::time::sleep_until(c.deadline.into()) => {
                out.error = Some(format!(
                    "viewer {i}: {} of {} measured frames by the deadline",
                    out.tally.frames,
                    c.expected.map_or("?".to_string(), |e| e.to_string())
                ));
                break;
            }
        }
    }
    out
}

/// Drains the publisher's events (control messages, PLIs) until its peer ends; a keyframe request sets
/// `wanted`, answered on the next frame as a live encoder would.
pub(super) async fn drain_publisher(
    mut events: mpsc::Receiver<RtcEvent>,
    wanted: Arc<AtomicBool>,
    shared: Arc<Shared>,
) {
    while let Some(ev) = events.recv().await {
        let asked = matches!(
            ev,
            RtcEvent::KeyframeRequested { .. }
                | RtcEvent::Message(ServerMsg::KeyframeRequest { .. })
        );
        if asked {
            shared.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            wanted.store(true, Ordering::Relaxed);
        }
        if matches!(ev, RtcEvent::Closed) {
            break;
        }
    }
}

/// Keyframe decision shared by the warm-up and the window: a keyframe opens every group of `interval`
/// frames and answers a request. `in_group` counts frames of the current group.
pub(super) fn next_is_keyframe(in_group: &mut u32, interval: u32, asked: bool) -> bool {
    let keyframe = asked || *in_group == 0 || *in_group >= interval;
    if keyframe {
        *in_group = 0;
    }
    *in_group += 1;
    keyframe
}

/// Warm-up frames (small, `kind` warm-up) at the run's frame rate until every viewer has one, at most
/// `limit` (runs on the generator).
pub(super) async fn warm_up(
    client: RtcClient,
    shared: Arc<Shared>,
    args: WebrtcArgs,
    wanted: Arc<AtomicBool>,
) -> (RtcClient, WarmupReport) {
    let start = Instant::now();
    let limit = args.setup_timeout();
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.fps));
    let max_frames = (f64::from(args.fps) * limit.as_secs_f64()).ceil() as u64 + 1;
    let mut in_group = 0;
    let mut sent = 0;
    for k in 0..max_frames {
        if shared.ready.load(Ordering::Relaxed) >= args.viewers || start.elapsed() >= limit {
            break;
        }
        let asked = wanted.swap(false, Ordering::Relaxed);
        let keyframe = next_is_keyframe(&mut in_group, args.keyframe_interval, asked);
        let tag = FrameTag {
            keyframe,
            kind: Kind::Warmup,
            seq: k,
            send_ns: ns_since(shared.base),
            len: args.frame_bytes as u32,
        };
        let frame = MediaFrame {
            codec: Codec::Vp8,
            keyframe,
            pts_us: tag.send_ns / 1_000,
            data: Bytes::from(payload::craft(&tag)),
        };
        if tokio::time::timeout(limit, client.send_frame(0, frame))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
        tokio::time::sleep_until((start + interval * (k as u32 + 1)).into()).await;
    }
    let rep = WarmupReport {
        frames_sent: sent,
        seconds: start.elapsed().as_secs_f64(),
        viewers_ready: shared.ready.load(Ordering::Relaxed),
    };
    (client, rep)
}

#[derive(Default)]
pub(super) struct PublisherResult {
    pub(super) frames: u64,
    pub(super) bytes: u64,
    pub(super) lag: Option<Histogram<u64>>,
    pub(super) errors: Vec<String>,
}

/// The measured frames on the plan's schedule (runs on the generator); tells the viewers how many there
/// were once done.
pub(super) async fn publish(
    client: RtcClient,
    plan: Arc<FanoutPlan>,
    keyframe_interval: u32,
    wanted: Arc<AtomicBool>,
    ctl: watch::Sender<Control>,
    shared: Arc<Shared>,
) -> (RtcClient, PublisherResult) {
    let mut out = PublisherResult::default();
    let mut lag = new_histogram();
    let mut sizes = plan.sizes(0);
    let mut in_group = 0;
    for k in 0..plan.frames_per_publisher {
        let due = plan.due(0, k);
        tokio::time::sleep_until(due.into()).await;
        lag.saturating_record(micros(Instant::now().saturating_duration_since(due)).max(1));
        let asked = wanted.swap(false, Ordering::Relaxed);
        let keyframe = next_is_keyframe(&mut in_group, keyframe_interval, asked);
        let size = sizes.next().expect("endless");
        let tag = FrameTag {
            keyframe,
            kind: Kind::Measured,
            seq: k,
            send_ns: ns_since(plan.base),
            len: size as u32,
        };
        let frame = MediaFrame {
            codec: Codec::Vp8,
            keyframe,
            pts_us: tag.send_ns / 1_000,
            data: Bytes::from(payload::craft(&tag)),
        };
        if tokio::time::timeout_at(plan.deadline.into(), client.send_frame(0, frame))
            .await
            .is_err()
        {
            out.errors
                .push("publisher: its peer took no frame until the deadline".into());
            break;
        }
        out.frames += 1;
        out.bytes += size as u64;
        shared.produced.fetch_add(1, Ordering::Relaxed);
        if Instant::now() > plan.deadline {
            out.errors
                .push("publisher: behind schedule past the deadline".into());
            break;
        }
    }
    ctl.send_modify(|c| c.expected = Some(out.frames));
    out.lag = Some(lag);
    (client, out)
}
