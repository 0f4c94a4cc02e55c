//! The uplink: from the spool to the server with SigV4-signed PutMedia over TLS.
//!
//! It prepares the stream (DescribeStream, CreateStream when asked, GetDataEndpoint), then runs
//! PutMedia sessions one after the other. A fragment leaves the spool only on its PERSISTED
//! ack; whatever was sent but not acknowledged when a session ends is sent again by the next
//! one (the server recognises a re-sent fragment). Failures are retried with exponential
//! backoff and full jitter; only what retrying cannot fix (credentials, an untrusted
//! certificate) stops the agent.

mod acks;
pub(crate) mod client;
pub(crate) mod control_plane;
pub(crate) mod error;
mod session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::spool::Spool;
use client::{Client, Endpoint};
use control_plane::StreamSettings;
use error::UplinkError;
use session::SessionEnd;

/// Uplink settings.
#[derive(Debug, Clone)]
pub(crate) struct UplinkSettings {
    pub(crate) endpoint: Endpoint,
    pub(crate) stream: StreamSettings,
    /// A session without any ack (or IDLE) for this long is replaced.
    pub(crate) stale_after: Duration,
    /// Sessions are rotated after this long (the service cuts them at 45 minutes).
    pub(crate) rotate_after: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

/// Connection state, for `edge-agent status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Connecting,
    Connected,
    Backoff,
    Stopped,
}

/// State and last error, shared with the control socket.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UplinkStatus {
    pub(crate) state: State,
    pub(crate) last_error: Option<String>,
}

pub(crate) struct Shared {
    client: Client,
    settings: UplinkSettings,
    spool: Arc<Spool>,
    status: Arc<Mutex<UplinkStatus>>,
}

impl Shared {
    fn set_state(&self, state: State, error: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.state = state;
        if error.is_some() || state == State::Connected {
            status.last_error = error;
        }
    }
}

/// A handle to read the uplink's status.
pub(crate) fn new_status() -> Arc<Mutex<UplinkStatus>> {
    Arc::new(Mutex::new(UplinkStatus {
        state: State::Connecting,
        last_error: None,
    }))
}

/// Runs until `shutdown` turns true (then ends the session cleanly) or a fatal error.
pub(crate) async fn run(
    client: Client,
    settings: UplinkSettings,
    spool: Arc<Spool>,
    status: Arc<Mutex<UplinkStatus>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), UplinkError> {
    let shared = Shared {
        client,
        settings,
        spool,
        status,
    };
    let mut backoff = Backoff::new(shared.settings.backoff_min, shared.settings.backoff_max);
    let mut data_endpoint: Option<Endpoint> = None;
    while !*shutdown.borrow() {
        shared.set_state(State::Connecting, None);
        let endpoint = match &data_endpoint {
            Some(ep) => ep.clone(),
            None => {
                let prepared = tokio::select! {
                    r = control_plane::prepare(&shared.client, &shared.settings.endpoint, &shared.settings.stream) => r,
                    _ = shutdown.changed() => break,
                };
                match prepared {
                    Ok(ep) => {
                        info!(stream = %shared.settings.stream.name, data_endpoint = %ep, "PutMedia endpoint");
                        data_endpoint = Some(ep.clone());
                        ep
                    }
                    Err(e) if e.is_fatal() => {
                        shared.set_state(State::Stopped, Some(e.to_string()));
                        return Err(e);
                    }
                    Err(e) => {
                        if !wait_backoff(&shared, &mut backoff, &e, &mut shutdown).await {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        match session::run(&shared, &endpoint, &mut shutdown).await {
            SessionEnd::Shutdown => break,
            SessionEnd::Reconnect(why) => {
                info!(reason = why, "starting a new PutMedia session");
                backoff.reset();
            }
            SessionEnd::Failed(e) if e.is_fatal() => {
                shared.set_state(State::Stopped, Some(e.to_string()));
                return Err(e);
            }
            SessionEnd::Failed(e) => {
                // Ask for the data endpoint again: the server may have moved.
                data_endpoint = None;
                if shared
                    .status
                    .lock()
                    .map(|s| s.state == State::Connected)
                    .unwrap_or(false)
                {
                    backoff.reset();
                }
                if !wait_backoff(&shared, &mut backoff, &e, &mut shutdown).await {
                    break;
                }
            }
        }
    }
    shared.set_state(State::Stopped, None);
    Ok(())
}

/// Logs, sleeps the next backoff delay; false when shutting down meanwhile.
async fn wait_backoff(
    shared: &Shared,
    backoff: &mut Backoff,
    error: &UplinkError,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let delay = backoff.next();
    warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "upload interrupted; video is kept in the spool");
    shared.set_state(State::Backoff, Some(error.to_string()));
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.changed() => false,
    }
}

/// Exponential backoff with jitter: a random half to all of the current delay.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    pub(crate) fn next(&mut self) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        let jittered = rand::thread_rng().gen_range(0.5..=1.0) * ceiling.as_secs_f64();
        Duration::from_secs_f64(jittered).max(self.min)
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let delays: Vec<_> = (0..10).map(|_| b.next()).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(500) && *d <= Duration::from_secs(30))
        );
        assert!(delays[9] >= Duration::from_secs(15), "{delays:?}");
        b.reset();
        assert!(b.next() <= Duration::from_secs(1));
    }
}
