//! Turning one wire value into the `Doc` its shape asks for, shared by the JSON and CBOR
//! readers, with AWS's `SerializationException` texts when the wire type does not fit.
//! The texts are the ones kinesalite (`validations/index.js`, `test/helpers.js`) recorded
//! from AWS; AWS's own grammar slips ("an Boolean", "dectected") are kept on purpose.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use super::doc::Doc;
use super::model::ShapeKind;

/// The wire type of a value that did not fit its shape.
#[derive(Debug, Clone, Copy)]
pub(super) enum Found<'a> {
    Bool,
    Number,
    /// A string; its text is quoted in the Boolean message.
    Str(&'a str),
    List,
    Map,
    /// A CBOR byte string.
    Bytes,
}

/// A number as read from the wire.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i64),
    /// Positive integers beyond `i64`.
    Big(u64),
    Float(f64),
}

/// The Java type name AWS uses in "can not be converted to an X" messages.
fn java_type(kind: &ShapeKind) -> &'static str {
    match kind {
        ShapeKind::Integer => "Integer",
        ShapeKind::Long => "Long",
        ShapeKind::Float => "Float",
        ShapeKind::Double => "Double",
        ShapeKind::Boolean => "Boolean",
        _ => "String",
    }
}

/// The message for a value of type `found` where `kind` was expected.
pub(super) fn mismatch(kind: &ShapeKind, found: Found<'_>) -> String {
    match found {
        Found::List => return "Start of list found where not expected".to_owned(),
        Found::Map => return "Start of structure or map found where not expected.".to_owned(),
        _ => {}
    }
    let target = match kind {
        ShapeKind::List { .. } => return "Expected list or null".to_owned(),
        ShapeKind::Map { .. } => return "Expected map or null".to_owned(),
        ShapeKind::Structure { .. } => return "Expected null".to_owned(),
        ShapeKind::Blob => "a Blob".to_owned(),
        ShapeKind::Timestamp => "milliseconds since epoch".to_owned(),
        other => format!("an {}", java_type(other)),
    };
    match found {
        Found::Bool => format!("class java.lang.Boolean can not be converted to {target}"),
        Found::Number => format!(
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to {target}"
        ),
        Found::Str(s) if matches!(kind, ShapeKind::Boolean) => {
            format!("'{}' can not be converted to {target}", s.to_uppercase())
        }
        Found::Str(_) => format!("class java.lang.String can not be converted to {target}"),
        // CBOR byte strings have no JSON counterpart and AWS's text for them is not
        // recorded anywhere public: this one follows the pattern of the others.
        Found::Bytes | Found::List | Found::Map => {
            format!("class java.nio.HeapByteBuffer can not be converted to {target}")
        }
    }
}

/// A boolean where `kind` was expected.
pub(super) fn boolean(kind: &ShapeKind, value: bool) -> Result<Doc, String> {
    match kind {
        ShapeKind::Boolean => Ok(Doc::Bool(value)),
        _ => Err(mismatch(kind, Found::Bool)),
    }
}

/// A number where `kind` was expected. JSON timestamps are epoch seconds; integers beyond
/// the shape's range saturate, fractions are floored (AWS's TruncatingBigNumber).
pub(super) fn number(kind: &ShapeKind, value: Num) -> Result<Doc, String> {
    match kind {
        ShapeKind::Integer => Ok(Doc::Int(integer(value, i32::MIN.into(), i32::MAX.into()))),
        ShapeKind::Long => Ok(Doc::Int(integer(value, i64::MIN, i64::MAX))),
        ShapeKind::Float | ShapeKind::Double => Ok(Doc::Float(match value {
            Num::Int(i) => i as f64,
            Num::Big(u) => u as f64,
            Num::Float(f) => f,
        })),
        ShapeKind::Timestamp => Ok(Doc::Timestamp(seconds_to_millis(value))),
        _ => Err(mismatch(kind, Found::Number)),
    }
}

fn integer(value: Num, min: i64, max: i64) -> i64 {
    match value {
        Num::Int(i) => i.clamp(min, max),
        Num::Big(_) => max,
        // `as` saturates (and maps NaN to 0).
        Num::Float(f) => (f.floor() as i64).clamp(min, max),
    }
}

