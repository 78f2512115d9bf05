//! How long the plugin waits, in one place: the bounds a user (or CI) can set, each a whole
//! number of seconds in an environment variable. A stalled server or tool must end as an error
//! naming the step, never as a hang; the defaults suit a laptop, CI may want them shorter.

use std::time::Duration;

/// Connecting to a registry, notary server, token endpoint or ARM.
pub const CONNECT_ENV: &str = "TRUSTACR_CONNECT_TIMEOUT";
/// One HTTP request, from sending it to the end of the body.
pub const REQUEST_ENV: &str = "TRUSTACR_REQUEST_TIMEOUT";
/// The whole command; unset means no limit beyond the ones above.
pub const COMMAND_ENV: &str = "TRUSTACR_TIMEOUT";

/// Default for [`CONNECT_ENV`].
pub const DEFAULT_CONNECT: Duration = Duration::from_secs(15);
/// Default for [`REQUEST_ENV`].
pub const DEFAULT_REQUEST: Duration = Duration::from_secs(120);

/// A timeout variable that does not hold a whole number of seconds above 0.
#[derive(Debug, thiserror::Error)]
#[error(
    "{name}={value:?} is not a timeout: set it to a whole number of seconds above 0, or unset it"
)]
pub struct InvalidTimeout {
    /// The variable.
    pub name: &'static str,
    /// What it held.
    pub value: String,
}

/// The seconds in variable `name`, `None` when it is unset or empty.
pub fn seconds(name: &'static str) -> Result<Option<Duration>, InvalidTimeout> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            parse(&v).map(Some).ok_or(InvalidTimeout { name, value: v })
        }
        _ => Ok(None),
    }
}

fn parse(v: &str) -> Option<Duration> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

/// [`CONNECT_ENV`] or its default.
pub fn connect() -> Result<Duration, InvalidTimeout> {
    Ok(seconds(CONNECT_ENV)?.unwrap_or(DEFAULT_CONNECT))
}

/// [`REQUEST_ENV`] or its default.
pub fn request() -> Result<Duration, InvalidTimeout> {
    Ok(seconds(REQUEST_ENV)?.unwrap_or(DEFAULT_REQUEST))
}

/// [`COMMAND_ENV`], if set. The first call marks the start of the command, from which
/// [`remaining`] counts; the command's entry point makes it before anything else.
pub fn command() -> Result<Option<Duration>, InvalidTimeout> {
    started();
    seconds(COMMAND_ENV)
}

fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// What is left of the whole-command timeout, `None` without one (or when it does not parse;
/// the entry point has refused that already). A wait that would outlast it is not worth
/// starting: the command would be cancelled in the middle of it.
pub fn remaining() -> Option<Duration> {
    let limit = seconds(COMMAND_ENV).ok()??;
    Some(limit.saturating_sub(started().elapsed()))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn only_whole_seconds_above_zero_are_timeouts() {
        assert_eq!(parse(" 5 "), Some(std::time::Duration::from_secs(5)));
        for bad in ["0", "-1", "1.5", "5s", "", "99999999999999999999"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
