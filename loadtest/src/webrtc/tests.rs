//! The pure parts (payload, tally, derived figures, argument checks) and the whole scenario against an
//! in-process relay.

use super::payload::*;
use super::peers::next_is_keyframe;
use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: WebrtcArgs,
}

fn parse_args(argv: &[&str]) -> WebrtcArgs {
    Cli::parse_from(std::iter::once("x").chain(argv.iter().copied())).args
}

fn tag(keyframe: bool, kind: Kind, seq: u64, send_ns: u64, len: u32) -> FrameTag {
    FrameTag {
        keyframe,
        kind,
        seq,
        send_ns,
        len,
    }
}

#[test]
fn payloads_round_trip_and_look_like_vp8_to_the_relay() {
    let key = tag(true, Kind::Measured, 7, 123_456_789_012, 4_000);
    let data = craft(&key);
    assert_eq!(data.len(), 4_000);
    // The only byte the relay and str0m read: VP8's P bit (bit 0) clear on a keyframe, set on a delta frame.
    assert_eq!(data[0], 0x10);
    assert_eq!(data[0] & 1, 0);
    assert_eq!(parse(&data), Ok(key));
    let delta = tag(false, Kind::Warmup, u64::MAX - 1, 1, HEADER_LEN as u32);
    let d = craft(&delta);
    assert_eq!((d[0], d[0] & 1), (0x11, 1));
    assert_eq!(d.len(), HEADER_LEN);
    assert_eq!(parse(&d), Ok(delta));
    assert!(d.iter().skip(HEADER_LEN).all(|b| *b == FILLER));
    // A length below the header is raised to it (and says so).
    let short = craft(&tag(true, Kind::Measured, 0, 0, 3));
    assert_eq!(short.len(), HEADER_LEN);
    assert_eq!(parse(&short).unwrap().len, HEADER_LEN as u32);
}

#[test]
fn payloads_that_are_not_ours_are_refused() {
    let good = craft(&tag(false, Kind::Measured, 3, 9, 100));
    assert_eq!(parse(&good[..HEADER_LEN - 1]), Err(PayloadError::Short));
    assert_eq!(parse(&good[..99]), Err(PayloadError::Length), "truncated");
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(parse(&longer), Err(PayloadError::Length), "padded");
    let mut b = good.clone();
    b[0] = 0x9d;
    assert_eq!(parse(&b), Err(PayloadError::NotVp8Shaped));
    let mut b = good.clone();
    b[2] = b'x';
    assert_eq!(parse(&b), Err(PayloadError::Magic));
    let mut b = good;
    b[4] = 2;
    assert_eq!(parse(&b), Err(PayloadError::Kind));
}

#[test]
fn the_tally_counts_each_frame_once_and_measures_latency() {
    let mut t = Tally::new(5);
    let ms = 1_000_000;
    // 0 (key), 1, 1 again, 3 (gap before a delta), 2 (late), 4; then a frame beyond the plan.
    t.record(&tag(true, Kind::Measured, 0, 0, 100), true, true, 2 * ms);
    t.record(
        &tag(false, Kind::Measured, 1, 10 * ms, 200),
        false,
        true,
        13 * ms,
    );
    t.record(
        &tag(false, Kind::Measured, 1, 10 * ms, 200),
        false,
        true,
        14 * ms,
    );
    t.record(
        &tag(false, Kind::Measured, 3, 30 * ms, 300),
        false,
        false,
        31 * ms,
    );
    t.record(
        &tag(false, Kind::Measured, 2, 20 * ms, 400),
        true,
        true,
        40 * ms,
    );
    t.record(
        &tag(true, Kind::Measured, 4, 40 * ms, 500),
        true,
        true,
        41 * ms,
    );
    t.record(
        &tag(false, Kind::Measured, 5, 50 * ms, 600),
        false,
        true,
        51 * ms,
    );
    assert_eq!((t.frames, t.bytes), (5, 1_500));
    assert_eq!((t.duplicates, t.reordered, t.out_of_range), (1, 1, 1));
    assert_eq!((t.seq_gaps, t.mid_group_gaps), (1, 1));
    assert_eq!(
        (t.keyframes, t.keyframe_mismatches, t.non_contiguous),
        (2, 1, 1)
    );
    let p = crate::report::Percentiles::of(&t.latency);
    assert_eq!(p.count, 5);
    assert!((p.max_ms - 20.0).abs() < 0.05, "{p:?}");
    assert!((p.p50_ms - 2.0).abs() < 0.01, "{p:?}");
    // A receive time before the send time (clock misuse) records the floor, not a wrapped value.
    let mut t = Tally::new(1);
    t.record(&tag(true, Kind::Measured, 0, 5 * ms, 100), true, true, ms);
    assert_eq!(t.latency.max(), 1);
    // A window that starts past frame 0 is a gap at the start.
    let mut t = Tally::new(3);
    t.record(&tag(false, Kind::Measured, 2, 0, 10), false, true, 1);
    assert_eq!((t.seq_gaps, t.mid_group_gaps), (1, 1));
}

#[test]
fn cost_figures_are_per_forwarded_megabit_and_per_cpu() {
    // 1 s of relay CPU for 125 MB = 1,000 Mbit: 1 ms per Mbit (8 s per GB).
    assert_eq!(cpu_ms_per_mbit(1.0, 125_000_000), Some(1.0));
    assert_eq!(cpu_ms_per_mbit(1.0, 0), None);
    assert_eq!(cpu_share(1.0, 2.0, 1), Some(0.5));
    assert_eq!(cpu_share(1.0, 2.0, 2), Some(0.25));
    assert_eq!(cpu_share(1.0, 0.0, 1), None);
    assert_eq!(cpu_share(1.0, 1.0, 0), None);
}

