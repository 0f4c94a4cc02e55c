//! The botocore service model (`models/kinesis-2013-12-02.json`), parsed once: operations
//! with their input and output shapes, and every shape's type and constraints. Patterns
//! are compiled here, once, and the texts of validation messages that do not depend on the
//! value are built here too, so that validating a request formats nothing unless it fails.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::{Map, Value};

static KINESIS: LazyLock<ServiceModel> = LazyLock::new(|| {
    ServiceModel::parse(include_str!("../../../models/kinesis-2013-12-02.json"))
        .expect("the embedded Kinesis model parses")
});

/// The Kinesis Data Streams model (API 2013-12-02), parsed on first use.
pub fn kinesis() -> &'static ServiceModel {
    &KINESIS
}

/// Enum value sets that AWS prints in another order than the model's, as captured from
/// real responses (kinesalite `test/getShardIterator.js`). Applied only while the model's
/// values are the same set, so a model update falls back to the model's order.
const AWS_ENUM_ORDER: &[(&str, &[&str])] = &[(
    "ShardIteratorType",
    &[
        "AFTER_SEQUENCE_NUMBER",
        "LATEST",
        "AT_TIMESTAMP",
        "AT_SEQUENCE_NUMBER",
        "TRIM_HORIZON",
    ],
)];

/// A whole service model.
#[derive(Debug)]
pub struct ServiceModel {
    /// `X-Amz-Target` prefix, e.g. `Kinesis_20131202`.
    pub target_prefix: String,
    /// API version, e.g. `2013-12-02`.
    pub api_version: String,
    /// Endpoint prefix, e.g. `kinesis`.
    pub endpoint_prefix: String,
    /// Operations in model order.
    pub operations: Vec<Operation>,
    operation_index: HashMap<String, usize>,
    shared: Arc<Shapes>,
}

/// The shapes of a model, shared by its operations.
#[derive(Debug)]
pub(super) struct Shapes {
    pub(super) shapes: Vec<Shape>,
    by_name: HashMap<String, ShapeId>,
    /// Java package AWS names structures with in validation messages, e.g.
    /// `com.amazonaws.kinesis.v20131202`.
    pub(super) java_package: String,
}

/// One operation of the model.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Operation name, e.g. `PutRecords`.
    pub name: String,
    /// Input structure.
    pub input: Option<ShapeId>,
    /// Output structure.
    pub output: Option<ShapeId>,
    /// The output member that is an event stream and its union shape
    /// (SubscribeToShard: `EventStream`, `SubscribeToShardEventStream`).
    pub output_event_stream: Option<(String, ShapeId)>,
    pub(super) shared: Arc<Shapes>,
}

/// Index of a shape in its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeId(pub(super) u32);

/// One shape with its constraints.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Shape name in the model, e.g. `StreamName`.
    pub name: String,
    /// Type and type-specific parts.
    pub kind: ShapeKind,
    /// Minimum: length for strings (UTF-16 units, as AWS counts), blobs (bytes), lists
    /// and maps (entries); value for integers and longs.
    pub min: Option<i64>,
    /// Maximum, as `min`.
    pub max: Option<i64>,
    /// Pattern a string must match as a whole.
    pub pattern: Option<Pattern>,
    /// Allowed values of an enum string (empty: any), in model order.
    pub enum_values: Vec<String>,
    /// A structure that is an event stream union (`eventstream: true`).
    pub event_stream: bool,
    /// A structure that is one event of a stream (`event: true`).
    pub event: bool,
    /// A structure that is an error (`exception: true`).
    pub exception: bool,
    /// `Member must satisfy enum value set: [..]`, in the order AWS prints.
    pub(super) enum_message: String,
    /// This shape's constraints as AWS lists them for list members, map keys and map
    /// values: `[Member must have length less than or equal to 128, ...]`; empty if none.
    pub(super) summary: String,
}

/// The type of a shape.
#[derive(Debug, Clone)]
pub enum ShapeKind {
    /// A structure (also event-stream unions and events).
    Structure {
        /// Members sorted by name: the order validation reports them in (AWS's own order
        /// is not stable; the orders kinesalite recorded from it are mostly this one).
        members: Vec<Member>,
    },
    /// A list.
    List {
        /// Element shape.
        member: ShapeId,
    },
    /// A map.
    Map {
        /// Key shape (a string).
        key: ShapeId,
        /// Value shape.
        value: ShapeId,
    },
    /// A string (possibly an enum).
    String,
    /// A 32-bit integer.
    Integer,
    /// A 64-bit integer.
    Long,
    /// A 32-bit float.
    Float,
    /// A 64-bit float.
    Double,
    /// A boolean.
    Boolean,
    /// Bytes: base64 text in JSON, a byte string in CBOR.
    Blob,
    /// A point in time: epoch seconds in JSON, tag 1 + epoch milliseconds in CBOR.
    Timestamp,
}

