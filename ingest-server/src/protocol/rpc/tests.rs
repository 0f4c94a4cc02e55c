//! Tests of the RPC layer against the Kinesis model and a small model with every type.

use std::sync::LazyLock;

use bytes::Bytes;
use ciborium::Value;
use http::HeaderMap;
use http_body_util::BodyExt as _;
use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------- helpers

fn headers(content_type: Option<&str>, target: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(ct) = content_type {
        h.insert("content-type", ct.parse().unwrap());
    }
    if let Some(t) = target {
        h.insert("x-amz-target", t.parse().unwrap());
    }
    h
}

fn call(op: &str, encoding: Encoding) -> Call {
    let ct = encoding.content_type();
    parse_call(
        &headers(Some(ct), Some(&format!("Kinesis_20131202.{op}"))),
        kinesis(),
    )
    .unwrap()
}

fn json_in(op: &str, body: &str) -> Result<Doc, AwsError> {
    decode_input(&call(op, Encoding::Json), body.as_bytes())
}

fn cbor_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

fn cbor_in(op: &str, value: &Value) -> Result<Doc, AwsError> {
    decode_input(&call(op, Encoding::Cbor), &cbor_bytes(value))
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Text(k.into()), v))
            .collect(),
    )
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// The ValidationException message for a JSON body of `op`.
fn invalid(op: &str, body: &str) -> String {
    let c = call(op, Encoding::Json);
    let input = decode_input(&c, body.as_bytes()).unwrap();
    let err = validate_input(&c, &input).unwrap_err();
    assert_eq!((err.status, err.code), (400, "ValidationException"));
    err.message
}

fn serialization(op: &str, body: &str) -> String {
    let err = json_in(op, body).unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (400, "SerializationException"),
        "{body}"
    );
    err.message
}

async fn body_of(response: http::Response<super::super::body::ResponseBody>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

/// A model with every type, for round trips.
static EVERYTHING: LazyLock<ServiceModel> = LazyLock::new(|| {
    ServiceModel::parse(
        r#"{
      "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "test",
                   "targetPrefix": "Test_20200101"},
      "operations": {"Everything": {"name": "Everything",
                     "input": {"shape": "Everything"}, "output": {"shape": "Everything"}}},
      "shapes": {
        "Everything": {"type": "structure", "members": {
          "S": {"shape": "Str"}, "I": {"shape": "Int"}, "L": {"shape": "Long"},
          "D": {"shape": "Double"}, "B": {"shape": "Bool"}, "X": {"shape": "Blob"},
          "T": {"shape": "Time"}, "Li": {"shape": "StrList"}, "M": {"shape": "StrMap"},
          "N": {"shape": "Nested"}, "NL": {"shape": "NestedList"}}},
        "Str": {"type": "string"}, "Int": {"type": "integer"}, "Long": {"type": "long"},
        "Double": {"type": "double"}, "Bool": {"type": "boolean"}, "Blob": {"type": "blob"},
        "Time": {"type": "timestamp"},
        "StrList": {"type": "list", "member": {"shape": "Str"}},
        "StrMap": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Str"}},
        "Nested": {"type": "structure", "required": ["S"],
                   "members": {"S": {"shape": "Str"}, "Inner": {"shape": "Nested"}}},
        "NestedList": {"type": "list", "member": {"shape": "Nested"}}
      }}"#,
    )
    .unwrap()
});

fn everything(encoding: Encoding) -> Call {
    Call {
        encoding,
        operation: EVERYTHING.operation("Everything").unwrap(),
    }
}

fn sample() -> Doc {
    Doc::map()
        .with("S", "a\"b\\c\n/\u{1F600}é")
        .with("I", -2_147_483_648i64)
        .with("L", i64::MIN)
        .with("D", 1.5)
        .with("B", true)
        .with("X", Bytes::from_static(b"\x00\x01\xffbinary"))
        .with("T", Doc::Timestamp(1_700_000_000_123))
        .with("Li", vec![Doc::from("x"), Doc::from("")])
        .with("M", Doc::map().with("k1", "v1").with("k2", ""))
        .with(
            "N",
            Doc::map()
                .with("S", "outer")
                .with("Inner", Doc::map().with("S", "inner")),
        )
        .with(
            "NL",
            vec![Doc::map().with("S", "one"), Doc::map().with("S", "two")],
        )
}

// ---------------------------------------------------------------- parse_call

#[test]
fn parse_call_accepts_both_encodings_and_parameters() {
    let c = parse_call(
        &headers(
            Some("application/x-amz-json-1.1; charset=utf-8"),
            Some("Kinesis_20131202.PutRecords"),
        ),
        kinesis(),
    )
    .unwrap();
    assert_eq!(c.encoding, Encoding::Json);
    assert_eq!(c.operation.name, "PutRecords");
    let c = parse_call(
        &headers(Some(CBOR_CONTENT_TYPE), Some("Kinesis_20131202.ListShards")),
        kinesis(),
    )
    .unwrap();
    assert_eq!(c.encoding, Encoding::Cbor);
    assert_eq!(c.operation.name, "ListShards");
}

