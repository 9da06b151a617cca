//! The technician's input script: one event per line, `#` starts a comment.
//!
//! ```text
//! wait-control            # wait until the customer allows control
//! move 32768 16384        # mouse move, coordinates 0..=65535 across the shared screen
//! down left 100 200       # button press (left, right, middle, back, forward) at x y
//! up left 100 200
//! wheel 0 120             # wheel dx dy in 1/120 notches
//! key down KeyA shift     # W3C KeyboardEvent.code, optional modifiers: shift,ctrl,alt,meta
//! key up KeyA
//! text 你好
//! chat hello there
//! sleep 250               # milliseconds
//! keyframe                # ask the customer for a keyframe
//! ```

use std::time::Duration;

use crate::protocol::{ClientMsg, InputEvent};

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Send(ClientMsg),
    Sleep(Duration),
    WaitControl,
}

/// Parses a script; errors name the line.
pub fn parse(text: &str) -> Result<Vec<Step>, String> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            parse_line(l)
                .map_err(|e| format!("line {}: {e}", i + 1))
                .transpose()
        })
        .collect()
}

/// Longest `text` or `chat` line in bytes: well inside the relay's default message limit (64 KiB), so a
/// script line never costs the connection (`message_too_large`).
pub const MAX_TEXT_BYTES: usize = 16 << 10;

fn bounded(text: &str) -> Result<String, String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "text of {} bytes; at most {MAX_TEXT_BYTES} per line",
            text.len()
        ));
    }
    Ok(text.to_string())
}

fn num<T: std::str::FromStr>(w: Option<&str>, what: &str) -> Result<T, String> {
    w.ok_or(format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}"))
}

fn button(w: Option<&str>) -> Result<u8, String> {
    Ok(match w.ok_or("missing button")? {
        "left" => 0,
        "right" => 1,
        "middle" => 2,
        "back" => 3,
        "forward" => 4,
        other => return Err(format!("unknown button {other:?}")),
    })
}

fn parse_line(line: &str) -> Result<Option<Step>, String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let mut w = rest.split_whitespace();
    let input = |e| Ok(Some(Step::Send(ClientMsg::Input(e))));
    match cmd {
        "move" => input(InputEvent::MouseMove {
            x: num(w.next(), "x")?,
            y: num(w.next(), "y")?,
        }),
        "down" | "up" => input(InputEvent::MouseButton {
            button: button(w.next())?,
            pressed: cmd == "down",
            x: num(w.next(), "x")?,
            y: num(w.next(), "y")?,
        }),
        "wheel" => input(InputEvent::MouseWheel {
            dx: num(w.next(), "dx")?,
            dy: num(w.next(), "dy")?,
        }),
        "key" => {
            let pressed = match w.next() {
                Some("down") => true,
                Some("up") => false,
                _ => return Err("key needs down or up".into()),
            };
            let code = w.next().ok_or("missing key code")?.to_string();
            let mut modifiers = 0;
            for m in w.flat_map(|m| m.split(',')) {
                modifiers |= match m {
                    "shift" => 1,
                    "ctrl" => 2,
                    "alt" => 4,
                    "meta" => 8,
                    other => return Err(format!("unknown modifier {other:?}")),
                };
            }
            input(InputEvent::Key {
                code,
                pressed,
                modifiers,
            })
        }
        "text" => input(InputEvent::Text {
            text: bounded(rest)?,
        }),
        "chat" => Ok(Some(Step::Send(ClientMsg::Chat(bounded(rest)?)))),
        "sleep" => Ok(Some(Step::Sleep(Duration::from_millis(num(
            w.next(),
            "milliseconds",
        )?)))),
        "keyframe" => Ok(Some(Step::Send(ClientMsg::KeyframeRequest { track: 0 }))),
        "wait-control" => Ok(Some(Step::WaitControl)),
        other => Err(format!("unknown command {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_and_names_bad_lines() {
        let steps = parse("# demo\nwait-control\nmove 1 2\ndown left 3 4\nkey down KeyA shift,ctrl\ntext 你好 👋\nchat hi there\nsleep 5\nkeyframe\nwheel -120 0\n").unwrap();
        assert_eq!(steps.len(), 9);
        assert_eq!(
            steps[3],
            Step::Send(ClientMsg::Input(InputEvent::Key {
                code: "KeyA".into(),
                pressed: true,
                modifiers: 3
            }))
        );
        assert_eq!(
            steps[4],
            Step::Send(ClientMsg::Input(InputEvent::Text {
                text: "你好 👋".into()
            }))
        );
        assert_eq!(parse("move 1\n").unwrap_err(), "line 1: missing y");
        assert_eq!(
            parse("\n\nfly\n").unwrap_err(),
            "line 3: unknown command \"fly\""
        );
    }

    #[test]
    fn over_long_text_is_refused_before_it_can_cost_the_connection() {
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let e = parse(&format!("chat ok\nchat {long}\n")).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse(&format!("text {}", "y".repeat(MAX_TEXT_BYTES))).is_ok());
    }
}
