//! Tags on streams (AddTagsToStream & co.) and on stream or consumer ARNs
//! (TagResource & co.).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::super::StreamsService;
use super::super::state::Stream;
use super::consumers::stream_of_consumer;
use super::streams::MAX_TAGS;

type Svc = Arc<StreamsService>;

/// The `Tags` map of an input.
pub(in super::super) fn tag_map(input: &Doc) -> BTreeMap<String, String> {
    input
        .entries("Tags")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Doc> {
    tags.iter()
        .map(|(k, v)| Doc::map().with("Key", k.as_str()).with("Value", v.as_str()))
        .collect()
}

fn keys(input: &Doc) -> Vec<String> {
    input
        .list("TagKeys")
        .iter()
        .filter_map(Doc::as_str)
        .map(str::to_owned)
        .collect()
}

/// AWS's tag character rule: Unicode letters, digits, white space and `_ . / = + - % @`.
/// (kinesalite records the ranges AWS accepts as letters.)
pub(in super::super) fn check_tag_chars<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<(), AwsError> {
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || "_./=+-@% ".contains(c)
            || ('\u{C0}'..='\u{1FFF}').contains(&c)
            || ('\u{2C00}'..='\u{D7FF}').contains(&c)
    };
    if texts.into_iter().any(|t| !t.chars().all(allowed)) {
        return Err(AwsError::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, \
             white space, _ . / = + - % @.",
        ));
    }
    Ok(())
}

fn add(
    target: &mut BTreeMap<String, String>,
    new: BTreeMap<String, String>,
    what: &str,
    account: &str,
) -> Result<(), AwsError> {
    check_tag_chars(new.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
    let total = target
        .keys()
        .chain(new.keys().filter(|k| !target.contains_key(*k)))
        .count();
    if total > MAX_TAGS {
        return Err(AwsError::invalid_argument(format!(
            "Failed to add tags to {what} under account {account} because a given stream cannot \
             have more than {MAX_TAGS} tags associated with it."
        )));
    }
    target.extend(new);
    Ok(())
}

pub(in super::super) fn add_to_stream(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let new = tag_map(input);
    svc.update_stream(input, |stream, _| {
        let what = format!("stream {}", stream.name);
        add(&mut stream.tags, new, &what, &svc.config.account_id)?;
        Ok(Doc::map())
    })
}

pub(in super::super) fn remove_from_stream(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let keys = keys(input);
    check_tag_chars(keys.iter().map(String::as_str))?;
    svc.update_stream(input, |stream, _| {
        for key in &keys {
            stream.tags.remove(key);
        }
        Ok(Doc::map())
    })
}

pub(in super::super) fn list_for_stream(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let limit = input.int("Limit").unwrap_or(100).max(1) as usize;
    let after = input.str("ExclusiveStartTagKey");
    svc.read_stream(input, |stream| {
        let mut tags = stream
            .tags
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a));
        let page: BTreeMap<String, String> = tags
            .by_ref()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let more = tags.next().is_some();
        Ok(Doc::map()
            .with("Tags", tag_list(&page))
            .with("HasMoreTags", more))
    })
}

/// Runs `f` on the tags of the stream or consumer an ARN names.
fn with_resource_tags<T>(
    svc: &Svc,
    arn: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>, &str) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    if arn.contains("/consumer/") {
        let stream = stream_of_consumer(svc, arn)?;
        let lookup = Doc::map().with("StreamName", stream);
        svc.update_stream(&lookup, |stream: &mut Stream, _| {
            let consumer = stream
                .consumers
                .iter_mut()
                .find(|c| c.arn == arn)
                .ok_or_else(|| super::super::errors::arn_not_found(arn))?;
            f(&mut consumer.tags, &format!("consumer {arn}"))
        })
    } else {
        let lookup = Doc::map().with("StreamARN", arn);
        svc.update_stream(&lookup, |stream: &mut Stream, _| {
            let what = format!("stream {}", stream.name);
            f(&mut stream.tags, &what)
        })
    }
}

pub(in super::super) fn tag_resource(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let new = tag_map(input);
    let account = svc.config.account_id.clone();
    with_resource_tags(
        svc,
        input.str("ResourceARN").unwrap_or_default(),
        |tags, what| {
            add(tags, new, what, &account)?;
            Ok(Doc::map())
        },
    )
}

pub(in super::super) fn untag_resource(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let keys = keys(input);
    check_tag_chars(keys.iter().map(String::as_str))?;
    with_resource_tags(
        svc,
        input.str("ResourceARN").unwrap_or_default(),
        |tags, _| {
            for key in &keys {
                tags.remove(key);
            }
            Ok(Doc::map())
        },
    )
}

pub(in super::super) fn list_for_resource(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    with_resource_tags(
        svc,
        input.str("ResourceARN").unwrap_or_default(),
        |tags, _| Ok(Doc::map().with("Tags", tag_list(tags))),
    )
}
