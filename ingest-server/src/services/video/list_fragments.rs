//! `ListFragments`: the fragment index of a stream, by timestamp range, paginated.

use serde_json::{Value, json};

use super::VideoService;
use super::shapes::*;
use crate::protocol::body::decode_json;
use crate::protocol::error::AwsError;
use crate::protocol::validate::{self, Validation};
use crate::storage::{FragmentQuery, TimestampKind};

/// Parses a `FragmentSelectorType`.
pub(super) fn timestamp_kind(selector: &str) -> Option<TimestampKind> {
    match selector {
        "PRODUCER_TIMESTAMP" => Some(TimestampKind::Producer),
        "SERVER_TIMESTAMP" => Some(TimestampKind::Server),
        _ => None,
    }
}

impl VideoService {
    pub(super) async fn list_fragments(&self, body: &[u8]) -> Result<Value, AwsError> {
        let input: ListFragmentsInput = decode_json(body)?;
        let mut v = Validation::new();
        input.stream.check(&mut v);
        v.int("maxResults", input.max_results, 1, 1000);
        v.string(
            "nextToken",
            input.next_token.as_deref(),
            1,
            4096,
            &validate::NEXT_TOKEN,
        );
        let selector = input.fragment_selector.as_ref();
        if let Some(selector) = selector {
            v.required(
                "fragmentSelector.fragmentSelectorType",
                selector.fragment_selector_type.as_ref(),
            );
            v.one_of(
                "fragmentSelector.fragmentSelectorType",
                selector.fragment_selector_type.as_deref(),
                &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
            );
            v.required(
                "fragmentSelector.timestampRange",
                selector.timestamp_range.as_ref(),
            );
            if let Some(range) = &selector.timestamp_range {
                v.required(
                    "fragmentSelector.timestampRange.startTimestamp",
                    range.start_timestamp.as_ref(),
                );
                v.required(
                    "fragmentSelector.timestampRange.endTimestamp",
                    range.end_timestamp.as_ref(),
                );
            }
        }
        v.finish()?;
        let range = match selector {
            Some(s) => {
                let kind = s.fragment_selector_type.as_deref().and_then(timestamp_kind);
                let range = s.timestamp_range.as_ref();
                match (
                    kind,
                    range.and_then(|r| r.start_timestamp),
                    range.and_then(|r| r.end_timestamp),
                ) {
                    (Some(kind), Some(start), Some(end)) => {
                        if start.millis() > end.millis() {
                            return Err(AwsError::invalid_argument(
                                "The StartTimestamp must be earlier than or equal to the EndTimestamp.",
                            ));
                        }
                        Some((kind, start.millis(), end.millis()))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let stream = self.resolve_ref(&input.stream).await?;
        let after_seq = match &input.next_token {
            Some(token) => Some(
                decode_token(token)
                    .and_then(|t| t.strip_prefix("seq:").and_then(|n| n.parse::<i64>().ok()))
                    .ok_or_else(|| AwsError::invalid_argument("The NextToken is not valid."))?,
            ),
            None => None,
        };
        let limit = input.max_results.unwrap_or(1000) as usize;
        let query = FragmentQuery {
            range,
            after_seq,
            limit: limit + 1,
        };
        let id = stream.id;
        let page = self
            .store_call(move |store| store.list_fragments(id, &query))
            .await?;
        let more = page.len() > limit;
        let page = &page[..page.len().min(limit)];
        let mut out = json!({ "Fragments": page.iter().map(fragment_info).collect::<Vec<_>>() });
        if more && let Some(last) = page.last() {
            out["NextToken"] = json!(encode_token(&format!("seq:{}", last.seq)));
        }
        Ok(out)
    }
}
