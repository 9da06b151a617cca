//! Argument checks, frame sizes and the whole scenario against an in-process relay.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: MeetingArgs,
}

fn parse(argv: &[&str]) -> MeetingArgs {
    Cli::parse_from(std::iter::once("x").chain(argv.iter().copied())).args
}

#[test]
fn the_issue_workload_parses_and_passes_the_checks() {
    let a = parse(&[
        "--publishers",
        "1",
        "--subscribers",
        "50",
        "--fps",
        "30",
        "--frame-bytes",
        "4000",
        "--frame-bytes-max",
        "20000",
        "--duration",
        "10",
        "--direct",
        "--pin-relay",
        "0",
        "--pin-load",
        "1",
        "--relay-arg=--control-queue=4096",
    ]);
    a.check().unwrap();
    assert_eq!((a.frame_bytes, a.max_bytes()), (4000, 20000));
    assert_eq!(a.relay_arg, ["--control-queue=4096"]);
    let spec = a.plan_spec();
    assert_eq!(
        (spec.min_bytes, spec.max_bytes, spec.seed),
        (4000, 20000, 1)
    );
    assert_eq!(parse(&[]).max_bytes(), 20_000, "fixed size by default");
}

#[test]
fn bad_arguments_are_refused() {
    for argv in [
        &["--subscribers", "0"][..],
        &["--publishers", "0"],
        &["--fps", "0"],
        &["--frame-bytes", "5000", "--frame-bytes-max", "4000"],
        &["--duration", "0"],
        &["--fps", "5000"],
        &["--publishers", "2", "--direct"],
        &["--subscribers", "6000"],
        &["--pin-load", "1"],
        &["--setup-timeout", "0"],
    ] {
        assert!(parse(argv).check().is_err(), "{argv:?} was accepted");
    }
    // clap itself refuses a pinned relay without a pinned load, and a child flag with --relay-addr.
    assert!(Cli::try_parse_from(["x", "--pin-relay", "0"]).is_err());
    assert!(Cli::try_parse_from([
        "x",
        "--relay-addr",
        "127.0.0.1:1",
        "--api",
        "http://x",
        "--login",
        "u",
        "--password",
        "p",
        "--cert-sha256",
        "00",
        "--relay-arg=--x"
    ])
    .is_err());
    assert!(parse(&["--publishers", "3", "--subscribers", "10"])
        .check()
        .is_ok());
}

/// The whole scenario against an in-process relay (the meeting made on the relay directly, not through
/// the API): every frame of two publishers reaches every subscriber and the other publisher, with the
/// right tracks and sizes; the direct phase delivers the same frames too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_reach_every_receiver_through_an_in_process_relay() {
    use assist_relay::protocol::message::MeetingRole;
    use assist_relay::server::Server;
    tokio::time::timeout(Duration::from_secs(90), async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::load(Config::for_tests(dir.path())).await.unwrap();
        let relay = server.relay.clone();
        let target = RelayTarget {
            quic: server.quic_addr().unwrap(),
            api: format!("http://{}", server.http_addr()),
            token: String::new(),
            cert: server.cert_sha256(),
            pid: None,
            metrics: Some(format!("http://{}/metrics", server.metrics_addr())),
            label: "in-process".into(),
        };
        let shutdown = server.shutdown_token();
        let task = tokio::spawn(server.run());
        let now = relay.clock.wall();
        let m = relay
            .create_meeting(now, now + Duration::from_secs(3600))
            .unwrap();
        let tokens = vec![
            relay.meeting_token(m.id, 1, MeetingRole::Host, m.ends_at),
            relay.meeting_token(m.id, 2, MeetingRole::Presenter, m.ends_at),
        ];
        let access = MeetingAccess {
            meeting_id: m.id.to_string(),
            code: m.code.clone(),
            tokens,
        };
        let args = parse(&[
            "--publishers",
            "2",
            "--subscribers",
            "3",
            "--fps",
            "20",
            "--duration",
            "0.5",
            "--frame-bytes",
            "1000",
            "--frame-bytes-max",
            "3000",
            "--group-frames",
            "4",
            "--json",
        ]);
        args.check().unwrap();
        let generator = Generator::start().unwrap();
        let base = Instant::now();
        let rep = relay_phase(&args, base, Arc::new(target), access, &generator)
            .await
            .unwrap();
        assert!(rep.delivered_equals_offered, "{rep:#?}");
        // 10 frames per publisher, each to 3 subscribers and the other publisher.
        assert_eq!(rep.pairs, 5);
        assert_eq!(rep.delivered_frames, 2 * 10 * 4);
        assert_eq!((rep.seq_gaps, rep.keyframe_skips), (0, 0));
        let plan = FanoutPlan::new(&args.plan_spec(), base);
        let bytes: usize = (0..2).flat_map(|p| plan.sizes(p).take(10)).sum();
        assert_eq!(
            rep.delivered_bytes,
            bytes as u64 * 4,
            "sizes follow the seed"
        );
        assert!(rep
            .relay_metrics
            .keys()
            .any(|k| k.starts_with("assist_relay_frames_forwarded")));

        let args = parse(&[
            "--subscribers",
            "4",
            "--duration",
            "0.5",
            "--fps",
            "20",
            "--direct",
        ]);
        let direct = direct_phase(&args, Instant::now(), &generator)
            .await
            .unwrap();
        assert!(direct.delivered_equals_offered, "{direct:#?}");
        assert_eq!(direct.delivered_frames, 4 * 10);
        assert!(direct.generator_cpu_s_per_sent_gb.is_some());
        shutdown.cancel();
        let _ = task.await;
    })
    .await
    .unwrap();
}
