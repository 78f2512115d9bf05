//! A small CBOR (RFC 8949) reader for COSE envelopes: definite lengths only, bounded in nesting
//! depth and item count, borrowing byte and text strings from the input. It reads what notation
//! writes (go-cose's deterministic encoding) and refuses the rest with a reason, rather than
//! being a general CBOR library: indefinite lengths, floats, duplicate map keys and trailing
//! bytes are refused, so one envelope has one meaning.

/// Deepest nesting accepted: a COSE_Sign1 is tag → array → map → array → bstr (5).
pub const MAX_DEPTH: usize = 8;
/// Most items in one array or map: real envelopes have under 20.
pub const MAX_ITEMS: u64 = 256;

/// A decoded CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Major type 0.
    Uint(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    /// Major type 2.
    Bytes(&'a [u8]),
    /// Major type 3 (valid UTF-8).
    Text(&'a str),
    /// Major type 4.
    Array(Vec<Value<'a>>),
    /// Major type 5, in encoded order (keys are unique).
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// Major type 6.
    Tag(u64, Box<Value<'a>>),
    /// `false`, `true`, `null`, `undefined`.
    Simple(u8),
}

impl Value<'_> {
    /// The integer value of a major type 0 or 1 item, when it fits an `i64`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Uint(n) => i64::try_from(*n).ok(),
            Value::Negative(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// What kind of item this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Uint(_) | Value::Negative(_) => "an integer",
            Value::Bytes(_) => "a byte string",
            Value::Text(_) => "a text string",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
            Value::Tag(..) => "a tagged item",
            Value::Simple(_) => "a simple value",
        }
    }
}

/// Why bytes are not CBOR this reader accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (at byte {offset})")]
pub struct CborError {
    /// Where.
    pub offset: usize,
    /// What.
    pub reason: String,
}

/// Decodes exactly one data item that fills all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value<'_>, CborError> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.item(0)?;
    if r.pos != bytes.len() {
        return Err(r.error(format!(
            "{} bytes follow the data item",
            bytes.len() - r.pos
        )));
    }
    Ok(v)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: impl Into<String>) -> CborError {
        CborError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| self.error(format!("truncated: {n} more bytes announced")))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The argument of an initial byte whose additional information is `ai`.
    fn argument(&mut self, ai: u8) -> Result<u64, CborError> {
        let n = match ai {
            0..=23 => return Ok(u64::from(ai)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Err(self.error("indefinite-length items are not accepted")),
            _ => return Err(self.error(format!("reserved additional information {ai}"))),
        };
        let b = self.take(n)?;
        Ok(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }

    fn length(&mut self, ai: u8) -> Result<usize, CborError> {
        let n = self.argument(ai)?;
        // Never more than what is left: a hostile length cannot make us allocate.
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len() - self.pos)
            .ok_or_else(|| self.error(format!("a length of {n} exceeds the input")))
    }

    fn count(&mut self, ai: u8) -> Result<u64, CborError> {
        let n = self.argument(ai)?;
        if n > MAX_ITEMS {
            return Err(self.error(format!(
                "{n} items in one container, over the limit of {MAX_ITEMS}"
            )));
        }
        Ok(n)
    }

    fn item(&mut self, depth: usize) -> Result<Value<'a>, CborError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let initial = self.take(1)?[0];
        let (major, ai) = (initial >> 5, initial & 0x1f);
        Ok(match major {
            0 => Value::Uint(self.argument(ai)?),
            1 => Value::Negative(self.argument(ai)?),
            2 => {
                let n = self.length(ai)?;
                Value::Bytes(self.take(n)?)
            }
            3 => {
                let n = self.length(ai)?;
                let at = self.pos;
                let b = self.take(n)?;
                Value::Text(std::str::from_utf8(b).map_err(|_| CborError {
                    offset: at,
                    reason: "a text string is not UTF-8".into(),
                })?)
            }
            4 => {
                let n = self.count(ai)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.count(ai)?;
                let mut entries: Vec<(Value<'a>, Value<'a>)> = Vec::new();
                for _ in 0..n {
                    let at = self.pos;
                    let k = self.item(depth + 1)?;
                    if entries.iter().any(|(seen, _)| *seen == k) {
                        return Err(CborError {
                            offset: at,
                            reason: "a map key appears twice".into(),
                        });
                    }
                    let v = self.item(depth + 1)?;
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
            6 => {
                let tag = self.argument(ai)?;
                Value::Tag(tag, Box::new(self.item(depth + 1)?))
            }
            _ => match ai {
                20..=23 => Value::Simple(ai),
                _ => {
                    return Err(self.error(
                        "floating-point and other simple values are not accepted".to_string(),
                    ));
                }
            },
        })
    }
}

/// Appends the head of a definite-length item: major type and argument, shortest form.
pub fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a byte string.
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a text string.
pub fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8949_examples_decode() {
        assert_eq!(decode(&[0x00]).unwrap(), Value::Uint(0));
        assert_eq!(decode(&[0x18, 0x64]).unwrap(), Value::Uint(100));
        assert_eq!(decode(&[0x38, 0x63]).unwrap().as_int(), Some(-100));
        assert_eq!(decode(&[0x20]).unwrap().as_int(), Some(-1));
        assert_eq!(decode(&[0x43, 1, 2, 3]).unwrap(), Value::Bytes(&[1, 2, 3]));
        assert_eq!(decode(b"\x62\xc3\xbc").unwrap(), Value::Text("ü"));
        assert_eq!(
            decode(&[0x82, 0x01, 0x82, 0x02, 0x03]).unwrap(),
            Value::Array(vec![
                Value::Uint(1),
                Value::Array(vec![Value::Uint(2), Value::Uint(3)])
            ])
        );
        assert_eq!(
            decode(&[0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0]).unwrap(),
            Value::Tag(1, Box::new(Value::Uint(1_363_896_240)))
        );
        assert_eq!(decode(&[0xf6]).unwrap(), Value::Simple(22));
    }

    #[test]
    fn what_would_make_one_envelope_mean_two_things_is_refused() {
        for (bytes, why) in [
            (&[0x5f, 0x41, 0x00, 0xff][..], "indefinite"),
            (&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0][..], "floating-point"),
            (&[0xa2, 0x01, 0x02, 0x01, 0x03][..], "twice"),
            (&[0x01, 0x02][..], "follow"),
            (&[0x43, 0x01][..], "exceeds the input"),
            (&[0x62, 0xff, 0xfe][..], "UTF-8"),
            (&[0x1c][..], "reserved"),
            (&[][..], "truncated"),
        ] {
            let err = decode(bytes).unwrap_err();
            assert!(err.reason.contains(why), "{bytes:02x?}: {err}");
        }
    }

    #[test]
    fn hostile_sizes_and_depths_are_refused_without_allocating() {
        // A byte string claiming 2^64-1 bytes, an array claiming 2^32 items.
        let huge = [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode(&huge).unwrap_err().reason.contains("exceeds"));
        let many = [0x9a, 0xff, 0xff, 0xff, 0xff];
        assert!(decode(&many).unwrap_err().reason.contains("limit"));
        let deep = vec![0x81; MAX_DEPTH + 2];
        assert!(decode(&deep).unwrap_err().reason.contains("deeper"));
        let ok_deep: Vec<u8> = std::iter::repeat_n(0x81, MAX_DEPTH).chain([0x00]).collect();
        decode(&ok_deep).unwrap();
    }

    #[test]
    fn written_heads_are_the_shortest_form_and_read_back() {
        for n in [0u64, 23, 24, 255, 256, 65_535, 65_536, 1 << 32] {
            let mut out = Vec::new();
            write_head(&mut out, 0, n);
            assert_eq!(decode(&out).unwrap(), Value::Uint(n));
            let expected = match n {
                0..=23 => 1,
                24..=255 => 2,
                256..=65_535 => 3,
                65_536..=0xffff_ffff => 5,
                _ => 9,
            };
            assert_eq!(out.len(), expected, "{n}");
        }
    }
}