#[test]
fn keyframes_open_every_group_and_answer_requests() {
    let mut in_group = 0;
    let flags: Vec<bool> = (0..7)
        .map(|k| next_is_keyframe(&mut in_group, 3, k == 4))
        .collect();
    assert_eq!(flags, [true, false, false, true, true, false, false]);
}

#[test]
fn the_documented_workload_parses_and_bad_arguments_are_refused() {
    let a = parse_args(&[
        "--viewers",
        "50",
        "--fps",
        "30",
        "--frame-bytes",
        "4000",
        "--frame-bytes-max",
        "20000",
        "--keyframe-interval",
        "30",
        "--duration",
        "10",
        "--pin-relay",
        "0",
        "--pin-load",
        "1",
        "--json",
    ]);
    a.check().unwrap();
    assert_eq!(a.planned_frames(), 300);
    let spec = a.plan_spec();
    assert_eq!(
        (spec.min_bytes, spec.max_bytes, spec.seed),
        (4000, 20000, 1)
    );
    parse_args(&[]).check().unwrap();
    for argv in [
        &["--viewers", "0"][..],
        &["--viewers", "100000"],
        &["--fps", "0"],
        &["--fps", "5000"],
        &["--keyframe-interval", "0"],
        &["--frame-bytes", "10"],
        &["--frame-bytes", "5000", "--frame-bytes-max", "4000"],
        &["--frame-bytes-max", "99999999"],
        &["--duration", "0"],
        &["--setup-timeout", "0"],
        &["--pin-load", "1"],
    ] {
        assert!(parse_args(argv).check().is_err(), "{argv:?} was accepted");
    }
    assert!(Cli::try_parse_from(["x", "--pin-relay", "0"]).is_err());
}

/// The whole scenario against an in-process relay (the meeting made on the relay directly, not through the
/// API): every measured frame reaches every viewer, byte for byte, and the run counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_publisher_reaches_every_viewer_through_an_in_process_relay() {
    use assist_relay::config::Config;
    use assist_relay::protocol::message::MeetingRole;
    use assist_relay::server::Server;
    tokio::time::timeout(Duration::from_secs(90), async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::load(Config::for_tests(dir.path())).await.unwrap();
        let relay = server.relay.clone();
        let target = Target {
            api: format!("http://{}", server.http_addr()),
            pid: None,
            metrics: Some(format!("http://{}/metrics", server.metrics_addr())),
            webrtc_port: server.webrtc_addr().map(|a| a.port()),
        };
        let shutdown = server.shutdown_token();
        let task = tokio::spawn(server.run());
        let now = relay.clock.wall();
        let m = relay
            .create_meeting(now, now + Duration::from_secs(3600))
            .unwrap();
        let access = MeetingAccess {
            meeting_id: m.id.to_string(),
            code: m.code.clone(),
            host_token: relay.meeting_token(m.id, 1, MeetingRole::Host, m.ends_at),
        };
        let args = parse_args(&[
            "--viewers",
            "3",
            "--fps",
            "20",
            "--duration",
            "0.5",
            "--frame-bytes",
            "1000",
            "--frame-bytes-max",
            "5000",
            "--keyframe-interval",
            "4",
            "--json",
        ]);
        args.check().unwrap();
        let generator = Generator::start().unwrap();
        let base = Instant::now();
        let got = session(&args, base, &target, access, &generator)
            .await
            .unwrap();
        let rep = &got.rep;
        assert!(rep.delivered_equals_offered, "{rep:#?}");
        assert_eq!(rep.pairs, 3);
        assert_eq!(rep.offered_frames, 3 * 10);
        assert_eq!(rep.delivered_frames, 3 * 10);
        let plan = FanoutPlan::new(&args.plan_spec(), base);
        let bytes: usize = plan.sizes(0).take(10).sum();
        assert_eq!(
            rep.delivered_bytes,
            3 * bytes as u64,
            "sizes follow the seed"
        );
        assert_eq!((rep.seq_gaps, rep.mid_group_gaps), (0, 0));
        let v = &got.viewers;
        // Frames 0, 4 and 8 are keyframes (unless the relay asked for more).
        assert!(v.keyframes >= 3 * 3, "{v:?}");
        assert_eq!(
            (v.duplicates, v.bad_payloads, v.keyframe_mismatches),
            (0, 0, 0)
        );
        assert_eq!(v.track_mids, 3, "one TRACK_MID per viewer");
        assert_eq!(got.warmup.viewers_ready, 3);
        assert!(
            rep.latency.count == 30 && rep.latency.max_ms < 5_000.0,
            "{:?}",
            rep.latency
        );
        assert!(rep.generator_cpu_s.is_some());
        // str0m reports RTP counters once a second, so a run this short may end before the first report;
        // the core's counters are immediate.
        assert!(
            rep.relay_metrics
                .keys()
                .any(|k| k.starts_with("assist_relay_frames_forwarded_total")),
            "{:?}",
            rep.relay_metrics
        );
        drop(generator);
        shutdown.cancel();
        let _ = task.await;
    })
    .await
    .unwrap();
}
