//! Docker's global flags (`cli/flags/options.go`), which the docker CLI leaves in a plugin's argv
//! before the plugin name. They are parsed the way pflag parses them: `--flag value`,
//! `--flag=value`, `-H value`, `-H=value` and `-Hvalue`; bool flags also take `=true|false`.

use std::ffi::OsString;
use std::path::PathBuf;

/// Docker's `--log-level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
    /// `fatal`
    Fatal,
}

impl LogLevel {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            _ => return None,
        })
    }

    /// The matching `tracing` filter directive.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Fatal => "error",
        }
    }
}

/// The docker global flags given on the command line. Environment equivalents
/// (`DOCKER_HOST`, …) are applied later, where endpoints and directories are resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalFlags {
    /// `--config DIR`
    pub config: Option<PathBuf>,
    /// `-c/--context NAME`
    pub context: Option<String>,
    /// `-H/--host URL`, repeatable in syntax; more than one is refused when resolving.
    pub hosts: Vec<String>,
    /// `-D/--debug`
    pub debug: bool,
    /// `-l/--log-level LEVEL`
    pub log_level: Option<LogLevel>,
    /// `--tls`
    pub tls: bool,
    /// `--tlsverify`
    pub tls_verify: bool,
    /// `--tlscacert PATH`
    pub tls_ca_cert: Option<PathBuf>,
    /// `--tlscert PATH`
    pub tls_cert: Option<PathBuf>,
    /// `--tlskey PATH`
    pub tls_key: Option<PathBuf>,
}

/// A global flag that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GlobalFlagsError {
    /// A value flag at the end of argv.
    #[error("flag needs an argument: {flag}")]
    MissingValue {
        /// The flag as written.
        flag: String,
    },
    /// A bool flag with a value other than true/false.
    #[error("invalid argument {value:?} for {flag}: expected true or false")]
    InvalidBool {
        /// The flag as written.
        flag: String,
        /// The value given.
        value: String,
    },
    /// An unknown log level.
    #[error(
        "invalid argument {value:?} for --log-level: expected one of debug, info, warn, error, fatal"
    )]
    InvalidLogLevel {
        /// The value given.
        value: String,
    },
    /// Argument is not valid UTF-8 where text is required.
    #[error("argument for {flag} is not valid UTF-8")]
    NotUtf8 {
        /// The flag as written.
        flag: String,
    },
}

enum Kind {
    Value,
    Bool,
}

/// Maps a flag name (without dashes) to its canonical long name and kind.
fn lookup(name: &str, short: bool) -> Option<(&'static str, Kind)> {
    let found = if short {
        match name {
            "c" => ("context", Kind::Value),
            "H" => ("host", Kind::Value),
            "l" => ("log-level", Kind::Value),
            "D" => ("debug", Kind::Bool),
            _ => return None,
        }
    } else {
        match name {
            "config" => ("config", Kind::Value),
            "context" => ("context", Kind::Value),
            "host" => ("host", Kind::Value),
            "log-level" => ("log-level", Kind::Value),
            "tlscacert" => ("tlscacert", Kind::Value),
            "tlscert" => ("tlscert", Kind::Value),
            "tlskey" => ("tlskey", Kind::Value),
            "debug" => ("debug", Kind::Bool),
            "tls" => ("tls", Kind::Bool),
            "tlsverify" => ("tlsverify", Kind::Bool),
            _ => return None,
        }
    };
    Some(found)
}

