//! `assist-relay meeting --send-file` as a user runs it: a file that does not reach its recipient fails the
//! command (README: "Failures exit non-zero"), and the last line says why.

use std::io::BufReader;
use std::process::{Command, Stdio};

use super::{entered, meeting_cmd, serve, staff_meeting, Reap, Served};

/// A file the relay refuses (over `meeting.max_file_bytes`) and a file the recipient declines: each
/// sender exits non-zero, its last line naming the file and the reason; the recipient is not affected.
#[test]
fn a_refused_or_declined_file_fails_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let Served {
        server: _server,
        quic,
        http,
        fp,
    } = serve(
        &dir.path().join("data"),
        &["--meeting-max-file-bytes", "1KiB"],
    );
    let (host_token, code) = staff_meeting(&http, "files");
    let meeting = |name: &str| meeting_cmd(&quic, &fp, name);
    // The recipient declines every offer (no --accept-files).
    let mut guest = Reap(
        meeting("Guest")
            .args(["--code", &code, "--duration", "60"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut guest_out = BufReader::new(guest.0.stdout.take().unwrap());
    let (guest_id, _) = entered(&mut guest_out);
    std::thread::spawn(move || std::io::copy(&mut guest_out, &mut std::io::sink()));

    let (small, big) = (dir.path().join("small.txt"), dir.path().join("big2k.bin"));
    std::fs::write(&small, "notes\n").unwrap();
    std::fs::write(&big, vec![7u8; 2048]).unwrap();
    let send = |who: &mut Command, file: &std::path::Path| {
        let out = who
            .arg("--send-file")
            .arg(file)
            .args(["--to", &guest_id, "--duration", "3"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!out.status.success(), "exit 0: {stdout}{err}");
        err.trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    // A second guest's small file, declined; the guest's leaving does not end the meeting.
    let last = send(meeting("Other").args(["--code", &code]), &small);
    assert_eq!(
        last,
        format!(
            "error: file \"small.txt\" was not delivered to participant {guest_id}: \
             declined by \"Guest\" ({guest_id})"
        )
    );
    // The host's file over the relay's limit: refused with the relay's reason.
    let last = send(meeting("Host").args(["--token", &host_token]), &big);
    assert_eq!(
        last,
        format!(
            "error: file \"big2k.bin\" was not delivered to participant {guest_id}: \
             files may be at most 1024 bytes (file_too_large)"
        )
    );
    // The host's leave ended the meeting: the guest ends normally.
    assert!(guest.0.wait().unwrap().success());
}