/// Epoch seconds (possibly fractional) to milliseconds, rounding to the nearest: boto3
/// sends `1700000000.123`, whose double times 1000 is a hair off an integer.
pub(super) fn seconds_to_millis(value: Num) -> i64 {
    match value {
        Num::Int(i) => i.saturating_mul(1000),
        Num::Big(_) => i64::MAX,
        Num::Float(f) => (f * 1000.0).round() as i64,
    }
}

/// A number read as epoch milliseconds (CBOR tag 1 with an integer, as the Java SDK sends).
pub(super) fn millis(value: Num) -> i64 {
    match value {
        Num::Int(i) => i,
        Num::Big(_) => i64::MAX,
        Num::Float(f) => f.round() as i64,
    }
}

/// A string where `kind` was expected: strings, base64 blobs, and the few strings AWS
/// accepts as booleans.
pub(super) fn string(kind: &ShapeKind, value: Cow<'_, str>) -> Result<Doc, String> {
    match kind {
        ShapeKind::String => Ok(Doc::Str(value.into_owned())),
        ShapeKind::Blob => base64_blob(&value).map(Doc::Blob),
        ShapeKind::Boolean => match value.to_ascii_lowercase().as_str() {
            // kinesalite notes that AWS converts these rather than failing.
            "true" | "yes" | "1" => Ok(Doc::Bool(true)),
            "false" | "no" | "0" => Ok(Doc::Bool(false)),
            _ => Err(mismatch(kind, Found::Str(&value))),
        },
        _ => Err(mismatch(kind, Found::Str(&value))),
    }
}

/// Decodes standard padded base64 straight into the blob's buffer; on failure, AWS's
/// message (the checks in kinesalite's order: length, alphabet, canonical last character).
pub(super) fn base64_blob(text: &str) -> Result<Bytes, String> {
    if let Ok(bytes) = STANDARD.decode(text) {
        return Ok(Bytes::from(bytes));
    }
    let length = utf16_len(text);
    let reason = if !length.is_multiple_of(4) {
        format!("Base64 encoded length is expected a multiple of 4 bytes but found: {length}")
    } else if let Some(bad) = first_bad_base64_char(text) {
        format!("Invalid Base64 character: '{bad}'")
    } else {
        "Invalid last non-pad Base64 character dectected".to_owned()
    };
    Err(format!("'{text}' can not be converted to a Blob: {reason}"))
}

/// The first character outside the base64 alphabet, or a `=` followed by something other
/// than `=`.
fn first_bad_base64_char(text: &str) -> Option<char> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '+' | '/' => {}
            '=' => match chars.peek() {
                None | Some('=') => {}
                Some(_) => return Some('='),
            },
            other => return Some(other),
        }
    }
    None
}

/// Length in UTF-16 code units, as Java's `String.length()` (and so AWS) counts.
pub(super) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_messages() {
        assert_eq!(&base64_blob("aGk=").unwrap()[..], b"hi");
        assert_eq!(base64_blob("").unwrap().len(), 0);
        assert_eq!(
            base64_blob("23456").unwrap_err(),
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a \
             multiple of 4 bytes but found: 5"
        );
        assert_eq!(
            base64_blob("=+/=").unwrap_err(),
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"
        );
        assert_eq!(
            base64_blob("+/+=").unwrap_err(),
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character \
             dectected"
        );
        assert_eq!(
            base64_blob("ab!d").unwrap_err(),
            "'ab!d' can not be converted to a Blob: Invalid Base64 character: '!'"
        );
    }

    #[test]
    fn numbers_saturate_and_floor() {
        let int = |n| number(&ShapeKind::Integer, n).unwrap();
        assert_eq!(int(Num::Int(100_000_000_000)), Doc::Int(2_147_483_647));
        assert_eq!(int(Num::Big(u64::MAX)), Doc::Int(2_147_483_647));
        assert_eq!(int(Num::Float(3.9)), Doc::Int(3));
        assert_eq!(int(Num::Float(-0.5)), Doc::Int(-1));
        assert_eq!(
            number(&ShapeKind::Timestamp, Num::Float(1_700_000_000.123)).unwrap(),
            Doc::Timestamp(1_700_000_000_123)
        );
        assert_eq!(utf16_len("a😀é"), 4);
    }
}
