//! Matroska SimpleTags, the tag names AWS uses, and the timestamp format of GetMedia tags.
//!
//! Why: KVS carries all per-fragment metadata in level-1 Tags elements. Producers send their
//! own fragment metadata (at most 10 per fragment) and `AWS_KINESISVIDEO_END_OF_FRAGMENT`;
//! GetMedia adds fragment number, server/producer timestamps, millis-behind-now and the
//! continuation token, with timestamps as decimal seconds with exactly three decimals.

use crate::ebml::{Child, children, read_string};
use crate::error::ParseError;
use crate::ids;

/// One Matroska SimpleTag as a name/value pair.
///
/// Reading: `value` is the TagString (zero padding removed, invalid UTF-8 replaced with U+FFFD).
/// A SimpleTag that has a TagBinary instead carries it as lowercase hex in `value`; one with
/// neither has an empty value; one without TagName has an empty name. TagLanguage and TagDefault
/// are ignored. Writing: the value is always written as a TagString.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SimpleTag {
    /// TagName.
    pub name: String,
    /// TagString (or hex of TagBinary, see the type docs).
    pub value: String,
}

impl SimpleTag {
    /// Builds a tag from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        SimpleTag {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Tag names that AWS Kinesis Video Streams reads or writes.
pub mod aws_tags {
    /// GetMedia: the fragment number (a decimal string, 47 digits at AWS).
    pub const FRAGMENT_NUMBER: &str = "AWS_KINESISVIDEO_FRAGMENT_NUMBER";
    /// GetMedia: when the server received the fragment, decimal seconds (`1511852109.126`).
    pub const SERVER_TIMESTAMP: &str = "AWS_KINESISVIDEO_SERVER_TIMESTAMP";
    /// GetMedia: the producer timestamp of the fragment, decimal seconds.
    pub const PRODUCER_TIMESTAMP: &str = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP";
    /// GetMedia trailer: how far behind the newest fragment this one is, in milliseconds.
    pub const MILLIS_BEHIND_NOW: &str = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW";
    /// GetMedia trailer: token to resume after this fragment.
    pub const CONTINUATION_TOKEN: &str = "AWS_KINESISVIDEO_CONTINUATION_TOKEN";
    /// GetMedia error chunk: error name (for example `FRAGMENT_NOT_FOUND`).
    pub const ERROR_CODE: &str = "AWS_KINESISVIDEO_ERROR_CODE";
    /// GetMedia error chunk: numeric error id (for example 4000).
    pub const ERROR_ID: &str = "AWS_KINESISVIDEO_ERROR_ID";
    /// Producer: marks the end of the current fragment / of the stream; empty value.
    pub const END_OF_FRAGMENT: &str = "AWS_KINESISVIDEO_END_OF_FRAGMENT";
    /// Prefix of every AWS tag; producers may not use it for their own metadata.
    pub const PREFIX: &str = "AWS_KINESISVIDEO";