impl GlobalFlags {
    /// Parses docker global flags from the front of `args` and returns them with the number of
    /// arguments consumed. Parsing stops at the first argument that is not a known global flag;
    /// that argument and the rest belong to the plugin (or to clap, for `--help`).
    pub fn parse_leading(args: &[OsString]) -> Result<(Self, usize), GlobalFlagsError> {
        let mut flags = GlobalFlags::default();
        let mut i = 0;
        while let Some(arg) = args.get(i) {
            let Some(text) = arg.to_str() else { break };
            let (name, inline, short) = if let Some(long) = text.strip_prefix("--") {
                match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string()), false),
                    None => (long, None, false),
                }
            } else if let Some(short) = text.strip_prefix('-') {
                if short.is_empty() {
                    break;
                }
                let (n, tail) = short.split_at(1);
                let inline = match tail.strip_prefix('=') {
                    Some(v) => Some(v.to_string()),
                    None if tail.is_empty() => None,
                    None => Some(tail.to_string()),
                };
                (n, inline, true)
            } else {
                break;
            };
            let Some((canonical, kind)) = lookup(name, short) else {
                break;
            };
            i += 1;
            match kind {
                Kind::Bool => {
                    let value = match inline.as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(other) => {
                            return Err(GlobalFlagsError::InvalidBool {
                                flag: text.to_string(),
                                value: other.to_string(),
                            });
                        }
                    };
                    match canonical {
                        "debug" => flags.debug = value,
                        "tls" => flags.tls = value,
                        _ => flags.tls_verify = value,
                    }
                }
                Kind::Value => {
                    let value = match inline {
                        Some(v) => v,
                        None => {
                            let v = args.get(i).ok_or_else(|| GlobalFlagsError::MissingValue {
                                flag: text.to_string(),
                            })?;
                            i += 1;
                            v.to_str()
                                .ok_or_else(|| GlobalFlagsError::NotUtf8 {
                                    flag: text.to_string(),
                                })?
                                .to_string()
                        }
                    };
                    match canonical {
                        "config" => flags.config = Some(value.into()),
                        "context" => flags.context = Some(value),
                        "host" => flags.hosts.push(value),
                        "log-level" => {
                            flags.log_level = Some(
                                LogLevel::parse(&value)
                                    .ok_or(GlobalFlagsError::InvalidLogLevel { value })?,
                            )
                        }
                        "tlscacert" => flags.tls_ca_cert = Some(value.into()),
                        "tlscert" => flags.tls_cert = Some(value.into()),
                        _ => flags.tls_key = Some(value.into()),
                    }
                }
            }
        }
        Ok((flags, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<(GlobalFlags, usize), GlobalFlagsError> {
        let v: Vec<OsString> = items.iter().map(OsString::from).collect();
        GlobalFlags::parse_leading(&v)
    }

    #[test]
    fn every_flag_in_both_value_forms() {
        let (a, n) = parse(&[
            "--config",
            "/c",
            "--context",
            "x",
            "--host",
            "tcp://h:2376",
            "--log-level",
            "warn",
            "--tlscacert",
            "/ca",
            "--tlscert",
            "/cert",
            "--tlskey",
            "/key",
            "--tls",
            "--tlsverify",
            "--debug",
            "rest",
        ])
        .unwrap();
        assert_eq!(n, 17);
        let (b, m) = parse(&[
            "--config=/c",
            "--context=x",
            "--host=tcp://h:2376",
            "--log-level=warn",
            "--tlscacert=/ca",
            "--tlscert=/cert",
            "--tlskey=/key",
            "--tls=true",
            "--tlsverify=true",
            "--debug=true",
            "rest",
        ])
        .unwrap();
        assert_eq!(m, 10);
        assert_eq!(a, b);
        assert_eq!(a.config, Some("/c".into()));
        assert_eq!(a.context.as_deref(), Some("x"));
        assert_eq!(a.hosts, ["tcp://h:2376"]);
        assert_eq!(a.log_level, Some(LogLevel::Warn));
        assert_eq!(a.tls_ca_cert, Some("/ca".into()));
        assert_eq!(a.tls_cert, Some("/cert".into()));
        assert_eq!(a.tls_key, Some("/key".into()));
        assert!(a.tls && a.tls_verify && a.debug);
    }

    #[test]
    fn short_flags_in_all_pflag_forms() {
        let (f, n) = parse(&[
            "-H",
            "unix:///a",
            "-H=unix:///b",
            "-Hunix:///c",
            "-c",
            "ctx",
            "-D",
            "-l",
            "error",
        ])
        .unwrap();
        assert_eq!(n, 9);
        assert_eq!(f.hosts, ["unix:///a", "unix:///b", "unix:///c"]);
        assert_eq!(f.context.as_deref(), Some("ctx"));
        assert!(f.debug);
        assert_eq!(f.log_level, Some(LogLevel::Error));
    }

    #[test]
    fn bool_flag_false_and_bad_values() {
        let (f, _) = parse(&["--debug=false"]).unwrap();
        assert!(!f.debug);
        assert!(matches!(
            parse(&["--tls=maybe"]),
            Err(GlobalFlagsError::InvalidBool { .. })
        ));
        assert!(matches!(
            parse(&["-l", "loud"]),
            Err(GlobalFlagsError::InvalidLogLevel { .. })
        ));
        assert_eq!(
            parse(&["--config"]),
            Err(GlobalFlagsError::MissingValue {
                flag: "--config".into()
            })
        );
    }

    #[test]
    fn stops_at_first_non_global_argument() {
        let (f, n) = parse(&["-D", "trustacr", "--config", "/x"]).unwrap();
        assert!(f.debug);
        assert_eq!(n, 1);
        let (_, n) = parse(&["--help"]).unwrap();
        assert_eq!(n, 0);
    }
}
