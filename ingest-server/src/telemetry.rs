//! Logging setup. Levels mean: ERROR data loss or operator action needed; WARN a
//! degraded but working state; INFO lifecycle events; DEBUG per-request detail.
//! `RUST_LOG` overrides the default filter; `KVS_LOG_FORMAT=json` emits JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (stderr).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("KVS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
