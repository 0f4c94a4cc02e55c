//! Streaming sessions: the session token in the HLS/DASH URLs and the in-memory registry of
//! active sessions.
//!
//! **Token.** Self-contained and tamper-proof: the session parameters in a fixed binary
//! layout, followed by the first 16 bytes of their HMAC-SHA256, base64url without padding
//! (about 110 characters, small enough to repeat on every segment URI of a 5000-entry
//! playlist). The HMAC key is random per server start, so sessions end when the server
//! restarts, like an expired AWS session (players ask for a new URL). A token whose tag does
//! not match, that does not decode, or whose expiry has passed is refused with
//! `NotAuthorizedException`, before anything is read.
//!
//! **Registry.** AWS allows 10 active (created, not expired) sessions per stream; the
//! registry counts them per stream and protocol (HLS and DASH separately, as AWS lists the
//! two limits separately) and holds what a session needs between requests: the video track
//! of its first fragment and its [`Timeline`] (media sequence numbers, discontinuities,
//! the live window). Expired sessions are dropped on the next insert or lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::selection::{DiscontinuityMode, Kind, Timeline};

/// AWS's limit of active streaming sessions per stream (and protocol).
pub(crate) const MAX_SESSIONS_PER_STREAM: usize = 10;

/// Bytes of the HMAC-SHA256 tag kept in a token (128 bits).
const TAG_LEN: usize = 16;

/// Token layout version.
const TOKEN_VERSION: u8 = 1;

/// HLS or DASH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Protocol {
    Hls,
    Dash,
}

/// `PlaybackMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Live,
    LiveReplay,
    OnDemand,
}

impl Mode {
    pub(crate) fn parse(value: &str) -> Option<Mode> {
        match value {
            "LIVE" => Some(Mode::Live),
            "LIVE_REPLAY" => Some(Mode::LiveReplay),
            "ON_DEMAND" => Some(Mode::OnDemand),
            _ => None,
        }
    }
}

/// `ContainerFormat` (DASH sessions are always fragmented MP4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Fmp4,
    Ts,
}

/// Everything a session token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionParams {
    /// Random session id (the registry key).
    pub(crate) session_id: [u8; 12],
    pub(crate) protocol: Protocol,
    pub(crate) stream_id: i64,
    pub(crate) mode: Mode,
    pub(crate) kind: Kind,
    /// `TimestampRange` start / end, epoch ms.
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) container: Container,
    pub(crate) discontinuity: DiscontinuityMode,
    /// `DisplayFragmentTimestamp` ALWAYS.
    pub(crate) display_timestamp: bool,
    /// DASH `DisplayFragmentNumber` ALWAYS.
    pub(crate) display_fragment_number: bool,
    /// `MaxMediaPlaylistFragmentResults` / `MaxManifestFragmentResults`.
    pub(crate) max_results: u32,
    /// The fMP4/TS timeline origin of every segment of the session, epoch ms.
    pub(crate) origin_ms: u64,
    pub(crate) created_ms: i64,
    pub(crate) expires_ms: i64,
}

