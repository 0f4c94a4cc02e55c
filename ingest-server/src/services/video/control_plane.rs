//! The `kinesisvideo` control plane: streams, retention, tags and data endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::shapes::*;
use super::{RequestContext, VideoService, now_ms};
use crate::protocol::body::decode_json;
use crate::protocol::error::AwsError;
use crate::protocol::router::VideoOperation;
use crate::protocol::validate::{self, Validation};
use crate::storage::{NewStream, StreamRecord, StreamUpdate};

/// Longest retention accepted (the model's documented maximum, ten years).
const MAX_RETENTION_HOURS: i64 = 87_600;
/// Tags per stream (`ResourceTags` max).
const MAX_TAGS: usize = 50;
const API_NAMES: &[&str] = &[
    "PUT_MEDIA",
    "GET_MEDIA",
    "LIST_FRAGMENTS",
    "GET_MEDIA_FOR_FRAGMENT_LIST",
    "GET_HLS_STREAMING_SESSION_URL",
    "GET_DASH_STREAMING_SESSION_URL",
    "GET_CLIP",
    "GET_IMAGES",
];

fn check_tags<'a>(v: &mut Validation, field: &str, tags: impl Iterator<Item = (&'a str, &'a str)>) {
    for (key, value) in tags {
        v.string(&format!("{field}.key"), Some(key), 1, 128, &validate::TAG);
        v.string(
            &format!("{field}.value"),
            Some(value),
            0,
            256,
            &validate::TAG,
        );
    }
}