#[test]
fn parse_call_refusals_match_aws() {
    let refuse = |ct: Option<&str>, target: Option<&str>| {
        let err = parse_call(&headers(ct, target), kinesis()).unwrap_err();
        (err.status, err.code, err.message)
    };
    let unknown = (400, "UnknownOperationException", String::new());
    assert_eq!(refuse(Some(JSON_CONTENT_TYPE), None), unknown);
    assert_eq!(
        refuse(Some(JSON_CONTENT_TYPE), Some("Kinesis_20131202.")),
        unknown
    );
    assert_eq!(
        refuse(Some(JSON_CONTENT_TYPE), Some("Kinesis_20131202.Whatever")),
        unknown
    );
    assert_eq!(
        refuse(Some(JSON_CONTENT_TYPE), Some("Kinesis_20131202.ListStream")),
        unknown
    );
    assert_eq!(
        refuse(Some(CBOR_CONTENT_TYPE), Some("Whatever.ListStreams")),
        unknown
    );
    assert_eq!(refuse(Some(CBOR_CONTENT_TYPE), Some("Whatever")), unknown);

    assert_eq!(
        refuse(
            Some("application/json"),
            Some("Kinesis_20131202.ListStreams")
        ),
        (404, "UnknownOperationException", String::new())
    );
    assert_eq!(
        refuse(
            Some("application/x-amz-json-1.0"),
            Some("Kinesis_20131202.ListStreams")
        ),
        (404, "UnknownOperationException", String::new())
    );
    assert_eq!(
        refuse(None, Some("Kinesis_20131202.whatever")),
        (500, "InternalFailure", String::new())
    );
    assert_eq!(
        refuse(None, Some("whatever.ListStreams")),
        (
            403,
            "UnrecognizedClientException",
            "No authorization strategy was found for service: whatever, operation: ListStreams"
                .to_owned()
        )
    );
    assert_eq!(
        refuse(Some("application/x-amz-json-1.1asdf"), None),
        (
            403,
            "AccessDeniedException",
            "Unable to determine service/operation name to be authorized".to_owned()
        )
    );
    assert_eq!(
        encoding_of(&headers(Some(CBOR_CONTENT_TYPE), None)),
        Encoding::Cbor
    );
    assert_eq!(
        encoding_of(&headers(Some("text/plain"), None)),
        Encoding::Json
    );
}

// ---------------------------------------------------------------- round trips

