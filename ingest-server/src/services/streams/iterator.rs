//! Shard iterators: opaque tokens naming a stream incarnation, a shard and a log
//! position, stamped with their creation time (they expire, by default after 5 minutes)
//! and authenticated with an HMAC under a key kept in the data directory, so they
//! survive a restart but cannot be forged or edited.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const FIXED: usize = 1 + 8 + 4 + 8 + 8;

/// What an iterator points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) stream: String,
    /// Creation time of the stream incarnation (a re-created name invalidates old iterators).
    pub(super) stream_created_ms: i64,
    pub(super) shard_index: u32,
    /// Next log position to read.
    pub(super) position: u64,
    pub(super) issued_ms: i64,
}

/// Signs and checks iterators.
pub(super) struct IteratorKey([u8; 32]);

impl std::fmt::Debug for IteratorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorKey(..)")
    }
}

impl IteratorKey {
    /// A key from its bytes.
    pub(super) fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(body);
        mac
    }

    /// The token for a position.
    pub(super) fn encode(&self, p: &Position) -> String {
        let mut body = Vec::with_capacity(FIXED + p.stream.len() + MAC_LEN);
        body.push(VERSION);
        body.extend_from_slice(&p.stream_created_ms.to_be_bytes());
        body.extend_from_slice(&p.shard_index.to_be_bytes());
        body.extend_from_slice(&p.position.to_be_bytes());
        body.extend_from_slice(&p.issued_ms.to_be_bytes());
        body.extend_from_slice(p.stream.as_bytes());
        let tag = self.mac(&body).finalize().into_bytes();
        body.extend_from_slice(&tag[..MAC_LEN]);
        STANDARD.encode(body)
    }

    /// The position of a token this server issued; None for anything else.
    pub(super) fn decode(&self, token: &str) -> Option<Position> {
        let raw = STANDARD.decode(token).ok()?;
        if raw.len() < FIXED + 1 + MAC_LEN || raw[0] != VERSION {
            return None;
        }
        let (body, tag) = raw.split_at(raw.len() - MAC_LEN);
        self.mac(body).verify_truncated_left(tag).ok()?;
        let int =
            |range: std::ops::Range<usize>| -> [u8; 8] { body[range].try_into().unwrap_or([0; 8]) };
        Some(Position {
            stream_created_ms: i64::from_be_bytes(int(1..9)),
            shard_index: u32::from_be_bytes(body[9..13].try_into().ok()?),
            position: u64::from_be_bytes(int(13..21)),
            issued_ms: i64::from_be_bytes(int(21..29)),
            stream: String::from_utf8(body[FIXED..].to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Position {
        Position {
            stream: "orders".into(),
            stream_created_ms: 1_700_000_000_000,
            shard_index: 2,
            position: 99,
            issued_ms: 1_700_000_100_000,
        }
    }

    #[test]
    fn round_trips() {
        let key = IteratorKey::new([7; 32]);
        let token = key.encode(&sample());
        assert_eq!(key.decode(&token), Some(sample()));
    }

    #[test]
    fn rejects_forgeries_and_garbage() {
        let key = IteratorKey::new([7; 32]);
        let token = key.encode(&sample());
        assert_eq!(IteratorKey::new([8; 32]).decode(&token), None);
        let mut raw = STANDARD.decode(&token).unwrap();
        raw[20] ^= 1;
        assert_eq!(key.decode(&STANDARD.encode(&raw)), None);
        assert_eq!(key.decode("not base64!"), None);
        assert_eq!(key.decode(""), None);
        assert_eq!(key.decode("AAAA"), None);
    }
}