impl SessionParams {
    /// The session id as text (registry key, logs).
    pub(crate) fn id(&self) -> String {
        hex::encode(self.session_id)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.push(TOKEN_VERSION);
        out.extend_from_slice(&self.session_id);
        out.push(match self.protocol {
            Protocol::Hls => 0,
            Protocol::Dash => 1,
        });
        out.push(match self.mode {
            Mode::Live => 0,
            Mode::LiveReplay => 1,
            Mode::OnDemand => 2,
        });
        out.push(match self.kind {
            Kind::Producer => 0,
            Kind::Server => 1,
        });
        out.push(match self.container {
            Container::Fmp4 => 0,
            Container::Ts => 1,
        });
        out.push(match self.discontinuity {
            DiscontinuityMode::Always => 0,
            DiscontinuityMode::Never => 1,
            DiscontinuityMode::OnDiscontinuity => 2,
        });
        let flags = u8::from(self.display_timestamp)
            | (u8::from(self.display_fragment_number) << 1)
            | (u8::from(self.start_ms.is_some()) << 2)
            | (u8::from(self.end_ms.is_some()) << 3);
        out.push(flags);
        out.extend_from_slice(&self.stream_id.to_be_bytes());
        out.extend_from_slice(&self.start_ms.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.end_ms.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.max_results.to_be_bytes());
        out.extend_from_slice(&self.origin_ms.to_be_bytes());
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        out.extend_from_slice(&self.expires_ms.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<SessionParams> {
        let mut r = Reader(bytes);
        if r.u8()? != TOKEN_VERSION {
            return None;
        }
        let session_id: [u8; 12] = r.take(12)?.try_into().ok()?;
        let protocol = match r.u8()? {
            0 => Protocol::Hls,
            1 => Protocol::Dash,
            _ => return None,
        };
        let mode = match r.u8()? {
            0 => Mode::Live,
            1 => Mode::LiveReplay,
            2 => Mode::OnDemand,
            _ => return None,
        };
        let kind = match r.u8()? {
            0 => Kind::Producer,
            1 => Kind::Server,
            _ => return None,
        };
        let container = match r.u8()? {
            0 => Container::Fmp4,
            1 => Container::Ts,
            _ => return None,
        };
        let discontinuity = match r.u8()? {
            0 => DiscontinuityMode::Always,
            1 => DiscontinuityMode::Never,
            2 => DiscontinuityMode::OnDiscontinuity,
            _ => return None,
        };
        let flags = r.u8()?;
        let stream_id = r.i64()?;
        let start = r.i64()?;
        let end = r.i64()?;
        let max_results = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let origin_ms = r.i64()? as u64;
        let created_ms = r.i64()?;
        let expires_ms = r.i64()?;
        if !r.0.is_empty() {
            return None;
        }
        Some(SessionParams {
            session_id,
            protocol,
            stream_id,
            mode,
            kind,
            start_ms: (flags & 4 != 0).then_some(start),
            end_ms: (flags & 8 != 0).then_some(end),
            container,
            discontinuity,
            display_timestamp: flags & 1 != 0,
            display_fragment_number: flags & 2 != 0,
            max_results,
            origin_ms,
            created_ms,
            expires_ms,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Not a token this server issued (bad encoding, wrong tag, tampered).
    Invalid,
    /// A genuine token past its expiry.
    Expired,
}

/// Signs and verifies session tokens.
pub(crate) struct TokenKey {
    key: [u8; 32],
}

impl TokenKey {
    /// A random key (per server start).
    pub(crate) fn random() -> TokenKey {
        TokenKey {
            key: rand::random(),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(key: [u8; 32]) -> TokenKey {
        TokenKey { key }
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The token of `params`.
    pub(crate) fn sign(&self, params: &SessionParams) -> String {
        let mut bytes = params.encode();
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The parameters of a token this key signed, if it has not expired at `now_ms`.
    pub(crate) fn verify(&self, token: &str, now_ms: i64) -> Result<SessionParams, TokenError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| TokenError::Invalid)?;
        if bytes.len() <= TAG_LEN {
            return Err(TokenError::Invalid);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::Invalid)?;
        let params = SessionParams::decode(payload).ok_or(TokenError::Invalid)?;
        if now_ms >= params.expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(params)
    }
}

/// What the session URL operation learned about the stream, for the master playlist, the
/// DASH manifest and the init segment.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    /// The video track of the session's first fragment.
    pub(crate) track: hls::VideoTrack,
    /// The session's first fragment (its track makes the default init segment).
    pub(crate) first_seq: i64,
    /// Peak bit rate of the first fragments, bits per second.
    pub(crate) bandwidth: u64,
    /// DASH live: the wall-clock time of media time 0 (the timeline origin), chosen so
    /// that the live edge is "now" when the session starts.
    pub(crate) availability_start_ms: i64,
}

/// One active session.
pub(crate) struct Session {
    pub(crate) params: SessionParams,
    pub(crate) token: String,
    pub(crate) info: SessionInfo,
    pub(crate) timeline: Mutex<Timeline>,
}

/// The 11th session of a stream.
#[derive(Debug)]
pub(crate) struct LimitExceeded;

/// Active sessions by id.
#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<[u8; 12], Arc<Session>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 12], Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Active sessions of a stream and protocol at `now_ms`.
    pub(crate) fn active(&self, stream_id: i64, protocol: Protocol, now_ms: i64) -> usize {
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.params.expires_ms > now_ms);
        sessions
            .values()
            .filter(|s| s.params.stream_id == stream_id && s.params.protocol == protocol)
            .count()
    }

    /// Registers a session unless its stream already has [`MAX_SESSIONS_PER_STREAM`]
    /// active ones (checked and inserted under one lock).
    pub(crate) fn insert(
        &self,
        session: Session,
        now_ms: i64,
    ) -> Result<Arc<Session>, LimitExceeded> {
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.params.expires_ms > now_ms);
        let p = &session.params;
        let active = sessions
            .values()
            .filter(|s| s.params.stream_id == p.stream_id && s.params.protocol == p.protocol)
            .count();
        if active >= MAX_SESSIONS_PER_STREAM {
            return Err(LimitExceeded);
        }
        let session = Arc::new(session);
        sessions.insert(session.params.session_id, Arc::clone(&session));
        Ok(session)
    }

    /// The session a verified token names, if still active.
    pub(crate) fn get(&self, params: &SessionParams, now_ms: i64) -> Option<Arc<Session>> {
        let mut sessions = self.lock();
        let session = sessions.get(&params.session_id)?;
        if session.params.expires_ms <= now_ms {
            sessions.remove(&params.session_id);
            return None;
        }
        (session.params == *params).then(|| Arc::clone(session))
    }
}

/// The playback state of the video service.
pub(crate) struct Playback {
    pub(crate) key: TokenKey,
    pub(crate) sessions: Registry,
}

impl Playback {
    pub(crate) fn new() -> Playback {
        Playback {
            key: TokenKey::random(),
            sessions: Registry::default(),
        }
    }
}

impl Default for Playback {
    fn default() -> Self {
        Playback::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(now_ms: i64) -> SessionParams {
        SessionParams {
            session_id: [7; 12],
            protocol: Protocol::Hls,
            stream_id: 42,
            mode: Mode::OnDemand,
            kind: Kind::Producer,
            start_ms: Some(1_700_000_000_000),
            end_ms: None,
            container: Container::Ts,
            discontinuity: DiscontinuityMode::OnDiscontinuity,
            display_timestamp: true,
            display_fragment_number: false,
            max_results: 1000,
            origin_ms: 1_699_999_999_950,
            created_ms: now_ms,
            expires_ms: now_ms + 300_000,
        }
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = TokenKey::from_bytes([1; 32]);
        let p = params(1_000);
        let token = key.sign(&p);
        assert!(token.len() < 130, "{}", token.len());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe: {token}"
        );
        assert_eq!(key.verify(&token, 1_000), Ok(p.clone()));
        // A different server key refuses it.
        let other = TokenKey::from_bytes([2; 32]);
        assert_eq!(other.verify(&token, 1_000), Err(TokenError::Invalid));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let key = TokenKey::from_bytes([1; 32]);
        let token = key.sign(&params(0));
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == token {
                continue;
            }
            assert!(key.verify(&tampered, 0).is_err(), "byte {i} flipped");
        }
        assert_eq!(key.verify("", 0), Err(TokenError::Invalid));
        assert_eq!(key.verify("!!!", 0), Err(TokenError::Invalid));
        assert_eq!(key.verify(&token[..20], 0), Err(TokenError::Invalid));
        // Changing a parameter and re-encoding without the key does not verify.
        let mut forged = params(0);
        forged.expires_ms += 1_000_000;
        let mut bytes = forged.encode();
        bytes.extend_from_slice(&[0; TAG_LEN]);
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(key.verify(&forged, 0), Err(TokenError::Invalid));
    }

    #[test]
    fn tokens_expire() {
        let key = TokenKey::from_bytes([1; 32]);
        let p = params(10_000);
        let token = key.sign(&p);
        assert!(key.verify(&token, 10_000 + 299_999).is_ok());
        assert_eq!(
            key.verify(&token, 10_000 + 300_000),
            Err(TokenError::Expired)
        );
    }

    fn session(id: u8, stream_id: i64, protocol: Protocol, expires_ms: i64) -> Session {
        let mut p = params(0);
        p.session_id = [id; 12];
        p.stream_id = stream_id;
        p.protocol = protocol;
        p.expires_ms = expires_ms;
        let avcc = [
            1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4,
            0x68, 0xCE, 0x3C, 0x80,
        ];
        let track = hls::VideoTrack {
            track_number: 1,
            codec_private: avcc.to_vec(),
            config: hls::AvcConfig::parse(&avcc).unwrap(),
            width: 320,
            height: 240,
            timescale: hls::DEFAULT_TIMESCALE,
        };
        Session {
            token: String::new(),
            info: SessionInfo {
                track,
                first_seq: 1,
                bandwidth: 1,
                availability_start_ms: 0,
            },
            timeline: Mutex::new(Timeline::new(p.kind, p.discontinuity, 10)),
            params: p,
        }
    }

    #[test]
    fn at_most_ten_active_sessions_per_stream_and_protocol() {
        let registry = Registry::default();
        for i in 0..10 {
            // Session i expires at 1000 + i.
            registry
                .insert(session(i, 1, Protocol::Hls, 1_000 + i64::from(i)), 0)
                .unwrap();
        }
        assert!(
            registry
                .insert(session(10, 1, Protocol::Hls, 5_000), 0)
                .is_err()
        );
        // Other streams and DASH have their own limit.
        assert!(
            registry
                .insert(session(11, 2, Protocol::Hls, 5_000), 0)
                .is_ok()
        );
        assert!(
            registry
                .insert(session(12, 1, Protocol::Dash, 5_000), 0)
                .is_ok()
        );
        assert_eq!(registry.active(1, Protocol::Hls, 0), 10);
        // Once the first session has expired, a slot is free.
        assert!(
            registry
                .insert(session(13, 1, Protocol::Hls, 5_000), 1_000)
                .is_ok()
        );
        assert!(
            registry
                .insert(session(14, 1, Protocol::Hls, 5_000), 1_000)
                .is_err()
        );
        assert_eq!(registry.active(1, Protocol::Hls, 1_005), 5);
    }

    #[test]
    fn lookups_need_the_same_parameters_and_an_active_session() {
        let registry = Registry::default();
        let s = registry
            .insert(session(1, 1, Protocol::Hls, 1_000), 0)
            .unwrap();
        let p = s.params.clone();
        assert!(registry.get(&p, 999).is_some());
        let mut other = p.clone();
        other.stream_id = 2;
        assert!(registry.get(&other, 999).is_none());
        assert!(registry.get(&p, 1_000).is_none());
        assert!(
            registry.get(&p, 0).is_none(),
            "expired sessions are dropped"
        );
    }
}
