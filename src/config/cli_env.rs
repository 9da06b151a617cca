//! Clap's message for a refused value names the flag (`--meeting-whiteboard-bytes <...>`) even when the
//! value came from the flag's environment variable: [`env_value_error`] names the variable instead.

use std::ffi::{OsStr, OsString};

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// When `err` refuses a value that came from an environment variable (the flag is not among `argv`, and
/// the variable holds that value), the message naming the variable:
/// `invalid value 'lots' for ASSIST_RELAY_MEETING_WHITEBOARD_BYTES (--meeting-whiteboard-bytes): ...`.
/// `None` for any other error, which clap reports as it is.
pub fn env_value_error(
    cmd: &clap::Command,
    err: &clap::Error,
    argv: &[OsString],
    var: impl Fn(&str) -> Option<OsString>,
) -> Option<String> {
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return None;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    // `--name <VALUE>` or `--name=<VALUE>`: the environment only ever fills a long flag's value here.
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let flag = format!("--{long}");
    let on_command_line = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    if on_command_line {
        return None;
    }
    let name = env_of(cmd, long, OsStr::new(value), &var)?;
    let why = match (err.kind(), err.get(ContextKind::ValidValue)) {
        (ErrorKind::InvalidValue, Some(ContextValue::Strings(valid))) => {
            format!("possible values: {}", valid.join(", "))
        }
        _ => std::error::Error::source(err)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "not a valid value".into()),
    };
    Some(format!(
        "invalid value '{value}' for {name} ({flag}): {why}"
    ))
}

/// The environment variable of the flag `--long` (in `cmd` or a subcommand) that holds `value`.
fn env_of(
    cmd: &clap::Command,
    long: &str,
    value: &OsStr,
    var: &impl Fn(&str) -> Option<OsString>,
) -> Option<String> {
    let here = cmd
        .get_arguments()
        .filter(|a| a.get_long() == Some(long))
        .filter_map(|a| a.get_env()?.to_str())
        .find(|name| var(name).as_deref() == Some(value));
    match here {
        Some(name) => Some(name.to_string()),
        None => cmd
            .get_subcommands()
            .find_map(|s| env_of(s, long, value, var)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;
    use clap::{Arg, Command};

    fn cmd() -> Command {
        Command::new("x").subcommand(
            Command::new("serve")
                .arg(
                    Arg::new("size")
                        .long("meeting-whiteboard-bytes")
                        .env("X_WHITEBOARD_BYTES")
                        .value_parser(|s: &str| s.parse::<ByteSize>()),
                )
                .arg(
                    Arg::new("on")
                        .long("relay-enabled")
                        .env("X_RELAY_ENABLED")
                        .value_parser(clap::value_parser!(bool)),
                ),
        )
    }

    /// Parses `argv` with the variables `vars` set, and returns what the rewritten error says.
    fn message(argv: &[&str], vars: &[(&str, &str)]) -> Option<String> {
        let var = |name: &str| {
            let v = vars.iter().find(|(k, _)| *k == name)?;
            Some(OsString::from(v.1))
        };
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        // Clap reads a variable when the argument is built; the test stands the variables in as default
        // values, whose values clap checks (and refuses) the same way.
        let c = cmd().mut_subcommand("serve", |s| {
            s.mut_args(|a| {
                let set = a.get_env().and_then(|e| var(e.to_str()?));
                match set.and_then(|v| v.into_string().ok()) {
                    Some(v) => a.default_value(v),
                    None => a,
                }
            })
        });
        let err = c.try_get_matches_from(&argv).err()?;
        env_value_error(&cmd(), &err, &argv, var)
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable() {
        let m = message(&["x", "serve"], &[("X_WHITEBOARD_BYTES", "lots")]).unwrap();
        assert!(
            m.starts_with(
                "invalid value 'lots' for X_WHITEBOARD_BYTES (--meeting-whiteboard-bytes): invalid size"
            ),
            "{m}"
        );
        let m = message(&["x", "serve"], &[("X_RELAY_ENABLED", "maybe")]).unwrap();
        assert_eq!(
            m,
            "invalid value 'maybe' for X_RELAY_ENABLED (--relay-enabled): possible values: true, false"
        );
        // From the command line, clap's own message (naming the flag) stands.
        assert_eq!(
            message(&["x", "serve", "--meeting-whiteboard-bytes", "lots"], &[]),
            None
        );
        assert_eq!(
            message(&["x", "serve", "--meeting-whiteboard-bytes=lots"], &[]),
            None
        );
    }
}