impl VideoService {
    /// Serves one control-plane operation.
    pub(super) async fn control_plane(
        self: &Arc<Self>,
        op: VideoOperation,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Value, AwsError> {
        use VideoOperation::*;
        match op {
            CreateStream => self.create_stream(decode_json(body)?).await,
            DescribeStream => {
                let input: StreamRef = decode_json(body)?;
                let mut v = Validation::new();
                input.check(&mut v);
                v.finish()?;
                let stream = self.resolve_ref(&input).await?;
                Ok(json!({ "StreamInfo": stream_info(&stream) }))
            }
            ListStreams => self.list_streams(decode_json(body)?).await,
            DeleteStream => self.delete_stream(decode_json(body)?).await,
            UpdateStream => self.update_stream(decode_json(body)?).await,
            UpdateDataRetention => self.update_data_retention(decode_json(body)?).await,
            GetDataEndpoint => self.get_data_endpoint(decode_json(body)?, ctx).await,
            TagStream => {
                let input: TagStreamInput = decode_json(body)?;
                let mut v = Validation::new();
                input.stream.check(&mut v);
                v.required("tags", input.tags.as_ref());
                v.count("tags", input.tags.as_ref().map(BTreeMap::len), 1, MAX_TAGS);
                if let Some(tags) = &input.tags {
                    check_tags(
                        &mut v,
                        "tags",
                        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                }
                v.finish()?;
                let stream = self.resolve_ref(&input.stream).await?;
                self.add_tags(stream, input.tags.unwrap_or_default()).await
            }
            TagResource => {
                let input: TagResourceInput = decode_json(body)?;
                let mut v = Validation::new();
                v.required("resourceARN", input.resource_arn.as_ref());
                v.check(&validate::RESOURCE_ARN, input.resource_arn.as_deref());
                v.required("tags", input.tags.as_ref());
                v.count("tags", input.tags.as_ref().map(Vec::len), 1, MAX_TAGS);
                let mut tags = BTreeMap::new();
                for tag in input.tags.unwrap_or_default() {
                    v.required("tags.member.key", tag.key.as_ref());
                    v.required("tags.member.value", tag.value.as_ref());
                    if let (Some(k), Some(val)) = (tag.key, tag.value) {
                        tags.insert(k, val);
                    }
                }
                check_tags(
                    &mut v,
                    "tags.member",
                    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                v.finish()?;
                let stream = self.resolve(None, input.resource_arn.as_deref()).await?;
                self.add_tags(stream, tags).await
            }
            UntagStream => {
                let input: UntagStreamInput = decode_json(body)?;
                let mut v = Validation::new();
                input.stream.check(&mut v);
                v.required("tagKeyList", input.tag_key_list.as_ref());
                v.count(
                    "tagKeyList",
                    input.tag_key_list.as_ref().map(Vec::len),
                    1,
                    MAX_TAGS,
                );
                v.finish()?;
                let stream = self.resolve_ref(&input.stream).await?;
                self.remove_tags(stream, input.tag_key_list.unwrap_or_default())
                    .await
            }
            UntagResource => {
                let input: UntagResourceInput = decode_json(body)?;
                let mut v = Validation::new();
                v.required("resourceARN", input.resource_arn.as_ref());
                v.check(&validate::RESOURCE_ARN, input.resource_arn.as_deref());
                v.required("tagKeyList", input.tag_key_list.as_ref());
                v.count(
                    "tagKeyList",
                    input.tag_key_list.as_ref().map(Vec::len),
                    1,
                    MAX_TAGS,
                );
                v.finish()?;
                let stream = self.resolve(None, input.resource_arn.as_deref()).await?;
                self.remove_tags(stream, input.tag_key_list.unwrap_or_default())
                    .await
            }
            ListTagsForStream => {
                let input: ListTagsForStreamInput = decode_json(body)?;
                let mut v = Validation::new();
                input.stream.check(&mut v);
                v.check(&validate::NEXT_TOKEN_RULE, input.next_token.as_deref());
                v.finish()?;
                let stream = self.resolve_ref(&input.stream).await?;
                Ok(json!({ "Tags": stream.tags }))
            }
            ListTagsForResource => {
                let input: ListTagsForResourceInput = decode_json(body)?;
                let mut v = Validation::new();
                v.required("resourceARN", input.resource_arn.as_ref());
                v.check(&validate::RESOURCE_ARN, input.resource_arn.as_deref());
                v.check(&validate::NEXT_TOKEN_RULE, input.next_token.as_deref());
                v.finish()?;
                let stream = self.resolve(None, input.resource_arn.as_deref()).await?;
                Ok(json!({ "Tags": stream.tags }))
            }
            other => Err(AwsError::invalid_argument(format!(
                "{other:?} is not a control-plane operation."
            ))),
        }
    }

    async fn create_stream(&self, input: CreateStreamInput) -> Result<Value, AwsError> {
        let mut v = Validation::new();
        v.required("streamName", input.stream_name.as_ref());
        v.check(&validate::STREAM_NAME, input.stream_name.as_deref());
        v.check(&validate::DEVICE_NAME, input.device_name.as_deref());
        v.check(&validate::MEDIA_TYPE_RULE, input.media_type.as_deref());
        v.check(&validate::KMS_KEY_ID, input.kms_key_id.as_deref());
        v.int(
            "dataRetentionInHours",
            input.data_retention_in_hours,
            0,
            MAX_RETENTION_HOURS,
        );
        v.count("tags", input.tags.as_ref().map(BTreeMap::len), 1, MAX_TAGS);
        if let Some(tags) = &input.tags {
            check_tags(
                &mut v,
                "tags",
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        v.finish()?;
        let new = NewStream {
            name: input.stream_name.unwrap_or_default(),
            device_name: input.device_name,
            media_type: input.media_type,
            kms_key_id: input.kms_key_id,
            retention_hours: input.data_retention_in_hours.unwrap_or(0),
            tags: input.tags.unwrap_or_default(),
            arn_prefix: format!(
                "arn:aws:kinesisvideo:{}:{}",
                self.config.region, self.config.account_id
            ),
            now_ms: now_ms(),
        };
        let stream = self
            .store_call(move |store| store.create_stream(new))
            .await?;
        tracing::info!(stream = %stream.name, retention_hours = stream.retention_hours, "Stream created.");
        Ok(json!({ "StreamARN": stream.arn }))
    }

    async fn list_streams(&self, input: ListStreamsInput) -> Result<Value, AwsError> {
        let mut v = Validation::new();
        v.int("maxResults", input.max_results, 1, 10_000);
        v.check(&validate::NEXT_TOKEN_RULE, input.next_token.as_deref());
        let condition = input.stream_name_condition.as_ref();
        v.one_of(
            "streamNameCondition.comparisonOperator",
            condition.and_then(|c| c.comparison_operator.as_deref()),
            &["BEGINS_WITH"],
        );
        v.string(
            "streamNameCondition.comparisonValue",
            condition.and_then(|c| c.comparison_value.as_deref()),
            1,
            256,
            &validate::NAME,
        );
        v.finish()?;
        let after = match input.next_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(
                decode_token(token)
                    .ok_or_else(|| AwsError::invalid_argument("The NextToken is not valid."))?,
            ),
            None => None,
        };
        let prefix = condition.and_then(|c| c.comparison_value.clone());
        let limit = input.max_results.unwrap_or(10_000) as usize;
        let page = self
            .store_call(move |store| {
                store.list_streams(prefix.as_deref(), after.as_deref(), limit + 1)
            })
            .await?;
        let more = page.len() > limit;
        let page = &page[..page.len().min(limit)];
        let mut out = json!({ "StreamInfoList": page.iter().map(stream_info).collect::<Vec<_>>() });
        if more && let Some(last) = page.last() {
            out["NextToken"] = json!(encode_token(&last.name));
        }
        Ok(out)
    }

    async fn delete_stream(&self, input: DeleteStreamInput) -> Result<Value, AwsError> {
        let mut v = Validation::new();
        v.required("streamARN", input.stream_arn.as_ref());
        v.check(&validate::STREAM_ARN, input.stream_arn.as_deref());
        v.check(&validate::CURRENT_VERSION, input.current_version.as_deref());
        v.finish()?;
        let stream = self.resolve(None, input.stream_arn.as_deref()).await?;
        let id = stream.id;
        let version = input.current_version;
        self.store_call(move |store| store.delete_stream(id, version.as_deref()))
            .await?;
        self.live.remove(id);
        tracing::info!(stream = %stream.name, "Stream deleted.");
        Ok(json!({}))
    }

    async fn update_stream(&self, input: UpdateStreamInput) -> Result<Value, AwsError> {
        let mut v = Validation::new();
        input.stream.check(&mut v);
        v.required("currentVersion", input.current_version.as_ref());
        v.check(&validate::CURRENT_VERSION, input.current_version.as_deref());
        v.check(&validate::DEVICE_NAME, input.device_name.as_deref());
        v.check(&validate::MEDIA_TYPE_RULE, input.media_type.as_deref());
        v.finish()?;
        let stream = self.resolve_ref(&input.stream).await?;
        let update = StreamUpdate {
            device_name: input.device_name,
            media_type: input.media_type,
            retention_hours: None,
        };
        self.apply_update(&stream, input.current_version.unwrap_or_default(), update)
            .await?;
        Ok(json!({}))
    }

    async fn update_data_retention(
        &self,
        input: UpdateDataRetentionInput,
    ) -> Result<Value, AwsError> {
        let mut v = Validation::new();
        input.stream.check(&mut v);
        v.required("currentVersion", input.current_version.as_ref());
        v.check(&validate::CURRENT_VERSION, input.current_version.as_deref());
        v.required("operation", input.operation.as_ref());
        v.one_of(
            "operation",
            input.operation.as_deref(),
            &["INCREASE_DATA_RETENTION", "DECREASE_DATA_RETENTION"],
        );
        v.required(
            "dataRetentionChangeInHours",
            input.data_retention_change_in_hours.as_ref(),
        );
        v.int(
            "dataRetentionChangeInHours",
            input.data_retention_change_in_hours,
            1,
            i64::from(i32::MAX),
        );
        v.finish()?;
        let stream = self.resolve_ref(&input.stream).await?;
        let change = input.data_retention_change_in_hours.unwrap_or(0);
        let target = match input.operation.as_deref() {
            Some("INCREASE_DATA_RETENTION") => stream.retention_hours + change,
            _ => stream.retention_hours - change,
        };
        if !(0..=MAX_RETENTION_HOURS).contains(&target) {
            return Err(AwsError::invalid_argument(format!(
                "The resulting data retention ({target} hours) must be between 0 and {MAX_RETENTION_HOURS} hours."
            )));
        }
        let update = StreamUpdate {
            retention_hours: Some(target),
            ..Default::default()
        };
        self.apply_update(&stream, input.current_version.unwrap_or_default(), update)
            .await?;
        Ok(json!({}))
    }

    async fn apply_update(
        &self,
        stream: &StreamRecord,
        version: String,
        update: StreamUpdate,
    ) -> Result<StreamRecord, AwsError> {
        let id = stream.id;
        self.store_call(move |store| store.update_stream(id, &version, update))
            .await
    }

    async fn get_data_endpoint(
        &self,
        input: GetDataEndpointInput,
        ctx: &RequestContext,
    ) -> Result<Value, AwsError> {
        let mut v = Validation::new();
        input.stream.check(&mut v);
        v.required("aPIName", input.api_name.as_ref());
        v.one_of("aPIName", input.api_name.as_deref(), API_NAMES);
        v.finish()?;
        self.resolve_ref(&input.stream).await?;
        let host = self.config.advertise_host.as_deref().unwrap_or(&ctx.host);
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // an IPv6 literal
        } else {
            host.to_owned()
        };
        Ok(json!({ "DataEndpoint": format!("{}://{}:{}", self.scheme, host, self.data_port) }))
    }

    async fn add_tags(
        &self,
        stream: StreamRecord,
        tags: BTreeMap<String, String>,
    ) -> Result<Value, AwsError> {
        let id = stream.id;
        self.store_call(move |store| store.modify_stream_tags(id, tags, Vec::new(), MAX_TAGS))
            .await?;
        Ok(json!({}))
    }

    async fn remove_tags(
        &self,
        stream: StreamRecord,
        keys: Vec<String>,
    ) -> Result<Value, AwsError> {
        let id = stream.id;
        self.store_call(move |store| store.modify_stream_tags(id, BTreeMap::new(), keys, MAX_TAGS))
            .await?;
        Ok(json!({}))
    }
}