/// A member of a structure.
#[derive(Debug, Clone)]
pub struct Member {
    /// Wire name, e.g. `StreamName`.
    pub name: String,
    /// Target shape.
    pub shape: ShapeId,
    /// Listed in the structure's `required`.
    pub required: bool,
    /// The name as AWS spells it in validation paths: first letter lower case.
    pub(super) path_name: String,
}

/// A model pattern, compiled once.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as the model writes it (and AWS quotes it in messages).
    pub source: String,
    regex: Regex,
}

impl Pattern {
    /// Whether the whole of `value` matches, as Java's `Matcher.matches` decides.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl ServiceModel {
    /// Parses a botocore `service-2.json` document.
    pub fn parse(json: &str) -> Result<Self, String> {
        let root: Value = serde_json::from_str(json).map_err(|e| format!("model: {e}"))?;
        let metadata = root.get("metadata").and_then(Value::as_object);
        let meta = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let target_prefix = meta("targetPrefix");
        let api_version = meta("apiVersion");
        let endpoint_prefix = meta("endpointPrefix");
        let java_package = format!(
            "com.amazonaws.{}.v{}",
            endpoint_prefix.to_ascii_lowercase(),
            api_version.replace('-', "")
        );

        let raw_shapes = root
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or("model: no shapes")?;
        let by_name: HashMap<String, ShapeId> = raw_shapes
            .keys()
            .enumerate()
            .map(|(i, name)| (name.clone(), ShapeId(i as u32)))
            .collect();
        let shapes = raw_shapes
            .iter()
            .map(|(name, raw)| parse_shape(name, raw, &by_name))
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Arc::new(Shapes {
            shapes,
            by_name,
            java_package,
        });

        let mut operations = Vec::new();
        let raw_operations = root
            .get("operations")
            .and_then(Value::as_object)
            .ok_or("model: no operations")?;
        for (name, raw) in raw_operations {
            let reference = |key: &str| -> Result<Option<ShapeId>, String> {
                match raw
                    .get(key)
                    .and_then(|r| r.get("shape"))
                    .and_then(Value::as_str)
                {
                    None => Ok(None),
                    Some(shape) => shared
                        .by_name
                        .get(shape)
                        .copied()
                        .map(Some)
                        .ok_or_else(|| format!("operation {name}: unknown shape {shape}")),
                }
            };
            let input = reference("input")?;
            let output = reference("output")?;
            let output_event_stream = output.and_then(|id| match &shared.get(id).kind {
                ShapeKind::Structure { members } => members
                    .iter()
                    .find(|m| shared.get(m.shape).event_stream)
                    .map(|m| (m.name.clone(), m.shape)),
                _ => None,
            });
            operations.push(Operation {
                name: name.clone(),
                input,
                output,
                output_event_stream,
                shared: Arc::clone(&shared),
            });
        }
        let operation_index = operations
            .iter()
            .enumerate()
            .map(|(i, op)| (op.name.clone(), i))
            .collect();
        Ok(Self {
            target_prefix,
            api_version,
            endpoint_prefix,
            operations,
            operation_index,
            shared,
        })
    }

    /// The operation called `name`.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operation_index.get(name).map(|&i| &self.operations[i])
    }

    /// A shape by id.
    pub fn shape(&self, id: ShapeId) -> &Shape {
        self.shared.get(id)
    }

    /// A shape's id by name.
    pub fn shape_named(&self, name: &str) -> Option<ShapeId> {
        self.shared.by_name.get(name).copied()
    }

    /// Every shape.
    pub fn shapes(&self) -> &[Shape] {
        &self.shared.shapes
    }
}

impl Operation {
    /// A shape of this operation's model by id.
    pub fn shape(&self, id: ShapeId) -> &Shape {
        self.shared.get(id)
    }

    /// The input structure.
    pub fn input_shape(&self) -> Option<&Shape> {
        self.input.map(|id| self.shape(id))
    }

    /// The output structure.
    pub fn output_shape(&self) -> Option<&Shape> {
        self.output.map(|id| self.shape(id))
    }

