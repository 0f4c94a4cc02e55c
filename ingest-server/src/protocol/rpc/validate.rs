//! Model validation with AWS's `ValidationException` texts, as kinesalite
//! (`validations/index.js` and its tests, which were checked against AWS) records them:
//!
//! - `Value 'x' at 'streamName' failed to satisfy constraint: Member must ...`, joined
//!   with `; ` under `N validation error(s) detected: `;
//! - AWS stops at 10 errors (and then says "10 validation errors detected");
//! - paths use the member names with a lower-case first letter; list elements add their
//!   1-based index and `member` (`records.1.member.partitionKey`), map values their key
//!   and `member`;
//! - per member: not null, then (strings) enum and pattern, then length minimum and
//!   maximum, (numbers) value minimum and maximum; members by name (`shardCount` before
//!   `streamName`), lists before their elements. AWS's own order is not stable
//!   (kinesalite's tests accept any order); this one matches most of the orders kinesalite
//!   recorded;
//! - a list of scalars (`TagKeys`) or a map's keys and values fail as a whole, listing the
//!   element shape's constraints: `Member must satisfy constraint: [Member must have
//!   length less than or equal to 128, Member must have length greater than or equal to 1]`
//!   (`Map keys must ...`, `Map value must ...`);
//! - values are rendered as Java prints them: blobs as
//!   `java.nio.HeapByteBuffer[pos=0 lim=N cap=N]`, lists as `[a, b]`, maps as `{k=v}`,
//!   structures as `com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310`
//!   (AWS prints the object's hash code; ours is a hash of the content), `null` unquoted.
//!
//! Nothing is formatted unless a constraint fails.

use std::fmt::Write as _;

use super::coerce::utf16_len;
use super::doc::Doc;
use super::model::{Operation, Shape, ShapeId, ShapeKind, Shapes};

/// AWS reports at most this many errors.
const MAX_ERRORS: usize = 10;

/// The `ValidationException` message for `input`, if it breaks the model.
pub(super) fn check(op: &Operation, input: &Doc) -> Option<String> {
    let id = op.input?;
    let mut v = Validator {
        shapes: &op.shared,
        errors: Vec::new(),
        path: Vec::new(),
    };
    v.structure(id, input);
    if v.errors.is_empty() {
        return None;
    }
    let n = v.errors.len();
    let plural = if n == 1 { "error" } else { "errors" };
    Some(format!(
        "{n} validation {plural} detected: {}",
        v.errors.join("; ")
    ))
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

struct Validator<'a> {
    shapes: &'a Shapes,
    errors: Vec<String>,
    path: Vec<Segment<'a>>,
}

impl<'a> Validator<'a> {
    fn full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    fn structure(&mut self, id: ShapeId, doc: &'a Doc) {
        let shape = self.shapes.get(id);
        let ShapeKind::Structure { members } = &shape.kind else {
            return;
        };
        let shapes = self.shapes;
        for member in members {
            if self.full() {
                return;
            }
            self.path.push(Segment::Name(&member.path_name));
            match doc.get(&member.name) {
                None if member.required => {
                    self.fail(id, None, "Member must not be null");
                }
                None => {}
                Some(value) => self.value(shapes.get(member.shape), member.shape, value),
            }
            self.path.pop();
        }
    }

