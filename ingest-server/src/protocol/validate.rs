//! Input validation against the botocore model's constraints, producing AWS's message
//! form: `N validation errors detected: Value 'x' at 'streamName' failed to satisfy
//! constraint: Member must ...`, joined with `; `.

use std::sync::LazyLock;

use regex::Regex;

use super::error::AwsError;

/// Compiles a model pattern anchored at both ends, as AWS applies it.
fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("model patterns are valid regexes")
}

/// `StreamName`, `DeviceName`: `[a-zA-Z0-9_.-]+`.
pub static NAME: LazyLock<Regex> = LazyLock::new(|| anchored("[a-zA-Z0-9_.-]+"));
/// `ResourceARN`.
pub static ARN: LazyLock<Regex> = LazyLock::new(|| {
    anchored("arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+")
});
/// `MediaType`.
pub static MEDIA_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    anchored("[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+(,[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+)*")
});
/// `Version`.
pub static VERSION: LazyLock<Regex> = LazyLock::new(|| anchored("[a-zA-Z0-9]+"));
/// `TagKey` / `TagValue`.
pub static TAG: LazyLock<Regex> = LazyLock::new(|| anchored("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"));
/// `NextToken`.
pub static NEXT_TOKEN: LazyLock<Regex> = LazyLock::new(|| anchored("[a-zA-Z0-9+/=]*"));
/// `FragmentNumberString`.
pub static FRAGMENT_NUMBER: LazyLock<Regex> = LazyLock::new(|| anchored("^[0-9]+$"));
/// `KmsKeyId` and other free-text fields.
pub static ANY: LazyLock<Regex> = LazyLock::new(|| anchored(".+"));

/// A string member's constraints from the model: its wire name (as AWS spells it in
/// messages), length bounds and pattern.
#[derive(Debug, Clone, Copy)]
pub struct StringRule {
    /// Member name as it appears in AWS's messages (lower camel case).
    pub field: &'static str,
    /// Minimum length in characters.
    pub min: usize,
    /// Maximum length in characters.
    pub max: usize,
    /// The model's pattern.
    pub pattern: &'static LazyLock<Regex>,
}

const fn rule(
    field: &'static str,
    min: usize,
    max: usize,
    pattern: &'static LazyLock<Regex>,
) -> StringRule {
    StringRule {
        field,
        min,
        max,
        pattern,
    }
}

/// `StreamName`.
pub const STREAM_NAME: StringRule = rule("streamName", 1, 256, &NAME);
/// `StreamARN`.
pub const STREAM_ARN: StringRule = rule("streamARN", 1, 1024, &ARN);
/// `ResourceARN`.
pub const RESOURCE_ARN: StringRule = rule("resourceARN", 1, 1024, &ARN);
/// `DeviceName`.
pub const DEVICE_NAME: StringRule = rule("deviceName", 1, 128, &NAME);
/// `MediaType`.
pub const MEDIA_TYPE_RULE: StringRule = rule("mediaType", 1, 128, &MEDIA_TYPE);
/// `KmsKeyId`.
pub const KMS_KEY_ID: StringRule = rule("kmsKeyId", 1, 2048, &ANY);
/// `CurrentVersion`.
pub const CURRENT_VERSION: StringRule = rule("currentVersion", 1, 64, &VERSION);
/// `NextToken` (control plane: up to 1024 characters, possibly empty).
pub const NEXT_TOKEN_RULE: StringRule = rule("nextToken", 0, 1024, &NEXT_TOKEN);

/// Collects constraint violations for one request.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<String>,
}

impl Validation {
    /// A new, empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(&mut self, value: &str, field: &str, constraint: String) {
        self.errors.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A required member that is absent.
    pub fn required<T>(&mut self, field: &str, value: Option<&T>) {
        if value.is_none() {
            self.errors.push(format!(
                "Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ));
        }
    }

    /// A string member: length in characters within `min..=max`, matching `pattern`.
    pub fn string(
        &mut self,
        field: &str,
        value: Option<&str>,
        min: usize,
        max: usize,
        pattern: &Regex,
    ) {
        let Some(value) = value else { return };
        let len = value.chars().count();
        if len < min {
            self.fail(
                value,
                field,
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.fail(
                value,
                field,
                format!("Member must have length less than or equal to {max}"),
            );
        } else if !pattern.is_match(value) {
            let shown = pattern
                .as_str()
                .trim_start_matches("^(?:")
                .trim_end_matches(")$");
            self.fail(
                value,
                field,
                format!("Member must satisfy regular expression pattern: {shown}"),
            );
        }
    }

    /// A string member checked against its model rule.
    pub fn check(&mut self, rule: &StringRule, value: Option<&str>) {
        self.string(rule.field, value, rule.min, rule.max, rule.pattern);
    }

    /// An integer member within `min..=max`.
    pub fn int(&mut self, field: &str, value: Option<i64>, min: i64, max: i64) {
        let Some(value) = value else { return };
        if value < min {
            self.fail(
                &value.to_string(),
                field,
                format!("Member must have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.fail(
                &value.to_string(),
                field,
                format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// A list or map member with `min..=max` entries.
    pub fn count(&mut self, field: &str, len: Option<usize>, min: usize, max: usize) {
        let Some(len) = len else { return };
        if len < min {
            self.fail(
                &format!("{len} entries"),
                field,
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.fail(
                &format!("{len} entries"),
                field,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// An enum member.
    pub fn one_of(&mut self, field: &str, value: Option<&str>, allowed: &[&str]) {
        let Some(value) = value else { return };
        if !allowed.contains(&value) {
            self.fail(
                value,
                field,
                format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    /// `Ok` when nothing failed, else `InvalidArgumentException` listing every failure.
    pub fn finish(self) -> Result<(), AwsError> {
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(AwsError::invalid_argument(format!(
                "1 validation error detected: {}",
                self.errors[0]
            ))),
            n => Err(AwsError::invalid_argument(format!(
                "{n} validation errors detected: {}",
                self.errors.join("; ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_aws_form() {
        let mut v = Validation::new();
        v.string("streamName", Some("bad name"), 1, 256, &NAME);
        let err = v.finish().unwrap_err();
        assert_eq!(err.code, "InvalidArgumentException");
        assert_eq!(
            err.message,
            "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        let mut v = Validation::new();
        v.string("streamName", Some(""), 1, 256, &NAME);
        v.int("maxResults", Some(0), 1, 10000);
        let err = v.finish().unwrap_err();
        assert!(
            err.message.starts_with("2 validation errors detected: "),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("; Value '0' at 'maxResults'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn valid_input_passes() {
        let mut v = Validation::new();
        v.string("streamName", Some("cam-1.front_door"), 1, 256, &NAME);
        v.string(
            "arn",
            Some("arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam/1700000000000"),
            1,
            1024,
            &ARN,
        );
        v.string(
            "mediaType",
            Some("video/h264,audio/aac"),
            1,
            128,
            &MEDIA_TYPE,
        );
        v.string("tagKey", Some("owner name"), 1, 128, &TAG);
        assert!(v.finish().is_ok());
    }
}
