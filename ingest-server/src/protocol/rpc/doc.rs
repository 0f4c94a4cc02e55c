//! `Doc`: the encoding-neutral value the service reads requests as and writes responses
//! with. Decoding types it by the model (a blob is `Blob`, a timestamp `Timestamp`), so
//! JSON and CBOR requests give the same `Doc`, and encoding needs no model.

use bytes::Bytes;

/// A request or response value.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// Absent. Encoders leave out structure members and map entries that are `Null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer or long.
    Int(i64),
    /// A float or double.
    Float(f64),
    /// A string.
    Str(String),
    /// A blob.
    Blob(Bytes),
    /// Epoch milliseconds.
    Timestamp(i64),
    /// A list.
    List(Vec<Doc>),
    /// Structures and maps, members in order.
    Map(Vec<(String, Doc)>),
}

impl Doc {
    /// An empty `Map`.
    pub fn map() -> Doc {
        Doc::Map(Vec::new())
    }

    /// Builder: appends `key` (a `Null` value is kept, and left out when encoded).
    /// On a value that is not a `Map`, starts a new one.
    pub fn with(mut self, key: &str, value: impl Into<Doc>) -> Doc {
        match &mut self {
            Doc::Map(members) => members.push((key.to_owned(), value.into())),
            _ => self = Doc::Map(vec![(key.to_owned(), value.into())]),
        }
        self
    }

    /// Sets `key`, replacing its value if present, else appending it. On a value that is
    /// not a `Map`, replaces it with a new one.
    pub fn insert(&mut self, key: &str, value: impl Into<Doc>) {
        let value = value.into();
        match self {
            Doc::Map(members) => match members.iter_mut().find(|(k, _)| k == key) {
                Some((_, slot)) => *slot = value,
                None => members.push((key.to_owned(), value)),
            },
            _ => *self = Doc::Map(vec![(key.to_owned(), value)]),
        }
    }

    /// The member `key`: `None` if absent or `Null`, or if this is not a `Map`.
    pub fn get(&self, key: &str) -> Option<&Doc> {
        match self {
            Doc::Map(members) => members
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Doc::Null)),
            _ => None,
        }
    }

    /// The string member `key`.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Doc::as_str)
    }

    /// The integer member `key`.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Doc::as_int)
    }

    /// The boolean member `key`.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Doc::as_bool)
    }

    /// The blob member `key`.
    pub fn blob(&self, key: &str) -> Option<&Bytes> {
        self.get(key).and_then(Doc::as_blob)
    }

    /// The timestamp member `key`, in epoch milliseconds.
    pub fn timestamp(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Doc::as_timestamp)
    }

    /// The list member `key`; empty if absent or not a list.
    pub fn list(&self, key: &str) -> &[Doc] {
        self.get(key).map(Doc::as_list).unwrap_or(&[])
    }

    /// The members of the map or structure member `key`; empty if absent or not a map.
    pub fn entries(&self, key: &str) -> &[(String, Doc)] {
        self.get(key).map(Doc::as_entries).unwrap_or(&[])
    }

    /// This value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Doc::Str(s) => Some(s),
            _ => None,
        }
    }

    /// This value as an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Doc::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// This value as a float (integers convert).
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Doc::Float(f) => Some(*f),
            Doc::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// This value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Doc::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// This value as a blob.
    pub fn as_blob(&self) -> Option<&Bytes> {
        match self {
            Doc::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// This value as epoch milliseconds.
    pub fn as_timestamp(&self) -> Option<i64> {
        match self {
            Doc::Timestamp(ms) => Some(*ms),
            _ => None,
        }
    }

    /// This value's elements; empty if not a list.
    pub fn as_list(&self) -> &[Doc] {
        match self {
            Doc::List(items) => items,
            _ => &[],
        }
    }

    /// This value's members; empty if not a map.
    pub fn as_entries(&self) -> &[(String, Doc)] {
        match self {
            Doc::Map(members) => members,
            _ => &[],
        }
    }

    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }
}

impl From<&str> for Doc {
    fn from(value: &str) -> Self {
        Doc::Str(value.to_owned())
    }
}

impl From<String> for Doc {
    fn from(value: String) -> Self {
        Doc::Str(value)
    }
}

impl From<&String> for Doc {
    fn from(value: &String) -> Self {
        Doc::Str(value.clone())
    }
}

impl From<i64> for Doc {
    fn from(value: i64) -> Self {
        Doc::Int(value)
    }
}

impl From<i32> for Doc {
    fn from(value: i32) -> Self {
        Doc::Int(value.into())
    }
}

impl From<u32> for Doc {
    fn from(value: u32) -> Self {
        Doc::Int(value.into())
    }
}

impl From<u64> for Doc {
    /// Saturates at `i64::MAX`.
    fn from(value: u64) -> Self {
        Doc::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Doc {
    /// Saturates at `i64::MAX`.
    fn from(value: usize) -> Self {
        Doc::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Doc {
    fn from(value: f64) -> Self {
        Doc::Float(value)
    }
}

impl From<bool> for Doc {
    fn from(value: bool) -> Self {
        Doc::Bool(value)
    }
}

impl From<Bytes> for Doc {
    fn from(value: Bytes) -> Self {
        Doc::Blob(value)
    }
}

impl From<Vec<Doc>> for Doc {
    fn from(value: Vec<Doc>) -> Self {
        Doc::List(value)
    }
}

impl<T: Into<Doc>> From<Option<T>> for Doc {
    fn from(value: Option<T>) -> Self {
        value.map_or(Doc::Null, Into::into)
    }
}

impl FromIterator<Doc> for Doc {
    /// Collects into a `List`.
    fn from_iter<I: IntoIterator<Item = Doc>>(iter: I) -> Self {
        Doc::List(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_accessors() {
        let mut doc = Doc::map()
            .with("StreamName", "s")
            .with("ShardCount", 2i32)
            .with("Enforce", true)
            .with("Data", Bytes::from_static(b"x"))
            .with("Missing", None::<String>)
            .with("At", Doc::Timestamp(1_500))
            .with("Tags", Doc::map().with("k", "v"))
            .with("Ids", vec![Doc::from("a"), Doc::from("b")]);
        assert_eq!(doc.str("StreamName"), Some("s"));
        assert_eq!(doc.int("ShardCount"), Some(2));
        assert_eq!(doc.bool("Enforce"), Some(true));
        assert_eq!(doc.blob("Data").map(|b| &b[..]), Some(&b"x"[..]));
        assert_eq!(doc.get("Missing"), None);
        assert_eq!(doc.timestamp("At"), Some(1_500));
        assert_eq!(doc.entries("Tags")[0].0, "k");
        assert_eq!(doc.list("Ids").len(), 2);
        assert_eq!(doc.list("Nope"), &[] as &[Doc]);
        assert_eq!(doc.str("ShardCount"), None);

        doc.insert("ShardCount", 3u32);
        doc.insert("New", 4usize);
        assert_eq!(doc.int("ShardCount"), Some(3));
        assert_eq!(doc.int("New"), Some(4));
        assert_eq!(doc.as_entries().len(), 9);
        assert_eq!(Doc::from(u64::MAX), Doc::Int(i64::MAX));
        let collected: Doc = ["a", "b"].into_iter().map(Doc::from).collect();
        assert_eq!(collected.as_list().len(), 2);
        assert_eq!(Doc::Str("x".into()).get("x"), None);
    }
}
