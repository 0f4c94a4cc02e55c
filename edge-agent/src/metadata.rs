//! Fragment metadata as Kinesis Video Streams defines it: persistent tags go on every fragment
//! until removed, nonpersistent tags on the next fragment only. The limits are the service's
//! (PutMedia answers 4009 beyond 10 tags), checked here so the user hears about it when setting
//! a tag, not as a rejected fragment later.

use mkv_fragment::SimpleTag;

/// Most tags one fragment may carry.
pub(crate) const MAX_TAGS_PER_FRAGMENT: usize = 10;
/// Longest tag name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 128;
/// Longest tag value, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 256;

/// Why a tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MetadataError {
    #[error("tag name must be 1 to {MAX_NAME_BYTES} bytes long (got {0} bytes)")]
    NameLength(usize),
    #[error("tag value must be at most {MAX_VALUE_BYTES} bytes long (got {0} bytes)")]
    ValueLength(usize),
    #[error("tag names starting with `AWS` are reserved for the service: `{0}`")]
    Reserved(String),
    #[error(
        "a fragment carries at most {MAX_TAGS_PER_FRAGMENT} tags: {persistent} persistent and {pending} pending nonpersistent tags are already set"
    )]
    TooMany { persistent: usize, pending: usize },
    #[error("no persistent tag named `{0}`")]
    NotFound(String),
}

/// The tags set by the user, waiting to be stamped on fragments.
#[derive(Debug, Default)]
pub(crate) struct MetadataSet {
    persistent: Vec<SimpleTag>,
    pending: Vec<SimpleTag>,
}

impl MetadataSet {
    /// Sets a tag. A persistent tag with an empty value removes the persistent tag of that name,
    /// as the producer SDK's `putKinesisVideoFragmentMetadata` does.
    pub(crate) fn put(
        &mut self,
        name: &str,
        value: &str,
        persistent: bool,
    ) -> Result<(), MetadataError> {
        validate(name, value)?;
        if persistent && value.is_empty() {
            return self.remove(name);
        }
        let replaces = |tags: &[SimpleTag]| tags.iter().any(|t| t.name == name);
        let grows = if persistent {
            !replaces(&self.persistent)
        } else {
            !replaces(&self.pending)
        };
        if grows && self.persistent.len() + self.pending.len() >= MAX_TAGS_PER_FRAGMENT {
            return Err(MetadataError::TooMany {
                persistent: self.persistent.len(),
                pending: self.pending.len(),
            });
        }
        let list = if persistent {
            &mut self.persistent
        } else {
            &mut self.pending
        };
        match list.iter_mut().find(|t| t.name == name) {
            Some(tag) => tag.value = value.to_owned(),
            None => list.push(SimpleTag::new(name, value)),
        }
        Ok(())
    }

    /// Removes a persistent tag.
    pub(crate) fn remove(&mut self, name: &str) -> Result<(), MetadataError> {
        let before = self.persistent.len();
        self.persistent.retain(|t| t.name != name);
        if self.persistent.len() == before {
            return Err(MetadataError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// The tags for the fragment that starts now: every persistent tag, and the pending
    /// nonpersistent ones, which are consumed.
    pub(crate) fn take_for_fragment(&mut self) -> Vec<SimpleTag> {
        let mut tags = self.persistent.clone();
        tags.append(&mut self.pending);
        tags
    }

    /// Currently set tags, for status: (persistent, pending).
    pub(crate) fn snapshot(&self) -> (Vec<SimpleTag>, Vec<SimpleTag>) {
        (self.persistent.clone(), self.pending.clone())
    }
}

fn validate(name: &str, value: &str) -> Result<(), MetadataError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(MetadataError::NameLength(name.len()));
    }
    if name.starts_with("AWS") {
        return Err(MetadataError::Reserved(name.to_owned()));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(MetadataError::ValueLength(value.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tags: &[SimpleTag]) -> Vec<(&str, &str)> {
        tags.iter()
            .map(|t| (t.name.as_str(), t.value.as_str()))
            .collect()
    }

    #[test]
    fn persistent_stays_nonpersistent_goes_once() {
        let mut set = MetadataSet::default();
        set.put("site", "lab", true).unwrap();
        set.put("once", "yes", false).unwrap();
        assert_eq!(
            names(&set.take_for_fragment()),
            [("site", "lab"), ("once", "yes")]
        );
        assert_eq!(names(&set.take_for_fragment()), [("site", "lab")]);
        set.put("site", "", true).unwrap();
        assert!(set.take_for_fragment().is_empty());
    }

    #[test]
    fn limits_are_enforced() {
        let mut set = MetadataSet::default();
        assert!(matches!(
            set.put("AWS_X", "v", true),
            Err(MetadataError::Reserved(_))
        ));
        assert!(matches!(
            set.put("", "v", true),
            Err(MetadataError::NameLength(0))
        ));
        assert!(matches!(
            set.put(&"n".repeat(129), "v", true),
            Err(MetadataError::NameLength(129))
        ));
        assert!(set.put(&"n".repeat(128), &"v".repeat(256), true).is_ok());
        assert!(matches!(
            set.put("n", &"v".repeat(257), true),
            Err(MetadataError::ValueLength(257))
        ));
        for i in 1..10 {
            set.put(&format!("t{i}"), "v", i % 2 == 0).unwrap();
        }
        assert!(matches!(
            set.put("eleventh", "v", false),
            Err(MetadataError::TooMany { .. })
        ));
        // Replacing an existing tag does not grow the set.
        set.put("t2", "new", true).unwrap();
        assert_eq!(set.take_for_fragment().len(), 10);
        assert!(matches!(
            set.remove("missing"),
            Err(MetadataError::NotFound(_))
        ));
    }
}
