//! The engine's JSON message stream (`/images/{name}/push`), split and decoded as the engine
//! writes it. bollard's push type has no `id` field, so the layer ids docker shows are lost
//! there; this reads them. Pure: bytes in, messages out.

use serde::Deserialize;

/// A line longer than this is refused: the engine's messages are a few hundred bytes, and an
/// endless line would otherwise grow without bound.
pub const MAX_LINE: usize = 1 << 20;

/// One message of the stream.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// The layer (a short id), when the message is about one.
    #[serde(default)]
    pub id: Option<String>,
    /// The text, e.g. `Pushing` or `v1: digest: sha256:… size: 523`.
    #[serde(default)]
    pub status: Option<String>,
    /// Bytes done so far, for a layer in flight.
    #[serde(default, rename = "progressDetail")]
    pub progress_detail: Option<ProgressDetail>,
    /// The failure, when the operation failed mid-stream.
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    /// The failure in the older spelling.
    #[serde(default)]
    pub error: Option<String>,
    /// The pushed tag's digest and size (the classic image store sends it).
    #[serde(default)]
    pub aux: Option<Aux>,
}

/// `progressDetail`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default)]
    pub current: Option<i64>,
    /// Bytes in all (the engine may report less than `current` for small layers).
    #[serde(default)]
    pub total: Option<i64>,
}

/// `errorDetail`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    /// The engine's message.
    #[serde(default)]
    pub message: Option<String>,
}

/// `aux` of a finished push.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct Aux {
    /// The tag pushed.
    #[serde(default, rename = "Tag")]
    pub tag: Option<String>,
    /// Its manifest digest.
    #[serde(default, rename = "Digest")]
    pub digest: Option<String>,
    /// Its manifest size.
    #[serde(default, rename = "Size")]
    pub size: Option<u64>,
}

impl Message {
    /// The error the message carries, if any.
    pub fn failure(&self) -> Option<String> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| self.error.clone())
    }

    /// Bytes done and in all, for a layer in flight.
    pub fn bytes(&self) -> (Option<i64>, Option<i64>) {
        self.progress_detail
            .as_ref()
            .map_or((None, None), |d| (d.current, d.total))
    }
}

/// Errors decoding the stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A line is not a JSON message.
    #[error("the engine sent a progress line that is not a JSON message ({0})")]
    Malformed(serde_json::Error),
    /// A line exceeds [`MAX_LINE`].
    #[error("the engine sent a progress line longer than {MAX_LINE} bytes")]
    TooLong,
}

/// Splits the stream into messages, whatever the chunking: the engine ends each message with a
/// newline, and a chunk may end mid-message.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    /// Feeds `chunk`; returns the messages it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Message>, StreamError> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.take(&rest[..end])?;
            if let Some(m) = decode(&self.pending)? {
                out.push(m);
            }
            self.pending.clear();
            rest = &rest[end + 1..];
        }
        self.take(rest)?;
        Ok(out)
    }

    /// The last message, when the stream ends without a newline.
    pub fn finish(self) -> Result<Option<Message>, StreamError> {
        decode(&self.pending)
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        if self.pending.len() + bytes.len() > MAX_LINE {
            return Err(StreamError::TooLong);
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }
}

fn decode(line: &[u8]) -> Result<Option<Message>, StreamError> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(line)
        .map(Some)
        .map_err(StreamError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real push of a one-layer scratch image to a new repository, as dockerd 20.10 (classic
    /// image store) streamed it over its socket.
    const FIRST_PUSH: &str = include_str!("testdata/push-first.jsonl");
    /// The push of an image that is not there.
    const MISSING: &str = include_str!("testdata/push-missing-image.jsonl");

    fn all(text: &str, chunk: usize) -> Vec<Message> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in text.as_bytes().chunks(chunk) {
            out.extend(d.feed(c).unwrap());
        }
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn a_real_push_stream_keeps_layer_ids_statuses_and_byte_counts() {
        let messages = all(FIRST_PUSH, 4096);
        assert_eq!(messages.len(), 7);
        let layer: Vec<_> = messages
            .iter()
            .filter(|m| m.id.as_deref() == Some("4f3a1232d0d5"))
            .map(|m| (m.status.clone().unwrap(), m.bytes()))
            .collect();
        assert_eq!(
            layer,
            [
                ("Preparing".to_string(), (None, None)),
                ("Pushing".to_string(), (Some(512), Some(10))),
                ("Pushing".to_string(), (Some(10240), Some(10))),
                ("Pushed".to_string(), (None, None)),
            ]
        );
        let aux = messages.last().unwrap().aux.clone().unwrap();
        assert_eq!(aux.tag.as_deref(), Some("v1"));
        assert_eq!(
            aux.digest.as_deref(),
            Some("sha256:5eccbfeebaa11ed7472b3675fced90b68c1d60aafd13b8e4450fc819cf95062e")
        );
        assert_eq!(aux.size, Some(523));
        assert!(messages.iter().all(|m| m.failure().is_none()));
    }

    #[test]
    fn messages_split_across_chunks_decode_the_same() {
        assert_eq!(all(FIRST_PUSH, 1), all(FIRST_PUSH, 4096));
        assert_eq!(all(FIRST_PUSH, 7), all(FIRST_PUSH, 4096));
    }

    #[test]
    fn an_error_in_the_stream_is_found() {
        let messages = all(MISSING, 64);
        let failure = messages.iter().find_map(Message::failure).unwrap();
        assert!(failure.contains("does not exist locally"), "{failure}");
    }

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let mut d = Decoder::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut refused = false;
        for _ in 0..(MAX_LINE / chunk.len() + 2) {
            if matches!(d.feed(&chunk), Err(StreamError::TooLong)) {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[test]
    fn a_line_that_is_not_json_is_an_error() {
        let mut d = Decoder::default();
        assert!(matches!(
            d.feed(b"<html>\n"),
            Err(StreamError::Malformed(_))
        ));
    }
}
