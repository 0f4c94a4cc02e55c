//! Enhanced fan-out consumers: register, deregister, describe, list. A consumer is
//! CREATING, then ACTIVE after the configured delay; deregistered, DELETING, then gone.

use std::sync::Arc;

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::super::errors;
use super::super::state::{Consumer, Status, Stream};
use super::super::{StreamsService, now_ms};
use super::token;

type Svc = Arc<StreamsService>;

/// Consumers per stream (AWS's limit).
const MAX_CONSUMERS: usize = 20;

/// A consumer's status now, None once a deregistration has finished.
pub(in super::super) fn effective_status(c: &Consumer, now: i64) -> Option<Status> {
    match c.status {
        Status::Creating if now >= c.until_ms => Some(Status::Active),
        Status::Deleting if now >= c.until_ms => None,
        other => Some(other),
    }
}

fn consumer_doc(c: &Consumer, status: Status) -> Doc {
    Doc::map()
        .with("ConsumerName", c.name.as_str())
        .with("ConsumerARN", c.arn.as_str())
        .with("ConsumerStatus", status.as_str())
        .with("ConsumerCreationTimestamp", Doc::Timestamp(c.created_ms))
}

/// The stream name inside a consumer ARN (`<stream ARN>/consumer/<name>:<secs>`).
pub(in super::super) fn stream_of_consumer(
    svc: &StreamsService,
    arn: &str,
) -> Result<String, AwsError> {
    let stream_arn = arn
        .split_once("/consumer/")
        .map(|(s, _)| s)
        .ok_or_else(|| errors::arn_not_found(arn))?;
    svc.name_from_arn(stream_arn)
}

/// Picks the consumer an input names among a stream's consumers.
type ConsumerMatch = Box<dyn Fn(&Consumer) -> bool>;

/// The consumer an input names: ConsumerARN, or StreamARN with ConsumerName. Returns
/// the lookup of its stream and the test that finds it there.
fn locate(svc: &StreamsService, input: &Doc) -> Result<(Doc, ConsumerMatch), AwsError> {
    if let Some(arn) = input.str("ConsumerARN") {
        let stream = stream_of_consumer(svc, arn)?;
        let arn = arn.to_owned();
        return Ok((
            Doc::map().with("StreamName", stream),
            Box::new(move |c: &Consumer| c.arn == arn),
        ));
    }
    match (input.str("StreamARN"), input.str("ConsumerName")) {
        (Some(stream_arn), Some(name)) => {
            let name = name.to_owned();
            Ok((
                Doc::map().with("StreamARN", stream_arn),
                Box::new(move |c: &Consumer| c.name == name),
            ))
        }
        _ => Err(AwsError::invalid_argument(
            "Either ConsumerARN or both StreamARN and ConsumerName must be provided.",
        )),
    }
}

fn consumer_not_found(input: &Doc) -> AwsError {
    let what = input
        .str("ConsumerARN")
        .or_else(|| input.str("ConsumerName"))
        .unwrap_or_default();
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Consumer {what} not found."),
    )
}

pub(in super::super) fn register(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let name = input.str("ConsumerName").unwrap_or_default().to_owned();
    let tags = super::tags::tag_map(input);
    let delay = svc.config.state_delay.as_millis() as i64;
    svc.update_stream(input, |stream, _| {
        if matches!(stream.status, Status::Creating | Status::Deleting) {
            return Err(errors::not_active(
                &stream.name,
                &svc.config.account_id,
                stream.status,
            ));
        }
        let now = now_ms();
        stream
            .consumers
            .retain(|c| effective_status(c, now).is_some());
        if stream.consumers.iter().any(|c| c.name == name) {
            return Err(AwsError::in_use(format!(
                "Consumer {name} under stream {} already exists.",
                stream.arn
            )));
        }
        if stream.consumers.len() >= MAX_CONSUMERS {
            return Err(AwsError::new(
                400,
                "LimitExceededException",
                format!(
                    "Stream {} already has {MAX_CONSUMERS} registered consumers, the limit.",
                    stream.arn
                ),
            ));
        }
        let consumer = Consumer {
            arn: format!("{}/consumer/{name}:{}", stream.arn, now / 1000),
            name: name.clone(),
            created_ms: now,
            status: Status::Creating,
            until_ms: now + delay,
            tags,
            policy: None,
        };
        let doc = consumer_doc(&consumer, Status::Creating);
        stream.consumers.push(consumer);
        Ok(Doc::map().with("Consumer", doc))
    })
}

pub(in super::super) fn deregister(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let (lookup, matches) = locate(svc, input)?;
    let delay = svc.config.state_delay.as_millis() as i64;
    svc.update_stream(&lookup, |stream, _| {
        let now = now_ms();
        let consumer = stream
            .consumers
            .iter_mut()
            .find(|c| {
                matches(c) && matches!(effective_status(c, now), Some(s) if s != Status::Deleting)
            })
            .ok_or_else(|| consumer_not_found(input))?;
        consumer.status = Status::Deleting;
        consumer.until_ms = now + delay;
        Ok(Doc::map())
    })
}

pub(in super::super) fn describe(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let (lookup, matches) = locate(svc, input)?;
    svc.read_stream(&lookup, |stream| {
        let now = now_ms();
        let (consumer, status) = stream
            .consumers
            .iter()
            .filter(|c| matches(c))
            .find_map(|c| effective_status(c, now).map(|s| (c, s)))
            .ok_or_else(|| consumer_not_found(input))?;
        let doc = consumer_doc(consumer, status).with("StreamARN", stream.arn.as_str());
        Ok(Doc::map().with("ConsumerDescription", doc))
    })
}

pub(in super::super) fn list(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let max = input.int("MaxResults").unwrap_or(100).max(1) as usize;
    let after: Option<String> = input.str("NextToken").map(token::decode).transpose()?;
    svc.read_stream(input, |stream: &Stream| {
        let now = now_ms();
        let mut live: Vec<(&Consumer, Status)> = stream
            .consumers
            .iter()
            .filter_map(|c| effective_status(c, now).map(|s| (c, s)))
            .filter(|(c, _)| after.as_ref().is_none_or(|a| c.name.as_str() > a.as_str()))
            .collect();
        live.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let more = live.len() > max;
        live.truncate(max);
        let next = match live.last() {
            Some((last, _)) if more => Some(token::encode(&last.name)),
            _ => None,
        };
        let consumers: Vec<Doc> = live.iter().map(|(c, s)| consumer_doc(c, *s)).collect();
        Ok(Doc::map()
            .with("Consumers", consumers)
            .with("NextToken", next))
    })
}