#[test]
fn json_round_trip_every_type() {
    let doc = sample();
    let body = encode(Encoding::Json, &doc);
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.contains(r#""X":"AAH/YmluYXJ5""#), "{text}");
    assert!(text.contains(r#""T":1700000000.123"#), "{text}");
    assert!(text.contains(r#""D":1.5"#), "{text}");
    let back = decode_input(&everything(Encoding::Json), &body).unwrap();
    assert_eq!(back, doc);
    // And serde_json agrees it is JSON.
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["S"], "a\"b\\c\n/\u{1F600}é");
}

#[test]
fn cbor_round_trip_every_type() {
    let doc = sample();
    let body = encode(Encoding::Cbor, &doc);
    let back = decode_input(&everything(Encoding::Cbor), &body).unwrap();
    assert_eq!(back, doc);
    // An independent decoder sees byte strings and tag 1 around milliseconds.
    let value: Value = ciborium::from_reader(&body[..]).unwrap();
    let get = |key: &str| {
        value
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("X"), Value::Bytes(b"\x00\x01\xffbinary".to_vec()));
    assert_eq!(
        get("T"),
        Value::Tag(1, Box::new(Value::Integer(1_700_000_000_123i64.into())))
    );
    assert_eq!(get("L"), Value::Integer(i64::MIN.into()));
}

#[test]
fn null_members_are_left_out_and_empty_bodies() {
    let doc = Doc::map().with("A", "x").with("Gone", None::<String>);
    assert_eq!(&encode(Encoding::Json, &doc)[..], br#"{"A":"x"}"#);
    let value: Value = ciborium::from_reader(&encode(Encoding::Cbor, &doc)[..]).unwrap();
    assert_eq!(value, map(vec![("A", text("x"))]));
    assert!(encode(Encoding::Json, &Doc::Null).is_empty());
    assert_eq!(&encode(Encoding::Json, &Doc::map())[..], b"{}");
    assert_eq!(&encode(Encoding::Cbor, &Doc::map())[..], [0xa0]);

    let c = call("ListStreams", Encoding::Json);
    assert_eq!(decode_input(&c, b"").unwrap(), Doc::map());
    assert_eq!(decode_input(&c, b" \n").unwrap(), Doc::map());
    assert_eq!(
        decode_input(&call("ListStreams", Encoding::Cbor), b"").unwrap(),
        Doc::map()
    );
    // JSON nulls and unknown members are dropped.
    let doc = json_in(
        "CreateStream",
        r#"{"StreamName":"s","ShardCount":null,"Unknown":{"deep":[1,{"x":null}]}}"#,
    )
    .unwrap();
    assert_eq!(doc, Doc::map().with("StreamName", "s"));
}

#[test]
fn repeated_keys_keep_the_last_value() {
    let doc = json_in("CreateStream", r#"{"StreamName":"a","StreamName":"b"}"#).unwrap();
    assert_eq!(doc, Doc::map().with("StreamName", "b"));
}

#[test]
fn kinesis_inputs_decode_typed() {
    let doc = json_in(
        "PutRecords",
        r#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"p"},
            {"Data":"","PartitionKey":"q","ExplicitHashKey":"7"}]}"#,
    )
    .unwrap();
    let records = doc.list("Records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].blob("Data").unwrap(), &Bytes::from_static(b"hi"));
    assert_eq!(records[1].str("ExplicitHashKey"), Some("7"));
    let doc = json_in(
        "DeleteStream",
        r#"{"StreamName":"s","EnforceConsumerDeletion":true}"#,
    )
    .unwrap();
    assert_eq!(doc.bool("EnforceConsumerDeletion"), Some(true));
    // AWS takes a few strings as booleans.
    let doc = json_in("DeleteStream", r#"{"EnforceConsumerDeletion":"yes"}"#).unwrap();
    assert_eq!(doc.bool("EnforceConsumerDeletion"), Some(true));
    let doc = json_in("AddTagsToStream", r#"{"Tags":{"a":"1","b":"2"}}"#).unwrap();
    assert_eq!(doc.entries("Tags").len(), 2);

    let doc = cbor_in(
        "PutRecord",
        &map(vec![
            ("StreamName", text("s")),
            ("Data", Value::Bytes(vec![1, 2, 3])),
            ("PartitionKey", text("p")),
        ]),
    )
    .unwrap();
    assert_eq!(doc.blob("Data").unwrap(), &Bytes::from_static(&[1, 2, 3]));
    // CBOR blobs given as base64 text are accepted too.
    let doc = cbor_in("PutRecord", &map(vec![("Data", text("aGk="))])).unwrap();
    assert_eq!(doc.blob("Data").unwrap(), &Bytes::from_static(b"hi"));
}

// ---------------------------------------------------------------- timestamps

#[test]
fn timestamps_in_both_encodings() {
    let at = |doc: Doc| doc.timestamp("Timestamp");
    // JSON: epoch seconds, integer or with a fraction (boto3 sends floats).
    assert_eq!(
        at(json_in("GetShardIterator", r#"{"Timestamp":1700000000.123}"#).unwrap()),
        Some(1_700_000_000_123)
    );
    assert_eq!(
        at(json_in("GetShardIterator", r#"{"Timestamp":1700000000}"#).unwrap()),
        Some(1_700_000_000_000)
    );
    assert_eq!(
        at(json_in("GetShardIterator", r#"{"Timestamp":1.7000000001234E9}"#).unwrap()),
        Some(1_700_000_000_123)
    );
    // CBOR: tag 1 around integer milliseconds (Java SDK), around float seconds (RFC 8949),
    // and untagged seconds.
    let ts = |v: Value| at(cbor_in("GetShardIterator", &map(vec![("Timestamp", v)])).unwrap());
    assert_eq!(
        ts(Value::Tag(
            1,
            Box::new(Value::Integer(1_700_000_000_123i64.into()))
        )),
        Some(1_700_000_000_123)
    );
    assert_eq!(
        ts(Value::Tag(1, Box::new(Value::Float(1_700_000_000.5)))),
        Some(1_700_000_000_500)
    );
    assert_eq!(
        ts(Value::Integer(1_700_000_000.into())),
        Some(1_700_000_000_000)
    );
    assert_eq!(ts(Value::Float(1_700_000_000.25)), Some(1_700_000_000_250));
    // Nested, in SubscribeToShard's StartingPosition.
    let doc = cbor_in(
        "SubscribeToShard",
        &map(vec![(
            "StartingPosition",
            map(vec![
                ("Type", text("AT_TIMESTAMP")),
                (
                    "Timestamp",
                    Value::Tag(1, Box::new(Value::Integer(5_000.into()))),
                ),
            ]),
        )]),
    )
    .unwrap();
    assert_eq!(
        doc.get("StartingPosition").unwrap().timestamp("Timestamp"),
        Some(5_000)
    );

    // Output.
    let out = |ms| encode(Encoding::Json, &Doc::map().with("T", Doc::Timestamp(ms)));
    assert_eq!(&out(1_700_000_000_123)[..], br#"{"T":1700000000.123}"#);
    assert_eq!(&out(1_700_000_000_500)[..], br#"{"T":1700000000.5}"#);
    assert_eq!(&out(1_700_000_000_000)[..], br#"{"T":1700000000}"#);
    assert_eq!(&out(-1_500)[..], br#"{"T":-1.5}"#);
    let cbor = encode(
        Encoding::Cbor,
        &Doc::map().with("T", Doc::Timestamp(1_700_000_000_123)),
    );
    // a1 61 54 c1 1b <u64 ms>
    assert_eq!(&cbor[..5], &[0xa1, 0x61, b'T', 0xc1, 0x1b]);
    assert_eq!(&cbor[5..], &1_700_000_000_123u64.to_be_bytes());
}

// ---------------------------------------------------------------- SerializationException

#[test]
fn unparseable_bodies_get_a_bare_serialization_exception() {
    for body in [
        "{", "hello", "true", "null", "[]", "1", "\"x\"", "{}x", "{\"a\":}",
    ] {
        assert_eq!(serialization("ListStreams", body), "", "{body}");
    }
    // A syntax error wins over an earlier type error.
    assert_eq!(serialization("CreateStream", r#"{"ShardCount":"x","#), "");
    // Too deep where the model nests (serde_json's limit, 128).
    let deep = format!("{}{}", r#"{"N":{"Inner":"#.repeat(100), "}}".repeat(100));
    let err = decode_input(&everything(Encoding::Json), deep.as_bytes()).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        ("SerializationException", "")
    );
    // Unknown members are skipped without recursion, however deep.
    let deep = format!("{{\"X\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(json_in("CreateStream", &deep).unwrap(), Doc::map());

    let c = call("ListStreams", Encoding::Cbor);
    for body in [
        &[0xbf][..],                   // indefinite map without break
        &[0xa1, 0x61][..],             // truncated key
        &[0x81, 0x01][..],             // an array, not a map
        &[0xa0, 0x00][..],             // trailing data
        &[0xa1, 0x01, 0x01][..],       // non-text key
        &[0xa1, 0x61, b'L', 0xff][..], // break as a value
        &[
            0xa1, 0x61, b'L', 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ][..], // huge length
    ] {
        let err = decode_input(&c, body).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            ("SerializationException", ""),
            "{body:x?}"
        );
    }
}

#[test]
fn wrong_types_get_aws_texts() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "CreateStream",
            r#"{"StreamName":true}"#,
            "class java.lang.Boolean can not be converted to an String",
        ),
        (
            "CreateStream",
            r#"{"StreamName":23}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
        ),
        (
            "CreateStream",
            r#"{"StreamName":34.56}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
        ),
        (
            "CreateStream",
            r#"{"StreamName":[]}"#,
            "Start of list found where not expected",
        ),
        (
            "CreateStream",
            r#"{"StreamName":{}}"#,
            "Start of structure or map found where not expected.",
        ),
        (
            "CreateStream",
            r#"{"ShardCount":"23"}"#,
            "class java.lang.String can not be converted to an Integer",
        ),
        (
            "CreateStream",
            r#"{"ShardCount":true}"#,
            "class java.lang.Boolean can not be converted to an Integer",
        ),
        (
            "CreateStream",
            r#"{"ShardCount":[]}"#,
            "Start of list found where not expected",
        ),
        (
            "CreateStream",
            r#"{"ShardCount":{}}"#,
            "Start of structure or map found where not expected.",
        ),
        ("CreateStream", r#"{"Tags":"23"}"#, "Expected map or null"),
        (
            "CreateStream",
            r#"{"Tags":[]}"#,
            "Start of list found where not expected",
        ),
        (
            "CreateStream",
            r#"{"Tags":{"a":1}}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
        ),
        (
            "CreateStream",
            r#"{"StreamModeDetails":23}"#,
            "Expected null",
        ),
        (
            "CreateStream",
            r#"{"StreamModeDetails":[]}"#,
            "Start of list found where not expected",
        ),
        ("PutRecords", r#"{"Records":"23"}"#, "Expected list or null"),
        ("PutRecords", r#"{"Records":true}"#, "Expected list or null"),
        (
            "PutRecords",
            r#"{"Records":{}}"#,
            "Start of structure or map found where not expected.",
        ),
        ("PutRecords", r#"{"Records":["23"]}"#, "Expected null"),
        (
            "PutRecords",
            r#"{"Records":[[]]}"#,
            "Start of list found where not expected",
        ),
        (
            "PutRecords",
            r#"{"Records":[{"Data":true}]}"#,
            "class java.lang.Boolean can not be converted to a Blob",
        ),
        (
            "PutRecords",
            r#"{"Records":[{"Data":23}]}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob",
        ),
        (
            "PutRecords",
            r#"{"Records":[{"Data":"23456"}]}"#,
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5",
        ),
        (
            "PutRecords",
            r#"{"Records":[{"Data":"=+/="}]}"#,
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='",
        ),
        (
            "PutRecords",
            r#"{"Records":[{"Data":"+/+="}]}"#,
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected",
        ),
        (
            "GetShardIterator",
            r#"{"Timestamp":"23"}"#,
            "class java.lang.String can not be converted to milliseconds since epoch",
        ),
        (
            "GetShardIterator",
            r#"{"Timestamp":true}"#,
            "class java.lang.Boolean can not be converted to milliseconds since epoch",
        ),
        (
            "DeleteStream",
            r#"{"EnforceConsumerDeletion":"23"}"#,
            "'23' can not be converted to an Boolean",
        ),
        (
            "DeleteStream",
            r#"{"EnforceConsumerDeletion":"hello"}"#,
            "'HELLO' can not be converted to an Boolean",
        ),
        (
            "DeleteStream",
            r#"{"EnforceConsumerDeletion":23}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean",
        ),
        (
            "DeleteStream",
            r#"{"EnforceConsumerDeletion":2147483648}"#,
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean",
        ),
    ];
    for (op, body, message) in cases {
        assert_eq!(serialization(op, body), *message, "{op} {body}");
    }
    // The first type error is the one reported.
    assert_eq!(
        serialization("CreateStream", r#"{"StreamName":1,"ShardCount":"x"}"#),
        "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
    );
    // CBOR: the same texts, and one for byte strings where no blob is expected.
    let err = cbor_in("CreateStream", &map(vec![("ShardCount", text("23"))])).unwrap_err();
    assert_eq!(
        err.message,
        "class java.lang.String can not be converted to an Integer"
    );
    let err = cbor_in(
        "CreateStream",
        &map(vec![("StreamName", Value::Bytes(vec![1]))]),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "class java.nio.HeapByteBuffer can not be converted to an String"
    );
    let err = cbor_in(
        "PutRecords",
        &map(vec![("Records", Value::Integer(1.into()))]),
    )
    .unwrap_err();
    assert_eq!(err.message, "Expected list or null");
}

#[test]
fn numbers_saturate_like_aws() {
    let doc = json_in("CreateStream", r#"{"ShardCount":100000000000}"#).unwrap();
    assert_eq!(doc.int("ShardCount"), Some(2_147_483_647));
    let doc = json_in("CreateStream", r#"{"ShardCount":1e40}"#).unwrap();
    assert_eq!(doc.int("ShardCount"), Some(2_147_483_647));
    let doc = json_in("CreateStream", r#"{"ShardCount":2.9}"#).unwrap();
    assert_eq!(doc.int("ShardCount"), Some(2));
}

// ---------------------------------------------------------------- ValidationException

#[test]
fn create_stream_validation() {
    assert_eq!(
        invalid("CreateStream", r#"{"StreamName":"a b","ShardCount":1}"#),
        "1 validation error detected: Value 'a b' at 'streamName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    );
    assert_eq!(
        invalid("CreateStream", r#"{"ShardCount":1}"#),
        "1 validation error detected: Value null at 'streamName' failed to satisfy \
         constraint: Member must not be null"
    );
    assert_eq!(
        invalid("CreateStream", r#"{"StreamName":"s","ShardCount":0}"#),
        "1 validation error detected: Value '0' at 'shardCount' failed to satisfy \
         constraint: Member must have value greater than or equal to 1"
    );
    assert_eq!(
        invalid("CreateStream", r#"{"StreamName":"","ShardCount":0}"#),
        "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy \
         constraint: Member must have value greater than or equal to 1; Value '' at \
         'streamName' failed to satisfy constraint: Member must satisfy regular expression \
         pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let long = "a".repeat(129);
    assert_eq!(
        invalid(
            "CreateStream",
            &format!(r#"{{"StreamName":"{long}","StreamModeDetails":{{"StreamMode":"X"}}}}"#)
        ),
        format!(
            "2 validation errors detected: Value 'X' at 'streamModeDetails.streamMode' \
             failed to satisfy constraint: Member must satisfy enum value set: \
             [PROVISIONED, ON_DEMAND]; Value '{long}' at 'streamName' failed to satisfy \
             constraint: Member must have length less than or equal to 128"
        )
    );
    assert_eq!(
        invalid(
            "CreateStream",
            r#"{"StreamName":"s","StreamModeDetails":{}}"#
        ),
        "1 validation error detected: Value null at 'streamModeDetails.streamMode' failed \
         to satisfy constraint: Member must not be null"
    );
    // Valid input passes, and lengths count UTF-16 units like Java.
    let c = call("CreateStream", Encoding::Json);
    let ok = decode_input(&c, br#"{"StreamName":"s","ShardCount":1}"#).unwrap();
    assert!(validate_input(&c, &ok).is_ok());
    let tags = format!(r#"{{"Tags":{{"{}":"v"}}}}"#, "\u{1F600}".repeat(64));
    let c = call("AddTagsToStream", Encoding::Json);
    let ok = decode_input(&c, tags.as_bytes()).unwrap();
    assert!(validate_input(&c, &ok).is_ok());
    let tags = format!(r#"{{"Tags":{{"{}":"v"}}}}"#, "\u{1F600}".repeat(65));
    assert!(invalid("AddTagsToStream", &tags).contains("Map keys"));
}

#[test]
fn put_records_validation() {
    assert_eq!(
        invalid(
            "PutRecords",
            r#"{"StreamName":"s","Records":[{"PartitionKey":"","Data":""}]}"#
        ),
        "1 validation error detected: Value '' at 'records.1.member.partitionKey' failed \
         to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let key = "k".repeat(257);
    assert_eq!(
        invalid(
            "PutRecords",
            &format!(
                r#"{{"StreamName":"s","Records":[{{"PartitionKey":"{key}","Data":"aGk="}}]}}"#
            )
        ),
        format!(
            "1 validation error detected: Value '{key}' at 'records.1.member.partitionKey' \
             failed to satisfy constraint: Member must have length less than or equal to 256"
        )
    );
    assert_eq!(
        invalid(
            "PutRecords",
            r#"{"StreamName":"s","Records":[{"PartitionKey":"a","Data":""},
                {"PartitionKey":"b","Data":"","ExplicitHashKey":"x1"},{"Data":""}]}"#
        ),
        "2 validation errors detected: Value 'x1' at 'records.2.member.explicitHashKey' \
         failed to satisfy constraint: Member must satisfy regular expression pattern: \
         0|([1-9]\\d{0,38}); Value null at 'records.3.member.partitionKey' failed to \
         satisfy constraint: Member must not be null"
    );
    assert_eq!(
        invalid("PutRecords", r#"{"StreamName":"s","Records":[]}"#),
        "1 validation error detected: Value '[]' at 'records' failed to satisfy \
         constraint: Member must have length greater than or equal to 1"
    );
    assert_eq!(
        invalid("PutRecords", r#"{"StreamName":"s"}"#),
        "1 validation error detected: Value null at 'records' failed to satisfy \
         constraint: Member must not be null"
    );

    // Too much data: the blob is printed as Java's ByteBuffer.
    let c = call("PutRecords", Encoding::Cbor);
    let big = map(vec![
        ("StreamName", text("s")),
        (
            "Records",
            Value::Array(vec![map(vec![
                ("PartitionKey", text("p")),
                ("Data", Value::Bytes(vec![0; 10 * 1024 * 1024 + 1])),
            ])]),
        ),
    ]);
    let input = decode_input(&c, &cbor_bytes(&big)).unwrap();
    assert_eq!(
        validate_input(&c, &input).unwrap_err().message,
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=10485761 \
         cap=10485761]' at 'records.1.member.data' failed to satisfy constraint: Member \
         must have length less than or equal to 10485760"
    );
}

#[test]
fn put_records_501_records_stop_at_ten_errors() {
    let record = r#"{"PartitionKey":"","Data":""}"#;
    let body = format!(
        r#"{{"StreamName":"","Records":[{}]}}"#,
        vec![record; 501].join(",")
    );
    let message = invalid("PutRecords", &body);
    let entry = Doc::map()
        .with("PartitionKey", "")
        .with("Data", Bytes::new());
    let rendered = format!(
        "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@{:x}",
        validate::content_hash(&entry)
    );
    let mut expected = format!(
        "10 validation errors detected: Value '[{}]' at 'records' failed to satisfy \
         constraint: Member must have length less than or equal to 500",
        vec![rendered.as_str(); 501].join(", ")
    );
    for i in 1..=9 {
        expected.push_str(&format!(
            "; Value '' at 'records.{i}.member.partitionKey' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        ));
    }
    assert_eq!(message, expected);
}

#[test]
fn enums_lists_and_maps_validation() {
    assert_eq!(
        invalid(
            "GetShardIterator",
            r#"{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"BAD"}"#
        ),
        "1 validation error detected: Value 'BAD' at 'shardIteratorType' failed to satisfy \
         constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, \
         AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
    );
    assert_eq!(
        invalid("GetShardIterator", r#"{}"#),
        "2 validation errors detected: Value null at 'shardId' failed to satisfy \
         constraint: Member must not be null; Value null at 'shardIteratorType' failed to \
         satisfy constraint: Member must not be null"
    );
    let long = "a".repeat(129);
    assert_eq!(
        invalid(
            "RemoveTagsFromStream",
            &format!(r#"{{"StreamName":"s","TagKeys":["a","{long}","b"]}}"#)
        ),
        format!(
            "1 validation error detected: Value '[a, {long}, b]' at 'tagKeys' failed to \
             satisfy constraint: Member must satisfy constraint: [Member must have length \
             less than or equal to 128, Member must have length greater than or equal to 1]"
        )
    );
    assert_eq!(
        invalid(
            "AddTagsToStream",
            &format!(r#"{{"Tags":{{"a":"1","{long}":"3"}}}}"#)
        ),
        format!(
            "1 validation error detected: Value '{{a=1, {long}=3}}' at 'tags' failed to \
             satisfy constraint: Map keys must satisfy constraint: [Member must have length \
             less than or equal to 128, Member must have length greater than or equal to 1]"
        )
    );
    let value = "v".repeat(257);
    assert_eq!(
        invalid(
            "AddTagsToStream",
            &format!(r#"{{"Tags":{{"c":"{value}"}}}}"#)
        ),
        format!(
            "1 validation error detected: Value '{{c={value}}}' at 'tags' failed to satisfy \
             constraint: Map value must satisfy constraint: [Member must have length less \
             than or equal to 256, Member must have length greater than or equal to 0]"
        )
    );
    assert_eq!(
        invalid("AddTagsToStream", r#"{"Tags":{}}"#),
        "1 validation error detected: Value '{}' at 'tags' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    assert_eq!(
        invalid(
            "EnableEnhancedMonitoring",
            r#"{"ShardLevelMetrics":["ALL","Nope"]}"#
        ),
        "1 validation error detected: Value '[ALL, Nope]' at 'shardLevelMetrics' failed to \
         satisfy constraint: Member must satisfy constraint: [Member must satisfy enum \
         value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, \
         WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, \
         IteratorAgeMilliseconds, ALL]]"
    );
    assert_eq!(
        invalid("GetRecords", r#"{"ShardIterator":"i","Limit":10001}"#),
        "1 validation error detected: Value '10001' at 'limit' failed to satisfy \
         constraint: Member must have value less than or equal to 10000"
    );
    // Integers beyond 32 bits are shown saturated, as AWS shows them.
    assert_eq!(
        invalid(
            "GetRecords",
            r#"{"ShardIterator":"i","Limit":100000000000}"#
        ),
        "1 validation error detected: Value '2147483647' at 'limit' failed to satisfy \
         constraint: Member must have value less than or equal to 10000"
    );
}

// ---------------------------------------------------------------- responses

#[tokio::test]
async fn success_responses() {
    let out = Doc::map().with("FailedRecordCount", 0).with(
        "Records",
        vec![Doc::map().with("ShardId", "shardId-000000000000")],
    );
    let r = response(Encoding::Json, &out, "req-1");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], JSON_CONTENT_TYPE);
    assert_eq!(r.headers()["x-amzn-RequestId"], "req-1");
    assert_eq!(
        &body_of(r).await[..],
        br#"{"FailedRecordCount":0,"Records":[{"ShardId":"shardId-000000000000"}]}"#
    );
    let r = response(Encoding::Cbor, &out, "req-2");
    assert_eq!(r.headers()["content-type"], CBOR_CONTENT_TYPE);
    let value: Value = ciborium::from_reader(&body_of(r).await[..]).unwrap();
    assert_eq!(
        value,
        map(vec![
            ("FailedRecordCount", Value::Integer(0.into())),
            (
                "Records",
                Value::Array(vec![map(vec![("ShardId", text("shardId-000000000000"))])])
            ),
        ])
    );
    // No output: an empty body.
    let r = response(Encoding::Json, &Doc::Null, "req-3");
    assert!(body_of(r).await.is_empty());
}

#[tokio::test]
async fn error_responses_in_both_encodings() {
    let err = validation_error("1 validation error detected: x");
    let r = error_response(Encoding::Json, &err, "req-1");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], JSON_CONTENT_TYPE);
    assert_eq!(r.headers()["x-amzn-ErrorType"], "ValidationException:");
    assert_eq!(r.headers()["x-amzn-RequestId"], "req-1");
    assert_eq!(
        &body_of(r).await[..],
        br#"{"__type":"ValidationException","message":"1 validation error detected: x"}"#
    );

    let r = error_response(
        Encoding::Cbor,
        &AwsError::not_found("Stream s not found."),
        "req-2",
    );
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], CBOR_CONTENT_TYPE);
    assert_eq!(
        r.headers()["x-amzn-ErrorType"],
        "ResourceNotFoundException:"
    );
    assert_eq!(r.headers()["x-amzn-RequestId"], "req-2");
    let value: Value = ciborium::from_reader(&body_of(r).await[..]).unwrap();
    assert_eq!(
        value,
        map(vec![
            ("__type", text("ResourceNotFoundException")),
            ("message", text("Stream s not found.")),
        ])
    );

    // No message: none in the body, as AWS sends SerializationException.
    let r = error_response(Encoding::Json, &serialization_error(""), "req-3");
    assert_eq!(
        &body_of(r).await[..],
        br#"{"__type":"SerializationException"}"#
    );
}

// ---------------------------------------------------------------- event stream

fn string_header<'a>(message: &'a aws_smithy_types::event_stream::Message, name: &str) -> &'a str {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
        .unwrap()
}

#[test]
fn event_stream_frames_match_an_independent_encoder() {
    // Built with Python's struct and zlib.crc32 and parsed back by botocore's
    // EventStreamBuffer (`botocore.eventstream`), independently of this crate.
    let initial = "0000007200000060ab820d9e0b3a6576656e742d74797065070010696e697469616c2d726573\
                   706f6e73650d3a636f6e74656e742d7479706507001a6170706c69636174696f6e2f782d616d\
                   7a2d6a736f6e2d312e310d3a6d6573736167652d747970650700056576656e747b7dacae6b7d";
    assert_eq!(
        hex::encode(eventstream::initial_response(Encoding::Json)),
        initial.replace(' ', "")
    );
    let exception = "0000009300000071d486c3030f3a657863657074696f6e2d747970650700195265736f7572\
                     63654e6f74466f756e64457863657074696f6e0d3a636f6e74656e742d7479706507001a61\
                     70706c69636174696f6e2f782d616d7a2d6a736f6e2d312e310d3a6d6573736167652d7479\
                     7065070009657863657074696f6e7b226d657373616765223a22676f6e65227d253db42a";
    assert_eq!(
        hex::encode(eventstream::exception(
            Encoding::Json,
            "ResourceNotFoundException",
            "gone"
        )),
        exception.replace(' ', "")
    );
}

#[test]
fn event_stream_frames_decode_back() {
    use aws_smithy_eventstream::frame::read_message_from;

    let frame = eventstream::initial_response(Encoding::Cbor);
    let message = read_message_from(&frame[..]).unwrap();
    assert_eq!(string_header(&message, ":message-type"), "event");
    assert_eq!(string_header(&message, ":event-type"), "initial-response");
    assert_eq!(string_header(&message, ":content-type"), CBOR_CONTENT_TYPE);
    assert_eq!(&message.payload()[..], [0xa0]);

    let event = Doc::map()
        .with(
            "Records",
            vec![
                Doc::map()
                    .with("SequenceNumber", "1")
                    .with(
                        "ApproximateArrivalTimestamp",
                        Doc::Timestamp(1_700_000_000_123),
                    )
                    .with("Data", Bytes::from_static(b"hi"))
                    .with("PartitionKey", "p"),
            ],
        )
        .with("ContinuationSequenceNumber", "1")
        .with("MillisBehindLatest", 0);
    for encoding in [Encoding::Json, Encoding::Cbor] {
        let frame = eventstream::event(encoding, "SubscribeToShardEvent", &event);
        // Prelude: total length, headers length, CRC of the two.
        let total = u32::from_be_bytes(frame[0..4].try_into().unwrap()) as usize;
        assert_eq!(total, frame.len());
        let crc = u32::from_be_bytes(frame[8..12].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&frame[0..8]));
        let message_crc = u32::from_be_bytes(frame[total - 4..].try_into().unwrap());
        assert_eq!(message_crc, crc32fast::hash(&frame[..total - 4]));

        let message = read_message_from(&frame[..]).unwrap();
        assert_eq!(string_header(&message, ":message-type"), "event");
        assert_eq!(
            string_header(&message, ":event-type"),
            "SubscribeToShardEvent"
        );
        assert_eq!(
            string_header(&message, ":content-type"),
            encoding.content_type()
        );
        assert_eq!(message.payload(), &encode(encoding, &event));
        // Every header is a string (the Java SDK reads them all with getString()).
        assert!(
            message
                .headers()
                .iter()
                .all(|h| h.value().as_string().is_ok())
        );
    }

    let frame = eventstream::exception(Encoding::Cbor, "ResourceInUseException", "busy");
    let message = read_message_from(&frame[..]).unwrap();
    assert_eq!(string_header(&message, ":message-type"), "exception");
    assert_eq!(
        string_header(&message, ":exception-type"),
        "ResourceInUseException"
    );
    let payload: Value = ciborium::from_reader(&message.payload()[..]).unwrap();
    assert_eq!(payload, map(vec![("message", text("busy"))]));

    // A corrupted frame is refused.
    let mut bad = frame.to_vec();
    let last = bad.len() - 6;
    bad[last] ^= 1;
    assert!(read_message_from(&bad[..]).is_err());
}

// ---------------------------------------------------------------- robustness

fn ops() -> Vec<Call> {
    let mut calls = Vec::new();
    for encoding in [Encoding::Json, Encoding::Cbor] {
        for op in [
            "PutRecords",
            "CreateStream",
            "SubscribeToShard",
            "AddTagsToStream",
        ] {
            calls.push(call(op, encoding));
        }
        calls.push(everything(encoding));
    }
    calls
}

fn check_no_panic(body: &[u8]) {
    for c in ops() {
        if let Ok(doc) = decode_input(&c, body) {
            let _ = validate_input(&c, &doc);
            let _ = encode(c.encoding, &doc);
        }
    }
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_no_panic(&body);
    }

    #[test]
    fn decode_never_panics_inside_a_map(
        prefix in prop_oneof![Just(vec![0xbfu8]), Just(vec![0xa3u8]), Just(b"{\"".to_vec())],
        key in prop_oneof![Just("Records"), Just("StreamName"), Just("S"), Just("NL"), Just("T"), Just("M"), Just("X")],
        rest in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut body = prefix.clone();
        if body[0] == b'{' {
            body.extend_from_slice(key.as_bytes());
            body.extend_from_slice(b"\":");
        } else {
            body.push(0x60 + key.len() as u8);
            body.extend_from_slice(key.as_bytes());
        }
        body.extend_from_slice(&rest);
        check_no_panic(&body);
    }

    #[test]
    fn decode_never_panics_on_mutated_bodies(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        for encoding in [Encoding::Json, Encoding::Cbor] {
            let mut body = encode(encoding, &sample()).to_vec();
            for (at, byte) in &flips {
                let i = at % body.len();
                body[i] = *byte;
            }
            check_no_panic(&body);
        }
    }
}

// ---------------------------------------------------------------- speed (by hand)

/// `cargo test --release -p ingest-server rpc::tests::put_records_speed -- --ignored --nocapture`
#[test]
#[ignore = "measurement, run by hand"]
fn put_records_speed() {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(vec![0x5au8; 1024]);
    let records: Vec<String> = (0..500)
        .map(|i| format!(r#"{{"Data":"{data}","PartitionKey":"partition-{i}"}}"#))
        .collect();
    let json = format!(
        r#"{{"StreamName":"bench","Records":[{}]}}"#,
        records.join(",")
    );
    let c = call("PutRecords", Encoding::Json);
    let doc = decode_input(&c, json.as_bytes()).unwrap();
    let cbor = encode(Encoding::Cbor, &doc);
    let cc = call("PutRecords", Encoding::Cbor);
    println!(
        "json body {} bytes, cbor body {} bytes",
        json.len(),
        cbor.len()
    );

    let rounds = 400;
    for (name, c, body) in [("json", &c, json.as_bytes()), ("cbor", &cc, &cbor[..])] {
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let doc = decode_input(c, body).unwrap();
            validate_input(c, &doc).unwrap();
            std::hint::black_box(&doc);
        }
        let each = start.elapsed() / rounds;
        println!(
            "{name}: decode+validate {each:?} per PutRecords ({:.0}/s on one core)",
            1.0 / each.as_secs_f64()
        );
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            validate_input(c, std::hint::black_box(&doc)).unwrap();
        }
        println!("{name}: validate alone {:?}", start.elapsed() / rounds);
    }
    // For comparison: only the first half of a Value -> Doc design, and base64 alone.
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(json.as_bytes()).unwrap());
    }
    println!(
        "json: serde_json::Value parse alone {:?}",
        start.elapsed() / rounds
    );
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for _ in 0..500 {
            std::hint::black_box(
                base64::engine::general_purpose::STANDARD
                    .decode(&data)
                    .unwrap(),
            );
        }
    }
    println!(
        "json: base64 decode of 500 records alone {:?}",
        start.elapsed() / rounds
    );
    let out: Doc = (0..500)
        .map(|i| {
            Doc::map()
                .with("SequenceNumber", format!("4959{i:052}"))
                .with("ShardId", "shardId-000000000001")
        })
        .collect();
    let out = Doc::map().with("FailedRecordCount", 0).with("Records", out);
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(encode(Encoding::Json, &out));
    }
    println!(
        "json: encode PutRecords output {:?}",
        start.elapsed() / rounds
    );
}