    /// Whether the output is an event stream (SubscribeToShard).
    pub fn has_event_stream(&self) -> bool {
        self.output_event_stream.is_some()
    }
}

impl Shapes {
    pub(super) fn get(&self, id: ShapeId) -> &Shape {
        &self.shapes[id.0 as usize]
    }
}

impl Shape {
    /// Members of a structure (empty for other shapes).
    pub fn members(&self) -> &[Member] {
        match &self.kind {
            ShapeKind::Structure { members } => members,
            _ => &[],
        }
    }

    /// The member called `name` of a structure.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members().iter().find(|m| m.name == name)
    }
}

fn parse_shape(
    name: &str,
    raw: &Value,
    by_name: &HashMap<String, ShapeId>,
) -> Result<Shape, String> {
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("shape {name}: not an object"))?;
    let reference = |value: Option<&Value>| -> Result<ShapeId, String> {
        let target = value
            .and_then(|v| v.get("shape"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("shape {name}: missing reference"))?;
        by_name
            .get(target)
            .copied()
            .ok_or_else(|| format!("shape {name}: unknown shape {target}"))
    };
    let kind = match obj.get("type").and_then(Value::as_str).unwrap_or_default() {
        "structure" => {
            let required: Vec<&str> = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let empty = Map::new();
            let raw_members = obj
                .get("members")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let mut members = raw_members
                .iter()
                .map(|(member, target)| {
                    Ok(Member {
                        name: member.clone(),
                        shape: reference(Some(target))?,
                        required: required.contains(&member.as_str()),
                        path_name: lower_first(member),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            members.sort_by(|a, b| a.name.cmp(&b.name));
            ShapeKind::Structure { members }
        }
        "list" => ShapeKind::List {
            member: reference(obj.get("member"))?,
        },
        "map" => ShapeKind::Map {
            key: reference(obj.get("key"))?,
            value: reference(obj.get("value"))?,
        },
        "string" => ShapeKind::String,
        "integer" | "short" | "byte" => ShapeKind::Integer,
        "long" => ShapeKind::Long,
        "float" => ShapeKind::Float,
        "double" => ShapeKind::Double,
        "boolean" => ShapeKind::Boolean,
        "blob" => ShapeKind::Blob,
        "timestamp" => ShapeKind::Timestamp,
        other => return Err(format!("shape {name}: unsupported type {other:?}")),
    };
    let bound = |key: &str| {
        obj.get(key)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    let pattern = match obj.get("pattern").and_then(Value::as_str) {
        None => None,
        Some(source) => Some(Pattern {
            source: source.to_owned(),
            regex: Regex::new(&format!("^(?:{})$", java_to_rust_regex(source)))
                .map_err(|e| format!("shape {name}: pattern {source:?}: {e}"))?,
        }),
    };
    let enum_values: Vec<String> = obj
        .get("enum")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let flag = |key: &str| obj.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut shape = Shape {
        name: name.to_owned(),
        kind,
        min: bound("min"),
        max: bound("max"),
        pattern,
        enum_message: enum_message(name, &enum_values),
        enum_values,
        event_stream: flag("eventstream"),
        event: flag("event"),
        exception: flag("exception"),
        summary: String::new(),
    };
    shape.summary = summary(&shape);
    Ok(shape)
}

fn enum_message(name: &str, values: &[String]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let aws_order = AWS_ENUM_ORDER
        .iter()
        .find(|(shape, order)| {
            *shape == name
                && order.len() == values.len()
                && order.iter().all(|v| values.iter().any(|m| m == v))
        })
        .map(|(_, order)| order.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>());
    let listed = aws_order.unwrap_or_else(|| values.to_vec());
    format!(
        "Member must satisfy enum value set: [{}]",
        listed.join(", ")
    )
}

/// The bracketed constraint list AWS prints for a list member, map key or map value that
/// fails any of them (kinesalite `childLengths`: maximum first, then minimum).
fn summary(shape: &Shape) -> String {
    let mut parts = Vec::new();
    let length = matches!(
        shape.kind,
        ShapeKind::String | ShapeKind::Blob | ShapeKind::List { .. } | ShapeKind::Map { .. }
    );
    let verb = if length { "have length" } else { "have value" };
    if let Some(max) = shape.max {
        parts.push(format!("Member must {verb} less than or equal to {max}"));
    }
    if let Some(min) = shape.min {
        parts.push(format!("Member must {verb} greater than or equal to {min}"));
    }
    if let Some(pattern) = &shape.pattern {
        parts.push(format!(
            "Member must satisfy regular expression pattern: {}",
            pattern.source
        ));
    }
    if !shape.enum_message.is_empty() {
        parts.push(shape.enum_message.clone());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

/// `StreamName` -> `streamName`, as AWS writes member paths.
pub(super) fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Rewrites a Java pattern for the `regex` crate where the two differ in what they match:
/// Java's `\d`, `\w`, `\s` are ASCII-only and its `.` excludes every line terminator.
fn java_to_rust_regex(java: &str) -> String {
    const DOT: &str = "[^\\n\\r\\u{85}\\u{2028}\\u{2029}]";
    let mut out = String::with_capacity(java.len() + 16);
    let mut in_class = 0usize;
    let mut chars = java.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('d') if in_class > 0 => out.push_str("0-9"),
                Some('d') => out.push_str("[0-9]"),
                Some('w') if in_class > 0 => out.push_str("0-9A-Za-z_"),
                Some('w') => out.push_str("[0-9A-Za-z_]"),
                Some('s') if in_class > 0 => out.push_str("\\t\\n\\x0B\\x0C\\r "),
                Some('s') => out.push_str("[\\t\\n\\x0B\\x0C\\r ]"),
                Some('S') if in_class == 0 => out.push_str("[^\\t\\n\\x0B\\x0C\\r ]"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push_str("\\\\"),
            },
            '[' => {
                in_class += 1;
                out.push(c);
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(c);
            }
            '.' if in_class == 0 => out.push_str(DOT),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_parses() {
        let model = kinesis();
        assert_eq!(model.target_prefix, "Kinesis_20131202");
        assert!(model.operations.len() >= 30);
        let put = model.operation("PutRecords").unwrap();
        let input = put.input_shape().unwrap();
        assert_eq!(input.name, "PutRecordsInput");
        let records = input.member("Records").unwrap();
        assert!(records.required);
        let list = model.shape(records.shape);
        assert_eq!((list.min, list.max), (Some(1), Some(500)));
        let ShapeKind::List { member } = list.kind else {
            panic!("Records is a list")
        };
        let entry = model.shape(member);
        assert!(entry.member("PartitionKey").unwrap().required);
        assert!(!entry.member("ExplicitHashKey").unwrap().required);

        let subscribe = model.operation("SubscribeToShard").unwrap();
        assert!(subscribe.has_event_stream());
        let (member, union) = subscribe.output_event_stream.clone().unwrap();
        assert_eq!(member, "EventStream");
        assert!(model.shape(union).event_stream);
        assert!(!put.has_event_stream());
        assert_eq!(
            model.shared.java_package,
            "com.amazonaws.kinesis.v20131202".to_owned()
        );
    }

    #[test]
    fn every_pattern_compiles_and_matches_like_java() {
        let model = kinesis();
        let name = model.shape(model.shape_named("StreamName").unwrap());
        let pattern = name.pattern.as_ref().unwrap();
        assert_eq!(pattern.source, "[a-zA-Z0-9_.-]+");
        assert!(pattern.is_match("my-stream_1.x"));
        assert!(!pattern.is_match("my stream"));
        assert!(!pattern.is_match(""));
        let hash = model.shape(model.shape_named("HashKey").unwrap());
        let hash = hash.pattern.as_ref().unwrap();
        assert!(hash.is_match("0"));
        assert!(hash.is_match("340282366920938463463374607431768211455"));
        assert!(!hash.is_match("01"));
        // Java's \d is ASCII only.
        assert!(!hash.is_match("1\u{0663}"));
        let consumer = model.shape(model.shape_named("ConsumerARN").unwrap());
        let consumer = consumer.pattern.as_ref().unwrap();
        assert!(
            consumer
                .is_match("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000")
        );
        assert!(!consumer.is_match("arn:aws:kinesis:us-east-1:123:stream/s/consumer/c:1"));
    }

    #[test]
    fn enum_message_uses_aws_order() {
        let model = kinesis();
        let t = model.shape(model.shape_named("ShardIteratorType").unwrap());
        assert_eq!(
            t.enum_message,
            "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, \
             AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
        );
        let m = model.shape(model.shape_named("StreamMode").unwrap());
        assert_eq!(
            m.enum_message,
            "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]"
        );
        let key = model.shape(model.shape_named("TagKey").unwrap());
        assert_eq!(
            key.summary,
            "[Member must have length less than or equal to 128, Member must have length \
             greater than or equal to 1]"
        );
    }
}
