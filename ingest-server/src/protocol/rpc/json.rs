//! AWS JSON 1.1 bodies. Requests are read in one pass, the model's shape steering a serde
//! `DeserializeSeed` straight into `Doc` (no `serde_json::Value` in between): strings
//! without escapes are borrowed from the body, base64 is decoded directly into each
//! blob's buffer, and unknown members are skipped unparsed. Responses are written by hand
//! into one buffer.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::coerce::{self, Found, Num};
use super::doc::Doc;
use super::model::{Operation, ShapeId, ShapeKind, Shapes};

/// Why a body could not be read: `None` when the JSON itself is broken (AWS answers a bare
/// `SerializationException`), else the type error's message.
pub(super) type DecodeError = Option<String>;

/// Reads a request body typed by `op`'s input shape.
pub(super) fn decode(op: &Operation, body: &[u8]) -> Result<Doc, DecodeError> {
    let ctx = Ctx {
        shapes: &op.shared,
        error: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = Seed {
        ctx: &ctx,
        shape: op.input,
        top: true,
    };
    let doc = seed
        .deserialize(&mut de)
        .and_then(|doc| de.end().map(|()| doc));
    match (doc, ctx.error.into_inner()) {
        (Err(_), _) => Err(None),
        (Ok(_), Some(error)) => Err(error),
        (Ok(doc), None) => Ok(doc),
    }
}

struct Ctx<'m> {
    shapes: &'m Shapes,
    /// The first type error; `Some(None)` when the top level is not an object.
    error: RefCell<Option<DecodeError>>,
}

impl Ctx<'_> {
    fn fail(&self, message: DecodeError) -> Doc {
        let mut error = self.error.borrow_mut();
        if error.is_none() {
            *error = Some(message);
        }
        Doc::Null
    }

    fn failed(&self) -> bool {
        self.error.borrow().is_some()
    }
}

/// Reads one value of `shape` (`None`: an input-less operation, read as an empty
/// structure).
#[derive(Clone, Copy)]
struct Seed<'c, 'm> {
    ctx: &'c Ctx<'m>,
    shape: Option<ShapeId>,
    top: bool,
}

static EMPTY_STRUCTURE: ShapeKind = ShapeKind::Structure {
    members: Vec::new(),
};

impl<'m> Seed<'_, 'm> {
    fn kind(&self) -> &'m ShapeKind {
        match self.shape {
            Some(id) => &self.ctx.shapes.get(id).kind,
            None => &EMPTY_STRUCTURE,
        }
    }

    fn child(&self, shape: ShapeId) -> Self {
        Seed {
            ctx: self.ctx,
            shape: Some(shape),
            top: false,
        }
    }

    fn result(&self, result: Result<Doc, String>) -> Doc {
        result.unwrap_or_else(|message| self.fail_with(message))
    }

    fn fail_with(&self, message: String) -> Doc {
        // A body that is not an object gets AWS's bare SerializationException.
        self.ctx.fail(if self.top { None } else { Some(message) })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Doc;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Doc, D::Error> {
        if self.ctx.failed() {
            // Only the syntax of the rest matters now.
            deserializer.deserialize_ignored_any(IgnoredAny)?;
            return Ok(Doc::Null);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value of the model's shape")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Doc, E> {
        Ok(self.result(coerce::boolean(self.kind(), v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Doc, E> {
        Ok(self.result(coerce::number(self.kind(), Num::Int(v))))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Doc, E> {
        let n = i64::try_from(v).map_or(Num::Big(v), Num::Int);
        Ok(self.result(coerce::number(self.kind(), n)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Doc, E> {
        Ok(self.result(coerce::number(self.kind(), Num::Float(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Doc, E> {
        Ok(self.result(coerce::string(self.kind(), Cow::Borrowed(v))))
    }

    fn visit_string<E>(self, v: String) -> Result<Doc, E> {
        Ok(self.result(coerce::string(self.kind(), Cow::Owned(v))))
    }

    fn visit_unit<E>(self) -> Result<Doc, E> {
        if self.top {
            return Ok(self.fail_with(String::new()));
        }
        Ok(Doc::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        let ShapeKind::List { member } = *self.kind() else {
            let doc = self.fail_with(coerce::mismatch(self.kind(), Found::List));
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(doc);
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self.child(member))? {
            items.push(item);
        }
        Ok(Doc::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        match self.kind() {
            ShapeKind::Structure { members } => {
                let mut out: Vec<(String, Doc)> = Vec::with_capacity(members.len());
                while let Some(key) = map.next_key_seed(Key)? {
                    let Some(member) = members.iter().find(|m| m.name == *key) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let value = map.next_value_seed(self.child(member.shape))?;
                    put(&mut out, &member.name, value);
                }
                Ok(Doc::Map(out))
            }
            ShapeKind::Map { value, .. } => {
                let mut out: Vec<(String, Doc)> = Vec::new();
                while let Some(key) = map.next_key_seed(Key)? {
                    let item = map.next_value_seed(self.child(*value))?;
                    put(&mut out, &key, item);
                }
                Ok(Doc::Map(out))
            }
            kind => {
                let doc = self.fail_with(coerce::mismatch(kind, Found::Map));
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(doc)
            }
        }
    }
}

/// Sets a member as JSON.parse would: a repeated key replaces the earlier value; `null`
/// members are dropped.
fn put(out: &mut Vec<(String, Doc)>, key: &str, value: Doc) {
    if let Some(slot) = out.iter().position(|(k, _)| k == key) {
        if value.is_null() {
            out.remove(slot);
        } else {
            out[slot].1 = value;
        }
    } else if !value.is_null() {
        out.push((key.to_owned(), value));
    }
}

/// A map key, borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Writes `doc` as JSON: blobs as base64 strings, timestamps as epoch seconds with a
/// millisecond fraction, `Null` members left out.
pub(super) fn encode(doc: &Doc, out: &mut Vec<u8>) {
    match doc {
        Doc::Null => out.extend_from_slice(b"null"),
        Doc::Bool(true) => out.extend_from_slice(b"true"),
        Doc::Bool(false) => out.extend_from_slice(b"false"),
        Doc::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Doc::Float(f) if f.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        // JSON has no NaN or infinities; AWS's Java serializer writes them as strings.
        Doc::Float(f) if f.is_nan() => out.extend_from_slice(b"\"NaN\""),
        Doc::Float(f) if *f > 0.0 => out.extend_from_slice(b"\"Infinity\""),
        Doc::Float(_) => out.extend_from_slice(b"\"-Infinity\""),
        Doc::Str(s) => string(s, out),
        Doc::Blob(b) => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
            let written = STANDARD.encode_slice(b, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
        Doc::Timestamp(ms) => timestamp(*ms, out),
        Doc::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode(item, out);
            }
            out.push(b']');
        }
        Doc::Map(members) => {
            out.push(b'{');
            let mut first = true;
            for (key, value) in members {
                if value.is_null() {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                string(key, out);
                out.push(b':');
                encode(value, out);
            }
            out.push(b'}');
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Epoch milliseconds as seconds: `1700000000.123`, `1700000000.5`, `1700000000`.
fn timestamp(ms: i64, out: &mut Vec<u8>) {
    let negative = ms < 0;
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if negative {
        out.push(b'-');
    }
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let digits = format!("{frac:03}");
        out.push(b'.');
        out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
}
