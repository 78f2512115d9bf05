//! Canonical JSON exactly as `github.com/docker/go/canonical/json` `MarshalCanonical` writes it,
//! which is what Notary signs and verifies, plus the HTML escaping Go's `json.Marshal` applies
//! when it embeds those bytes in a metadata file.
//!
//! Rules (notes/notary-v1.md §2.2): object members sorted bytewise by key, no whitespace; in
//! strings only `"` and `\` are escaped and every other byte is written raw; numbers are
//! integers (Go decodes to float64 and refuses non-integral values).
//! olpc-cjson differs from this (it normalises Unicode and sorts escaped keys), so this module
//! is hand-written.

use serde_json::Value;

/// A value that has no canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot encode canonical JSON: {0}")]
pub struct CanonicalError(String);

impl CanonicalError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        CanonicalError(reason.into())
    }
}

/// Encodes `value` canonically.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !f.is_finite() || f.fract() != 0.0 {
                    return Err(CanonicalError(format!("non-integral number {n}")));
                }
                // Go prints int64(f); `-0` becomes `0`.
                out.extend_from_slice((f as i64).to_string().as_bytes());
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Go's `compact(…, escapeHTML=true)` applied to canonical bytes, which is how `json.Marshal`
/// embeds a `json.RawMessage`: `<`, `>`, `&`, U+2028 and U+2029 become `\u003c` etc. Inside a
/// canonical string a raw control byte can also appear; Go's compact copies it unchanged.
pub fn html_escape(canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 16);
    let mut i = 0;
    while i < canonical.len() {
        let b = canonical[i];
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            // U+2028 / U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
            0xE2 if canonical.get(i + 1) == Some(&0x80)
                && matches!(canonical.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                let last = if canonical[i + 2] == 0xA8 { b'8' } else { b'9' };
                out.extend_from_slice(b"\\u202");
                out.push(last);
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(v: Value) -> String {
        String::from_utf8(to_canonical(&v).unwrap()).unwrap()
    }

    #[test]
    fn keys_sort_bytewise_on_raw_keys() {
        assert_eq!(c(json!({"b":1,"a":"<>&"})), r#"{"a":"<>&","b":1}"#);
        // `"` (0x22) sorts before `#` (0x23) on raw bytes; escaped forms would sort differently.
        assert_eq!(c(json!({"a#":1,"a\"":2})), r#"{"a\"":2,"a#":1}"#);
    }

    #[test]
    fn strings_escape_only_quote_and_backslash() {
        assert_eq!(c(json!("a\nb\u{1}\u{2028}é")), "\"a\nb\u{1}\u{2028}é\"");
        assert_eq!(c(json!("q\"b\\")), r#""q\"b\\""#);
    }

    #[test]
    fn unicode_is_not_normalised() {
        let v = json!({"é":1,"e\u{301}":2,"z":"e\u{301}"});
        let s = c(v);
        assert!(s.contains("e\u{301}\":2") && s.contains("\"é\":1"), "{s}");
    }

    #[test]
    fn integral_floats_print_as_integers_and_fractions_fail() {
        let v: Value = serde_json::from_str(r#"{"n":1.0,"m":1e3,"z":-0.0}"#).unwrap();
        assert_eq!(c(v), r#"{"m":1000,"n":1,"z":0}"#);
        let v: Value = serde_json::from_str(r#"{"n":1.5}"#).unwrap();
        assert!(to_canonical(&v).is_err());
    }

    #[test]
    fn html_escape_matches_go_compact() {
        let canon = to_canonical(&json!({"a":"<tag>&\u{2028}\u{2029}x"})).unwrap();
        assert_eq!(
            String::from_utf8(html_escape(&canon)).unwrap(),
            r#"{"a":"\u003ctag\u003e\u0026\u2028\u2029x"}"#
        );
    }
}
