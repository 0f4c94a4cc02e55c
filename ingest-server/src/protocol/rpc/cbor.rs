//! AWS CBOR 1.1 bodies, as the Java SDK (v1 and v2, so the KCL) writes and reads them:
//! one map with the JSON member names, blobs as byte strings, timestamps as tag 1 around
//! an integer of epoch milliseconds. Read with ciborium's low-level pull decoder, steered
//! by the model's shapes like the JSON reader, and written with its encoder.

use std::borrow::Cow;

use bytes::Bytes;
use ciborium_io::Read as _;
use ciborium_ll::{Decoder, Encoder, Header, simple};

use super::coerce::{self, Found, Num};
use super::doc::Doc;
use super::json::DecodeError;
use super::model::{Operation, ShapeId, ShapeKind, Shapes};

/// Nesting beyond this is refused (serde_json's limit for JSON is the same).
const MAX_DEPTH: usize = 128;

/// The body is not well-formed CBOR (or nests too deep).
struct Syntax;

impl<T> From<ciborium_ll::Error<T>> for Syntax {
    fn from(_: ciborium_ll::Error<T>) -> Self {
        Syntax
    }
}

/// Reads a request body typed by `op`'s input shape.
pub(super) fn decode(op: &Operation, body: &[u8]) -> Result<Doc, DecodeError> {
    let mut reader = Reader {
        dec: Decoder::from(body),
        len: body.len(),
        shapes: &op.shared,
        error: None,
        scratch: Vec::new(),
    };
    let doc = reader.top(op.input);
    let complete = reader.dec.offset() == reader.len;
    match (doc, complete, reader.error) {
        (Err(Syntax), _, _) | (Ok(_), false, _) => Err(None),
        (Ok(_), true, Some(error)) => Err(error),
        (Ok(doc), true, None) => Ok(doc),
    }
}

struct Reader<'b, 'm> {
    dec: Decoder<&'b [u8]>,
    len: usize,
    shapes: &'m Shapes,
    /// The first type error (`Some(None)`: the body is not a map).
    error: Option<DecodeError>,
    /// Buffer for member names.
    scratch: Vec<u8>,
}

static EMPTY_STRUCTURE: ShapeKind = ShapeKind::Structure {
    members: Vec::new(),
};

