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
    /// A cluster of shorthands holds one that is not docker's (`-Dx`); docker's own parser
    /// refuses it the same way.
    #[error("unknown shorthand flag {shorthand:?} in {flag}")]
    UnknownShorthand {
        /// The argument as written.
        flag: String,
        /// The shorthand that is not a docker global flag.
        shorthand: char,
    },
    /// Argument is not valid UTF-8 where text is required.
    #[error("argument for {flag} is not valid UTF-8")]
    NotUtf8 {
        /// The flag as written.
        flag: String,
    },
}

#[derive(Clone, Copy)]
enum Kind {
    Value,
    Bool,
}

/// Maps a shorthand to its canonical long name and kind.
fn lookup_short(c: char) -> Option<(&'static str, Kind)> {
    Some(match c {
        'c' => ("context", Kind::Value),
        'H' => ("host", Kind::Value),
        'l' => ("log-level", Kind::Value),
        'D' => ("debug", Kind::Bool),
        _ => return None,
    })
}

/// Maps a long flag name (without dashes) to its canonical name and kind.
fn lookup_long(name: &str) -> Option<(&'static str, Kind)> {
    Some(match name {
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
    })
}

/// Where a value flag's value comes from.
enum Value<'a> {
    /// Written in the same argument (`--flag=v`, `-Hv`, `-H=v`).
    Inline(&'a str),
    /// The next argument.
    Next,
}

impl GlobalFlags {
    /// Parses docker global flags from the front of `args` and returns them with the number of
    /// arguments consumed. Parsing stops at the first argument that is not a known global flag;
    /// that argument and the rest belong to the plugin (or to clap, for `--help`).
    ///
    /// Never panics, whatever the bytes: argv is the one input every user can shape (#8 item 15).
    pub fn parse_leading(args: &[OsString]) -> Result<(Self, usize), GlobalFlagsError> {
        let mut flags = GlobalFlags::default();
        let mut i = 0;
        while let Some(text) = args.get(i).and_then(|a| a.to_str()) {
            let next = args.get(i + 1);
            let used = if let Some(long) = text.strip_prefix("--") {
                flags.parse_long(text, long, next)?
            } else if let Some(shorts) = text.strip_prefix('-') {
                flags.parse_shorts(text, shorts, next)?
            } else {
                None
            };
            match used {
                Some(n) => i += n,
                None => break,
            }
        }
        Ok((flags, i))
    }

    /// `--name`, `--name=value`, `--name value`. Returns the arguments used, or `None` when
    /// the flag is not docker's.
    fn parse_long(
        &mut self,
        text: &str,
        long: &str,
        next: Option<&OsString>,
    ) -> Result<Option<usize>, GlobalFlagsError> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let Some((canonical, kind)) = lookup_long(name) else {
            return Ok(None);
        };
        match kind {
            Kind::Bool => {
                self.set_bool(canonical, text, inline)?;
                Ok(Some(1))
            }
            Kind::Value => {
                let value = inline.map_or(Value::Next, Value::Inline);
                Ok(Some(1 + self.set_value(canonical, text, value, next)?))
            }
        }
    }

    /// A cluster of shorthands, as pflag's `parseShortArg` reads it: bool shorthands may be
    /// followed by more shorthands (`-Dc ctx` is `-D -c ctx`); a value shorthand takes the rest
    /// of the argument (`-Hunix://…`, `-H=unix://…`) or the next argument. Returns `None` when
    /// the first shorthand is not docker's (`-h`, `-v`: those are the plugin's or clap's).
    fn parse_shorts(
        &mut self,
        text: &str,
        shorts: &str,
        next: Option<&OsString>,
    ) -> Result<Option<usize>, GlobalFlagsError> {
        let mut rest = shorts;
        let mut used = 1;
        // Split by char, never by byte: `-é` once panicked here (#8 item 15).
        while let Some(c) = rest.chars().next() {
            let after = &rest[c.len_utf8()..];
            let Some((canonical, kind)) = lookup_short(c) else {
                if rest.len() == shorts.len() {
                    return Ok(None);
                }
                return Err(GlobalFlagsError::UnknownShorthand {
                    flag: text.to_string(),
                    shorthand: c,
                });
            };
            // pflag: `-X=v` needs a value after the `=`; `-D=` is `-D` then an unknown `=`.
            let inline = after.strip_prefix('=').filter(|v| !v.is_empty());
            match kind {
                Kind::Bool => {
                    self.set_bool(canonical, text, inline)?;
                    rest = if inline.is_some() { "" } else { after };
                }
                Kind::Value => {
                    let value = match inline {
                        Some(v) => Value::Inline(v),
                        None if !after.is_empty() => Value::Inline(after),
                        None => Value::Next,
                    };
                    used += self.set_value(canonical, text, value, next)?;
                    rest = "";
                }
            }
        }
        Ok(Some(used))
    }

    fn set_bool(
        &mut self,
        canonical: &str,
        text: &str,
        inline: Option<&str>,
    ) -> Result<(), GlobalFlagsError> {
        let value = match inline {
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
            "debug" => self.debug = value,
            "tls" => self.tls = value,
            _ => self.tls_verify = value,
        }
        Ok(())
    }

    /// Stores a value flag; returns how many arguments after the flag's own were used.
    fn set_value(
        &mut self,
        canonical: &str,
        text: &str,
        value: Value<'_>,
        next: Option<&OsString>,
    ) -> Result<usize, GlobalFlagsError> {
        let (value, used) = match value {
            Value::Inline(v) => (v.to_string(), 0),
            Value::Next => {
                let v = next.ok_or_else(|| GlobalFlagsError::MissingValue {
                    flag: text.to_string(),
                })?;
                let v = v.to_str().ok_or_else(|| GlobalFlagsError::NotUtf8 {
                    flag: text.to_string(),
                })?;
                (v.to_string(), 1)
            }
        };
        match canonical {
            "config" => self.config = Some(value.into()),
            "context" => self.context = Some(value),
            "host" => self.hosts.push(value),
            "log-level" => {
                self.log_level = Some(
                    LogLevel::parse(&value).ok_or(GlobalFlagsError::InvalidLogLevel { value })?,
                )
            }
            "tlscacert" => self.tls_ca_cert = Some(value.into()),
            "tlscert" => self.tls_cert = Some(value.into()),
            _ => self.tls_key = Some(value.into()),
        }
        Ok(used)
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
    fn shorthand_clusters_follow_pflag() {
        let (f, n) = parse(&["-DH", "unix:///a", "-Dl=info", "x"]).unwrap();
        assert!(f.debug);
        assert_eq!(f.hosts, ["unix:///a"]);
        assert_eq!(f.log_level, Some(LogLevel::Info));
        assert_eq!(n, 3);
        assert_eq!(
            parse(&["-Dx"]),
            Err(GlobalFlagsError::UnknownShorthand {
                flag: "-Dx".into(),
                shorthand: 'x'
            })
        );
        assert!(matches!(
            parse(&["-D="]),
            Err(GlobalFlagsError::UnknownShorthand { shorthand: '=', .. })
        ));
        let (f, _) = parse(&["-H="]).unwrap();
        assert_eq!(f.hosts, ["="]);
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