    /// Checks `value` of `shape` at the current path.
    fn value(&mut self, shape: &'a Shape, id: ShapeId, value: &'a Doc) {
        match (&shape.kind, value) {
            (ShapeKind::String, Doc::Str(s)) => {
                if !shape.enum_values.is_empty() && !shape.enum_values.iter().any(|e| e == s) {
                    self.fail(id, Some(value), &shape.enum_message);
                }
                if let Some(pattern) = &shape.pattern
                    && !pattern.is_match(s)
                {
                    let text = format!(
                        "Member must satisfy regular expression pattern: {}",
                        pattern.source
                    );
                    self.fail(id, Some(value), &text);
                }
                self.length(shape, id, value, utf16_len(s));
            }
            (ShapeKind::Blob, Doc::Blob(b)) => self.length(shape, id, value, b.len()),
            (ShapeKind::Integer | ShapeKind::Long, Doc::Int(i)) => {
                self.range(shape, id, value, *i as f64);
            }
            (ShapeKind::Float | ShapeKind::Double, Doc::Float(f)) => {
                self.range(shape, id, value, *f);
            }
            (ShapeKind::List { member }, Doc::List(items)) => {
                self.length(shape, id, value, items.len());
                self.elements(*member, id, value, items);
            }
            (ShapeKind::Map { key, value: item }, Doc::Map(entries)) => {
                self.length(shape, id, value, entries.len());
                let (key_shape, item_shape) = (self.shapes.get(*key), self.shapes.get(*item));
                if !key_shape.summary.is_empty()
                    && entries.iter().any(|(k, _)| !str_ok(key_shape, k))
                {
                    let text = format!("Map keys must satisfy constraint: {}", key_shape.summary);
                    self.fail(id, Some(value), &text);
                }
                if is_scalar(item_shape) {
                    if entries.iter().any(|(_, v)| !scalar_ok(item_shape, v)) {
                        let text =
                            format!("Map value must satisfy constraint: {}", item_shape.summary);
                        self.fail(id, Some(value), &text);
                    }
                } else {
                    for (k, v) in entries {
                        if self.full() {
                            return;
                        }
                        self.path.push(Segment::Name(k));
                        self.path.push(Segment::Name("member"));
                        self.nested(item_shape, *item, v);
                        self.path.pop();
                        self.path.pop();
                    }
                }
            }
            (ShapeKind::Structure { .. }, Doc::Map(_)) => self.structure(id, value),
            _ => {}
        }
    }

    /// Elements of a list: scalars fail as one error on the list, structures (and nested
    /// lists or maps) are checked one by one under `<index>.member`.
    fn elements(&mut self, member: ShapeId, list_id: ShapeId, list: &'a Doc, items: &'a [Doc]) {
        let member_shape = self.shapes.get(member);
        if is_scalar(member_shape) {
            if !member_shape.summary.is_empty()
                && items.iter().any(|item| !scalar_ok(member_shape, item))
            {
                let text = format!("Member must satisfy constraint: {}", member_shape.summary);
                self.fail(list_id, Some(list), &text);
            }
            return;
        }
        for (i, item) in items.iter().enumerate() {
            if self.full() {
                return;
            }
            self.path.push(Segment::Index(i));
            self.path.push(Segment::Name("member"));
            self.nested(member_shape, member, item);
            self.path.pop();
            self.path.pop();
        }
    }

    /// A structure, list or map nested in a list or map.
    fn nested(&mut self, shape: &'a Shape, id: ShapeId, value: &'a Doc) {
        if value.is_null() {
            self.fail(id, None, "Member must not be null");
        } else {
            self.value(shape, id, value);
        }
    }

    fn length(&mut self, shape: &Shape, id: ShapeId, value: &Doc, len: usize) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        if let Some(min) = shape.min
            && len < min
        {
            let text = format!("Member must have length greater than or equal to {min}");
            self.fail(id, Some(value), &text);
        }
        if let Some(max) = shape.max
            && len > max
        {
            let text = format!("Member must have length less than or equal to {max}");
            self.fail(id, Some(value), &text);
        }
    }

    fn range(&mut self, shape: &Shape, id: ShapeId, value: &Doc, n: f64) {
        if let Some(min) = shape.min
            && n < min as f64
        {
            let text = format!("Member must have value greater than or equal to {min}");
            self.fail(id, Some(value), &text);
        }
        if let Some(max) = shape.max
            && n > max as f64
        {
            let text = format!("Member must have value less than or equal to {max}");
            self.fail(id, Some(value), &text);
        }
    }

    fn fail(&mut self, id: ShapeId, value: Option<&Doc>, constraint: &str) {
        if self.full() {
            return;
        }
        let mut message = String::from("Value ");
        match value {
            None => message.push_str("null"),
            Some(value) => {
                message.push('\'');
                render(self.shapes, id, value, &mut message);
                message.push('\'');
            }
        }
        message.push_str(" at '");
        for (i, segment) in self.path.iter().enumerate() {
            if i > 0 {
                message.push('.');
            }
            match segment {
                Segment::Name(name) => message.push_str(name),
                Segment::Index(index) => {
                    let _ = write!(message, "{}", index + 1);
                }
            }
        }
        message.push_str("' failed to satisfy constraint: ");
        message.push_str(constraint);
        self.errors.push(message);
    }
}