impl<'m> Reader<'_, 'm> {
    fn kind(&self, shape: Option<ShapeId>) -> &'m ShapeKind {
        match shape {
            Some(id) => &self.shapes.get(id).kind,
            None => &EMPTY_STRUCTURE,
        }
    }

    fn fail(&mut self, message: DecodeError) -> Doc {
        if self.error.is_none() {
            self.error = Some(message);
        }
        Doc::Null
    }

    fn remaining(&mut self) -> usize {
        self.len.saturating_sub(self.dec.offset())
    }

    fn pull(&mut self) -> Result<Header, Syntax> {
        Ok(self.dec.pull()?)
    }

    fn top(&mut self, shape: Option<ShapeId>) -> Result<Doc, Syntax> {
        let mut header = self.pull()?;
        // Tags around the body (e.g. the self-describe tag 55799) are transparent.
        let mut depth = 0;
        while let Header::Tag(_) = header {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(Syntax);
            }
            header = self.pull()?;
        }
        if let Header::Map(_) = header {
            self.typed(self.kind(shape), header, 0)
        } else {
            self.dec.push(header);
            self.skip(0)?;
            Ok(self.fail(None))
        }
    }

    fn value(&mut self, shape: ShapeId, depth: usize) -> Result<Doc, Syntax> {
        if depth > MAX_DEPTH {
            return Err(Syntax);
        }
        if self.error.is_some() {
            // Only the syntax of the rest matters now.
            self.skip(depth)?;
            return Ok(Doc::Null);
        }
        let header = self.pull()?;
        self.typed(&self.shapes.get(shape).kind, header, depth)
    }

    fn result(&mut self, result: Result<Doc, String>) -> Doc {
        result.unwrap_or_else(|message| self.fail(Some(message)))
    }

    fn typed(&mut self, kind: &'m ShapeKind, header: Header, depth: usize) -> Result<Doc, Syntax> {
        if depth > MAX_DEPTH {
            return Err(Syntax);
        }
        Ok(match header {
            Header::Tag(tag) => {
                let next = self.pull()?;
                match (kind, tag, next) {
                    // The Java SDK's timestamps: tag 1 around epoch milliseconds.
                    (ShapeKind::Timestamp, 1, Header::Positive(n)) => {
                        Doc::Timestamp(coerce::millis(positive(n)))
                    }
                    (ShapeKind::Timestamp, 1, Header::Negative(n)) => {
                        Doc::Timestamp(coerce::millis(negative(n)))
                    }
                    // RFC 8949's form, epoch seconds as a float.
                    (ShapeKind::Timestamp, 1, Header::Float(f)) => {
                        Doc::Timestamp(coerce::seconds_to_millis(Num::Float(f)))
                    }
                    // Other tags are transparent.
                    _ => return self.typed(kind, next, depth + 1),
                }
            }
            // Untagged numbers are epoch seconds for timestamps, as in JSON.
            Header::Positive(n) => self.result(coerce::number(kind, positive(n))),
            Header::Negative(n) => self.result(coerce::number(kind, negative(n))),
            Header::Float(f) => self.result(coerce::number(kind, Num::Float(f))),
            Header::Simple(simple::FALSE) => self.result(coerce::boolean(kind, false)),
            Header::Simple(simple::TRUE) => self.result(coerce::boolean(kind, true)),
            Header::Simple(simple::NULL | simple::UNDEFINED) => Doc::Null,
            Header::Simple(_) | Header::Break => return Err(Syntax),
            Header::Bytes(len) => {
                let mut bytes = Vec::new();
                self.read_into(&mut bytes, len, false)?;
                match kind {
                    ShapeKind::Blob => Doc::Blob(Bytes::from(bytes)),
                    _ => self.fail(Some(coerce::mismatch(kind, Found::Bytes))),
                }
            }
            Header::Text(len) => {
                let mut bytes = Vec::new();
                self.read_into(&mut bytes, len, true)?;
                let text = String::from_utf8(bytes).map_err(|_| Syntax)?;
                self.result(coerce::string(kind, Cow::Owned(text)))
            }
            Header::Array(len) => {
                let ShapeKind::List { member } = *kind else {
                    let doc = self.fail(Some(coerce::mismatch(kind, Found::List)));
                    self.skip_items(len, 1, depth)?;
                    return Ok(doc);
                };
                let capacity = len.unwrap_or(0).min(self.remaining());
                let mut items = Vec::with_capacity(capacity);
                while self.next_item(len, items.len())? {
                    items.push(self.value(member, depth + 1)?);
                }
                Doc::List(items)
            }
            Header::Map(len) => match kind {
                ShapeKind::Structure { members } => {
                    let mut out: Vec<(String, Doc)> = Vec::with_capacity(members.len());
                    let mut seen = 0;
                    while self.next_item(len, seen)? {
                        seen += 1;
                        self.key()?;
                        let found = std::str::from_utf8(&self.scratch)
                            .ok()
                            .and_then(|key| members.iter().find(|m| m.name == key));
                        match found {
                            Some(member) => {
                                let value = self.value(member.shape, depth + 1)?;
                                put(&mut out, &member.name, value);
                            }
                            None => self.skip(depth + 1)?,
                        }
                    }
                    Doc::Map(out)
                }
                ShapeKind::Map { value, .. } => {
                    let mut out: Vec<(String, Doc)> = Vec::new();
                    let mut seen = 0;
                    while self.next_item(len, seen)? {
                        seen += 1;
                        self.key()?;
                        let key = String::from_utf8(std::mem::take(&mut self.scratch))
                            .map_err(|_| Syntax)?;
                        let item = self.value(*value, depth + 1)?;
                        put(&mut out, &key, item);
                    }
                    Doc::Map(out)
                }
                _ => {
                    let doc = self.fail(Some(coerce::mismatch(kind, Found::Map)));
                    self.skip_items(len, 2, depth)?;
                    doc
                }
            },
        })
    }

    /// Whether another element follows in an array or map of `len` items (`None`:
    /// indefinite, ended by a break) of which `seen` were read.
    fn next_item(&mut self, len: Option<usize>, seen: usize) -> Result<bool, Syntax> {
        match len {
            Some(len) => Ok(seen < len),
            None => match self.pull()? {
                Header::Break => Ok(false),
                header => {
                    self.dec.push(header);
                    Ok(true)
                }
            },
        }
    }

    /// Reads a map key, which must be text, into `scratch`.
    fn key(&mut self) -> Result<(), Syntax> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = match self.pull()? {
            Header::Text(len) => self.read_into(&mut scratch, len, true),
            _ => Err(Syntax),
        };
        self.scratch = scratch;
        result
    }

    /// Appends the content of a byte or text string whose header announced `len`.
    fn read_into(
        &mut self,
        out: &mut Vec<u8>,
        len: Option<usize>,
        text: bool,
    ) -> Result<(), Syntax> {
        match len {
            Some(len) => {
                if len > self.remaining() {
                    return Err(Syntax);
                }
                let start = out.len();
                out.resize(start + len, 0);
                self.dec.read_exact(&mut out[start..]).map_err(|_| Syntax)
            }
            // Indefinite length: definite-length chunks of the same type until a break.
            None => loop {
                match self.pull()? {
                    Header::Break => return Ok(()),
                    Header::Bytes(Some(len)) if !text => self.read_into(out, Some(len), text)?,
                    Header::Text(Some(len)) if text => self.read_into(out, Some(len), text)?,
                    _ => return Err(Syntax),
                }
            },
        }
    }

    /// Skips `len` items (`per` values each: 1 for arrays, 2 for maps).
    fn skip_items(&mut self, len: Option<usize>, per: usize, depth: usize) -> Result<(), Syntax> {
        let mut seen = 0;
        while self.next_item(len, seen)? {
            seen += 1;
            for _ in 0..per {
                self.skip(depth + 1)?;
            }
        }
        Ok(())
    }

    /// Skips one whole value, checking only its syntax.
    fn skip(&mut self, depth: usize) -> Result<(), Syntax> {
        if depth > MAX_DEPTH {
            return Err(Syntax);
        }
        match self.pull()? {
            Header::Positive(_) | Header::Negative(_) | Header::Float(_) => Ok(()),
            Header::Simple(_) => Ok(()),
            Header::Break => Err(Syntax),
            Header::Tag(_) => self.skip(depth + 1),
            Header::Bytes(len) => self.discard(len, false),
            Header::Text(len) => self.discard(len, true),
            Header::Array(len) => self.skip_items(len, 1, depth),
            Header::Map(len) => self.skip_items(len, 2, depth),
        }
    }

    fn discard(&mut self, len: Option<usize>, text: bool) -> Result<(), Syntax> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = self.read_into(&mut scratch, len, text);
        self.scratch = scratch;
        result
    }
}