    /// The names GetMedia itself writes into a chunk. A user tag with one of these names would
    /// be read as chunk metadata by consumers, so GetMedia output never carries them as user tags.
    pub const GETMEDIA_RESERVED: [&str; 7] = [
        FRAGMENT_NUMBER,
        SERVER_TIMESTAMP,
        PRODUCER_TIMESTAMP,
        MILLIS_BEHIND_NOW,
        CONTINUATION_TOKEN,
        ERROR_CODE,
        ERROR_ID,
    ];
}

/// Formats milliseconds since the epoch as GetMedia does: decimal seconds with exactly three
/// decimals (`1511852109126` -> `"1511852109.126"`, `-1500` -> `"-1.500"`).
pub fn format_timestamp_ms(ms: i64) -> String {
    let abs = ms.unsigned_abs();
    let sign = if ms < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Parses decimal seconds (`"1511852109.126"`, `"5"`, `"5.1"`, `"-1.5"`) into milliseconds.
///
/// Fewer than three decimals are accepted; extra decimals round up to the next millisecond like
/// the AWS Java parser (`Math.ceil(seconds * 1000)`). Returns `None` for anything else (empty,
/// exponents, whitespace, overflow).
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // i128 holds every digit string that can still fit an i64 after the sign is applied
    // (i64::MIN has no positive counterpart); longer ones are rejected before they overflow.
    if int_part.len() > 30 {
        return None;
    }
    let mut ms: i128 = 0;
    for b in int_part.bytes() {
        ms = ms * 10 + i128::from(b - b'0');
    }
    ms *= 1000;
    let frac = frac_part.as_bytes();
    for i in 0..3 {
        ms += frac.get(i).map_or(0, |b| i128::from(b - b'0')) * 10i128.pow(2 - i as u32);
    }
    let rest_nonzero = frac.iter().skip(3).any(|&b| b != b'0');
    if negative {
        // ceil of a negative value truncates toward zero: the extra digits are dropped.
        ms = -ms;
    } else if rest_nonzero {
        ms += 1;
    }
    i64::try_from(ms).ok()
}

/// Deepest SimpleTag nesting accepted; deeper input is rejected instead of recursing further.
const MAX_SIMPLE_TAG_DEPTH: usize = 16;

/// Flattens every SimpleTag of a Tags element's data, in document order (a SimpleTag comes before
/// the SimpleTags nested in it). Targets and other Tag children are ignored.
pub(crate) fn parse_tags(data: &[u8], data_base: u64) -> Result<Vec<SimpleTag>, ParseError> {
    let mut out = Vec::new();
    for tag in children(data, data_base, ids::TAGS) {
        let tag = tag?;
        if tag.id != ids::TAG {
            continue;
        }
        for child in children(tag.data, tag.data_base(), ids::TAG) {
            let child = child?;
            if child.id == ids::SIMPLE_TAG {
                parse_simple_tag(&child, 0, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn parse_simple_tag(
    simple: &Child<'_>,
    depth: usize,
    out: &mut Vec<SimpleTag>,
) -> Result<(), ParseError> {
    if depth >= MAX_SIMPLE_TAG_DEPTH {
        return Err(ParseError::InvalidElement {
            offset: simple.offset,
            id: simple.id,
            reason: "SimpleTag nesting too deep",
        });
    }
    let mut tag = SimpleTag::default();
    let mut nested = Vec::new();
    for child in children(simple.data, simple.data_base(), ids::SIMPLE_TAG) {
        let child = child?;
        match child.id {
            ids::TAG_NAME => tag.name = read_string(child.data),
            ids::TAG_STRING => tag.value = read_string(child.data),
            ids::TAG_BINARY => tag.value = to_hex(child.data),
            ids::SIMPLE_TAG => nested.push(child),
            _ => {}
        }
    }
    out.push(tag);
    for child in &nested {
        parse_simple_tag(child, depth + 1, out)?;
    }
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0F)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_getmedia() {
        assert_eq!(format_timestamp_ms(1_511_852_109_126), "1511852109.126");
        assert_eq!(format_timestamp_ms(0), "0.000");
        assert_eq!(format_timestamp_ms(5000), "5.000");
        assert_eq!(format_timestamp_ms(7), "0.007");
        assert_eq!(format_timestamp_ms(-1500), "-1.500");
        assert_eq!(format_timestamp_ms(-5), "-0.005");
        assert_eq!(format_timestamp_ms(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn parses_what_it_formats_and_more() {
        for ms in [
            0,
            1,
            999,
            1000,
            1_511_852_109_126,
            -1500,
            -5,
            i64::MAX,
            i64::MIN + 1,
        ] {
            assert_eq!(
                parse_timestamp_ms(&format_timestamp_ms(ms)),
                Some(ms),
                "{ms}"
            );
        }
        assert_eq!(parse_timestamp_ms("5"), Some(5000));
        assert_eq!(parse_timestamp_ms("5."), Some(5000));
        assert_eq!(parse_timestamp_ms(".5"), Some(500));
        assert_eq!(parse_timestamp_ms("5.1"), Some(5100));
        assert_eq!(parse_timestamp_ms("5.12"), Some(5120));
        assert_eq!(
            parse_timestamp_ms("1511852108.513"),
            Some(1_511_852_108_513)
        );
        assert_eq!(parse_timestamp_ms("1.0001"), Some(1001));
        assert_eq!(parse_timestamp_ms("1.0000"), Some(1000));
        assert_eq!(parse_timestamp_ms("-1.0009"), Some(-1000));
        for bad in [
            "",
            "-",
            ".",
            "1e9",
            " 1",
            "1 ",
            "+1",
            "1.2.3",
            "abc",
            "99999999999999999999",
        ] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_of_binary_tags() {
        assert_eq!(to_hex(&[0x00, 0xAB, 0x7F]), "00ab7f");
    }
}