fn is_scalar(shape: &Shape) -> bool {
    !matches!(
        shape.kind,
        ShapeKind::Structure { .. } | ShapeKind::List { .. } | ShapeKind::Map { .. }
    )
}

/// Whether a scalar list element, map key or map value meets its shape's constraints.
fn scalar_ok(shape: &Shape, value: &Doc) -> bool {
    let within =
        |n: i64| shape.min.is_none_or(|min| n >= min) && shape.max.is_none_or(|max| n <= max);
    match value {
        Doc::Str(s) => str_ok(shape, s),
        Doc::Blob(b) => within(i64::try_from(b.len()).unwrap_or(i64::MAX)),
        Doc::Int(i) => within(*i),
        _ => true,
    }
}

fn str_ok(shape: &Shape, s: &str) -> bool {
    let len = i64::try_from(utf16_len(s)).unwrap_or(i64::MAX);
    shape.min.is_none_or(|min| len >= min)
        && shape.max.is_none_or(|max| len <= max)
        && (shape.enum_values.is_empty() || shape.enum_values.iter().any(|e| e == s))
        && shape.pattern.as_ref().is_none_or(|p| p.is_match(s))
}

/// Renders a value as AWS (Java's `toString`) prints it in messages.
fn render(shapes: &Shapes, id: ShapeId, value: &Doc, out: &mut String) {
    let shape = shapes.get(id);
    match (&shape.kind, value) {
        (ShapeKind::Structure { .. }, _) => {
            let _ = write!(
                out,
                "{}.{}@{:x}",
                shapes.java_package,
                shape.name,
                content_hash(value)
            );
        }
        (ShapeKind::List { member }, Doc::List(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(shapes, *member, item, out);
            }
            out.push(']');
        }
        (ShapeKind::Map { value: item, .. }, Doc::Map(entries)) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                render(shapes, *item, v, out);
            }
            out.push('}');
        }
        (_, Doc::Null) => out.push_str("null"),
        (_, Doc::Bool(b)) => {
            let _ = write!(out, "{b}");
        }
        (_, Doc::Int(i) | Doc::Timestamp(i)) => {
            let _ = write!(out, "{i}");
        }
        (_, Doc::Float(f)) => {
            let _ = write!(out, "{f:?}");
        }
        (_, Doc::Str(s)) => out.push_str(s),
        (_, Doc::Blob(b)) => {
            let _ = write!(
                out,
                "java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]",
                b.len()
            );
        }
        (_, Doc::List(_) | Doc::Map(_)) => out.push_str("[]"),
    }
}

/// A 32-bit FNV-1a hash of a value's content, standing in for Java's identity-style
/// `hashCode` in structure renderings (equal contents, equal hashes, as there).
pub(super) fn content_hash(value: &Doc) -> u32 {
    fn feed(hash: &mut u32, bytes: &[u8]) {
        for b in bytes {
            *hash ^= u32::from(*b);
            *hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    fn walk(hash: &mut u32, value: &Doc) {
        match value {
            Doc::Null => feed(hash, b"n"),
            Doc::Bool(b) => feed(hash, &[u8::from(*b)]),
            Doc::Int(i) | Doc::Timestamp(i) => feed(hash, &i.to_le_bytes()),
            Doc::Float(f) => feed(hash, &f.to_le_bytes()),
            Doc::Str(s) => feed(hash, s.as_bytes()),
            Doc::Blob(b) => feed(hash, b),
            Doc::List(items) => items.iter().for_each(|item| walk(hash, item)),
            Doc::Map(entries) => entries.iter().for_each(|(k, v)| {
                feed(hash, k.as_bytes());
                walk(hash, v);
            }),
        }
    }
    let mut hash = 0x811c_9dc5;
    walk(&mut hash, value);
    hash
}
