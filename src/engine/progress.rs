//! The engine's JSON progress stream, shown as docker shows it: one line per layer that updates
//! in place on a terminal, with its bytes; plain lines (each status once, no byte counts) when
//! output is a pipe or a file.

use std::collections::HashMap;
use std::io::Write;

/// Renders progress messages.
pub struct Progress {
    tty: bool,
    /// `--quiet`: nothing is shown.
    silent: bool,
    /// Render on stderr: stdout carries a JSON report (`--format json`).
    stderr: bool,
    /// Line index of each layer id on screen, in order of appearance.
    lines: HashMap<String, usize>,
    count: usize,
    last: HashMap<String, String>,
}

impl Progress {
    /// A renderer; `tty` chooses in-place bars or plain lines.
    pub fn new(tty: bool) -> Self {
        Progress {
            tty,
            silent: false,
            stderr: false,
            lines: HashMap::new(),
            count: 0,
            last: HashMap::new(),
        }
    }

    /// A renderer for stdout, in-place when stdout is a terminal.
    pub fn stdout() -> Self {
        use std::io::IsTerminal;
        Progress::new(std::io::stdout().is_terminal())
    }

    /// A renderer that shows nothing (`--quiet`).
    pub fn silent() -> Self {
        Progress {
            silent: true,
            ..Progress::new(false)
        }
    }

    /// A renderer for stderr, in-place when stderr is a terminal.
    pub fn stderr() -> Self {
        use std::io::IsTerminal;
        Progress {
            stderr: true,
            ..Progress::new(std::io::stderr().is_terminal())
        }
    }

    /// Shows one message: `id` is the layer (if any), `status` the text, and `current`/`total`
    /// the bytes done so far.
    pub fn update(
        &mut self,
        id: Option<&str>,
        status: &str,
        current: Option<i64>,
        total: Option<i64>,
    ) {
        if self.silent {
            return;
        }
        let mut out: Box<dyn Write> = if self.stderr {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        let in_flight = matches!((current, total), (Some(_), Some(t)) if t > 0);
        if in_flight && !self.tty {
            // As docker: bytes in flight are for terminals; a log gets each layer's steps.
            return;
        }
        let bar = match (current, total) {
            // The engine reports a total below the bytes sent for tiny layers: show the bytes.
            (Some(c), Some(t)) if c > t && self.tty => format!(" {}", human(c)),
            (Some(c), Some(t)) if t > 0 && self.tty => {
                let done = ((c.min(t) * 50) / t) as usize;
                format!(
                    " [{}>{}] {}/{}",
                    "=".repeat(done),
                    " ".repeat(50 - done),
                    human(c),
                    human(t)
                )
            }
            _ => String::new(),
        };
        let text = match id {
            Some(id) if !id.is_empty() => format!("{id}: {status}{bar}"),
            _ => format!("{status}{bar}"),
        };
        let key = id.unwrap_or("").to_string();
        if !self.tty {
            // Plain output: a status is printed once per layer, not once per progress tick.
            if self.last.get(&key).is_some_and(|s| s == status) {
                return;
            }
            self.last.insert(key, status.to_string());
            let _ = writeln!(out, "{text}");
            return;
        }
        match id
            .filter(|i| !i.is_empty())
            .and_then(|i| self.lines.get(i).copied())
        {
            Some(line) => {
                let up = self.count - line;
                // Move up to the layer's line, rewrite it, and come back down.
                let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r");
            }
            None => {
                if let Some(i) = id.filter(|i| !i.is_empty()) {
                    self.lines.insert(i.to_string(), self.count);
                }
                self.count += 1;
                let _ = writeln!(out, "{text}");
            }
        }
        let _ = out.flush();
    }
}

fn human(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2}GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1}MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1}kB", b / 1e3)
    } else {
        format!("{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_docker() {
        assert_eq!(human(512), "512B");
        assert_eq!(human(2048), "2.0kB");
        assert_eq!(human(15_300_000), "15.3MB");
    }
}