fn positive(n: u64) -> Num {
    i64::try_from(n).map_or(Num::Big(n), Num::Int)
}

fn negative(n: u64) -> Num {
    // The value is -1 - n.
    Num::Int(i64::try_from(n).map_or(i64::MIN, |n| -1 - n))
}

/// Sets a member; a repeated key replaces the earlier value, `null` drops it.
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

/// Writes `doc` as CBOR: blobs as byte strings, timestamps as tag 1 around integer epoch
/// milliseconds, `Null` members left out.
pub(super) fn encode(doc: &Doc, out: &mut Vec<u8>) {
    let mut encoder = Encoder::from(out);
    // Writing into a Vec cannot fail.
    let _ = write(&mut encoder, doc);
}

fn write(enc: &mut Encoder<&mut Vec<u8>>, doc: &Doc) -> std::io::Result<()> {
    match doc {
        Doc::Null => enc.push(Header::Simple(simple::NULL)),
        Doc::Bool(b) => enc.push(Header::Simple(if *b {
            simple::TRUE
        } else {
            simple::FALSE
        })),
        Doc::Int(i) => enc.push(integer(*i)),
        Doc::Float(f) => enc.push(Header::Float(*f)),
        Doc::Str(s) => enc.text(s, None),
        Doc::Blob(b) => enc.bytes(b, None),
        Doc::Timestamp(ms) => {
            enc.push(Header::Tag(1))?;
            enc.push(integer(*ms))
        }
        Doc::List(items) => {
            enc.push(Header::Array(Some(items.len())))?;
            items.iter().try_for_each(|item| write(enc, item))
        }
        Doc::Map(members) => {
            let present = members.iter().filter(|(_, v)| !v.is_null());
            enc.push(Header::Map(Some(present.clone().count())))?;
            for (key, value) in present {
                enc.text(key, None)?;
                write(enc, value)?;
            }
            Ok(())
        }
    }
}

fn integer(i: i64) -> Header {
    if i >= 0 {
        Header::Positive(i.unsigned_abs())
    } else {
        // CBOR stores -1 - n.
        Header::Negative((!i).unsigned_abs())
    }
}
