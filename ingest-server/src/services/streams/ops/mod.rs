//! The operations, grouped by what they act on.

pub(super) mod account;
pub(super) mod consumers;
pub(super) mod records;
pub(super) mod shards;
pub(super) mod streams;
pub(super) mod tags;

use crate::protocol::error::AwsError;
use crate::protocol::rpc::Doc;

use super::errors;
use super::state::{Status, Stream};
use super::{Inner, StreamsService};

impl StreamsService {
    /// Runs `f` on the stream `input` names, under the catalog lock.
    pub(super) fn read_stream<T>(
        &self,
        input: &Doc,
        f: impl FnOnce(&Stream) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let name = self.stream_name(input)?;
        let inner = self.lock();
        let stream = inner
            .streams
            .get(&name)
            .ok_or_else(|| errors::stream_not_found(&name, &self.config.account_id))?;
        f(stream)
    }

    /// Runs `f` on the stream `input` names and saves the result in the catalog before
    /// answering. `f` checks before it changes anything; if saving fails the change is
    /// undone and the client gets InternalFailure.
    fn update_stream<T>(
        &self,
        input: &Doc,
        f: impl FnOnce(&mut Stream, &mut Inner) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let name = self.stream_name(input)?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(mut stream) = inner.streams.remove(&name) else {
            return Err(errors::stream_not_found(&name, &self.config.account_id));
        };
        let backup = stream.clone();
        let result = f(&mut stream, inner);
        let result = match result {
            // Reads that go through here (tags and policies of an ARN) write nothing.
            Ok(value) if same_entry(&stream, &backup) => Ok(value),
            Ok(value) => match inner.catalog.save_stream(&stream) {
                Ok(()) => Ok(value),
                Err(err) => {
                    tracing::error!(stream = %name, error = %err, "Saving the stream catalog failed.");
                    stream = backup;
                    Err(errors::internal())
                }
            },
            Err(err) => {
                stream = backup;
                Err(err)
            }
        };
        inner.streams.insert(name, stream);
        result
    }

    /// ResourceInUseException unless the stream is ACTIVE.
    fn require_active(&self, stream: &Stream) -> Result<(), AwsError> {
        if stream.status == Status::Active {
            Ok(())
        } else {
            Err(errors::not_active(
                &stream.name,
                &self.config.account_id,
                stream.status,
            ))
        }
    }

    /// Open shards across the account (for the shard limit).
    fn open_shard_count(inner: &Inner) -> u64 {
        inner
            .streams
            .values()
            .map(|s| s.open_shards().count() as u64)
            .sum()
    }

    /// LimitExceededException when `more` shards would exceed the account limit.
    /// `this` is a stream taken out of the map while it is being updated.
    fn check_shard_limit(
        &self,
        inner: &Inner,
        this: Option<&Stream>,
        more: u64,
    ) -> Result<(), AwsError> {
        let current =
            Self::open_shard_count(inner) + this.map_or(0, |s| s.open_shards().count() as u64);
        if current + more > u64::from(self.config.shard_limit) {
            return Err(errors::shard_limit(
                &self.config.account_id,
                &self.config.region,
                current,
                self.config.shard_limit,
                more,
            ));
        }
        Ok(())
    }
}

/// Whether two versions of a stream have the same catalog entry.
fn same_entry(a: &Stream, b: &Stream) -> bool {
    match (serde_json::to_vec(a), serde_json::to_vec(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Opaque pagination tokens: base64 of a small JSON document, with its issue time so
/// that stale ones get ExpiredNextTokenException as on AWS.
mod token {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Serialize, de::DeserializeOwned};

    use crate::protocol::error::AwsError;

    /// How long a NextToken stays valid (AWS: 300 s).
    const TTL_MS: i64 = 300_000;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Envelope<T> {
        issued_ms: i64,
        body: T,
    }

    pub(super) fn encode<T: Serialize>(body: T) -> String {
        let envelope = Envelope {
            issued_ms: super::super::now_ms(),
            body,
        };
        STANDARD.encode(serde_json::to_vec(&envelope).unwrap_or_default())
    }

    pub(super) fn decode<T: DeserializeOwned>(token: &str) -> Result<T, AwsError> {
        let invalid = || AwsError::invalid_argument(format!("Invalid NextToken: {token}"));
        let raw = STANDARD.decode(token).map_err(|_| invalid())?;
        let envelope: Envelope<T> = serde_json::from_slice(&raw).map_err(|_| invalid())?;
        if super::super::now_ms() - envelope.issued_ms > TTL_MS {
            return Err(AwsError::new(
                400,
                "ExpiredNextTokenException",
                "The NextToken has expired.",
            ));
        }
        Ok(envelope.body)
    }
}
