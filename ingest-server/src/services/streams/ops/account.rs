//! Account-wide operations: limits, account settings and resource policies.

use std::sync::Arc;

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::super::state::{Mode, Stream};
use super::super::{StreamsService, errors, now_ms};
use super::consumers::stream_of_consumer;
use super::streams::ON_DEMAND_STREAM_LIMIT;

type Svc = Arc<StreamsService>;

/// How long a minimum throughput billing commitment must last (AWS: 24 hours).
const COMMITMENT_MIN_MS: i64 = 24 * 3_600_000;

pub(in super::super) fn describe_limits(svc: &Svc) -> Result<Doc, AwsError> {
    let inner = svc.lock();
    let open = StreamsService::open_shard_count(&inner);
    let on_demand = inner
        .streams
        .values()
        .filter(|s| s.mode == Mode::OnDemand)
        .count();
    Ok(Doc::map()
        .with("ShardLimit", svc.config.shard_limit)
        .with("OpenShardCount", open)
        .with("OnDemandStreamCount", on_demand)
        .with("OnDemandStreamCountLimit", ON_DEMAND_STREAM_LIMIT))
}

fn settings_doc(settings: &super::super::catalog::AccountSettings) -> Doc {
    let now = now_ms();
    let status = match (settings.commitment_enabled, settings.ended_ms) {
        (false, _) => "DISABLED",
        (true, Some(end)) if end > now => "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
        (true, Some(_)) => "DISABLED",
        (true, None) => "ENABLED",
    };
    Doc::map().with(
        "MinimumThroughputBillingCommitment",
        Doc::map()
            .with("Status", status)
            .with("StartedAt", settings.started_ms.map(Doc::Timestamp))
            .with("EndedAt", settings.ended_ms.map(Doc::Timestamp))
            .with(
                "EarliestAllowedEndAt",
                settings.earliest_end_ms.map(Doc::Timestamp),
            ),
    )
}

pub(in super::super) fn describe_settings(svc: &Svc) -> Result<Doc, AwsError> {
    Ok(settings_doc(&svc.lock().account))
}

pub(in super::super) fn update_settings(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let enable = input
        .get("MinimumThroughputBillingCommitment")
        .and_then(|d| d.str("Status"))
        == Some("ENABLED");
    let mut inner = svc.lock();
    let now = now_ms();
    let mut settings = inner.account.clone();
    let running = settings.commitment_enabled && settings.ended_ms.is_none_or(|end| end > now);
    if enable {
        if running {
            // Enabling again cancels a scheduled end.
            settings.ended_ms = None;
        } else {
            settings.commitment_enabled = true;
            settings.started_ms = Some(now);
            settings.ended_ms = None;
            settings.earliest_end_ms = Some(now + COMMITMENT_MIN_MS);
        }
    } else if settings.commitment_enabled && settings.ended_ms.is_none() {
        // A commitment runs at least until its earliest allowed end.
        settings.ended_ms = Some(settings.earliest_end_ms.unwrap_or(now).max(now));
    }
    inner
        .catalog
        .save_account_settings(&settings)
        .map_err(|err| {
            tracing::error!(error = %err, "Saving account settings failed.");
            errors::internal()
        })?;
    inner.account = settings;
    Ok(settings_doc(&inner.account))
}

/// Runs `f` on the policy slot of the stream or consumer an ARN names.
fn with_policy<T>(
    svc: &Svc,
    arn: &str,
    f: impl FnOnce(&mut Option<String>) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    if arn.contains("/consumer/") {
        let lookup = Doc::map().with("StreamName", stream_of_consumer(svc, arn)?);
        svc.update_stream(&lookup, |stream: &mut Stream, _| {
            let consumer = stream
                .consumers
                .iter_mut()
                .find(|c| c.arn == arn)
                .ok_or_else(|| errors::arn_not_found(arn))?;
            f(&mut consumer.policy)
        })
    } else {
        let lookup = Doc::map().with("StreamARN", arn);
        svc.update_stream(&lookup, |stream: &mut Stream, _| f(&mut stream.policy))
    }
}

pub(in super::super) fn put_policy(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    let policy = input.str("Policy").unwrap_or_default().to_owned();
    match serde_json::from_str::<serde_json::Value>(&policy) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return Err(AwsError::invalid_argument(
                "Policy is not a valid JSON policy document.",
            ));
        }
    }
    with_policy(svc, input.str("ResourceARN").unwrap_or_default(), |slot| {
        *slot = Some(policy);
        Ok(Doc::map())
    })
}

pub(in super::super) fn get_policy(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    with_policy(svc, input.str("ResourceARN").unwrap_or_default(), |slot| {
        Ok(Doc::map().with("Policy", slot.clone().unwrap_or_else(|| "{}".to_owned())))
    })
}

pub(in super::super) fn delete_policy(svc: &Svc, input: &Doc) -> Result<Doc, AwsError> {
    with_policy(svc, input.str("ResourceARN").unwrap_or_default(), |slot| {
        *slot = None;
        Ok(Doc::map())
    })
}
