//! TLS material: a self-managed local CA for zero-configuration deployments, or
//! the operator's own certificate and key.
//!
//! Local mode writes into `DIR/tls/`:
//!
//! | file         | mode | content                                   |
//! |--------------|------|-------------------------------------------|
//! | `ca.pem`     | 0644 | local CA certificate (ECDSA P-256, 10 y)  |
//! | `ca.key`     | 0600 | local CA private key (PKCS#8)             |
//! | `server.pem` | 0644 | server certificate followed by `ca.pem`   |
//! | `server.key` | 0600 | server private key (PKCS#8)               |
//!
//! Clients trust `ca.pem` (e.g. the C producer's `caCertPath`, `AWS_CA_BUNDLE`
//! for the AWS CLI/boto3). The CA's subject name is derived from its public key,
//! so the issuer can be rebuilt from `ca.key` alone on later starts (rcgen 0.13
//! cannot parse an existing certificate without its `x509-parser` feature).
//! The server certificate lives 397 days (Apple's limit for TLS server
//! certificates) and is re-issued at start-up when it is missing, expires within
//! 30 days, does not chain to the CA, or lacks a requested name.

use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::credentials::write_file_atomic;

/// A certificate chain (leaf first) and its private key.
pub struct TlsMaterial {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        Self {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("certs", &self.certs.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Errors loading or creating TLS material. Paths are included; key bytes never are.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    #[error("invalid TLS name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error(
        "{} exists but {} is missing: restore the CA key, or delete the whole directory to \
         create a new CA (clients must then trust the new ca.pem)",
        ca_pem.display(),
        ca_key.display()
    )]
    CaKeyMissing { ca_pem: PathBuf, ca_key: PathBuf },
    #[error(
        "{}: the local CA in this directory was not created by this server or ca.pem does \
         not match ca.key ({source}); to use your own CA, configure its certificate and key \
         instead of the local CA",
        dir.display()
    )]
    CaMismatch {
        dir: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

const CA_VALIDITY: time::Duration = time::Duration::days(3650);
const LEAF_VALIDITY: time::Duration = time::Duration::days(397);
const RENEW_BEFORE: time::Duration = time::Duration::days(30);
/// Backdating tolerates clients whose clocks are a little behind.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// On first start creates a local CA (ECDSA P-256, 10 years) and a server
/// certificate signed by it with SANs `localhost`, `127.0.0.1`, `::1`, the
/// machine's host name (from `/proc/sys/kernel/hostname`, else `/etc/hostname`)
/// and `extra_names` (DNS names, `*.` wildcards or IP literals, IPv6 optionally
/// in brackets); writes `ca.pem`, `ca.key` (0600), `server.pem` (leaf + CA) and
/// `server.key` (0600) into `tls_dir`, atomically. Later starts reuse them and
/// re-issue only the server certificate (with the existing CA) when it is
/// missing, expires within 30 days or lacks a requested name.
pub fn load_or_create_local(
    tls_dir: &Path,
    extra_names: &[String],
) -> Result<TlsMaterial, TlsError> {
    load_or_create_local_at(tls_dir, extra_names, OffsetDateTime::now_utc())
}

fn load_or_create_local_at(
    tls_dir: &Path,
    extra_names: &[String],
    now: OffsetDateTime,
) -> Result<TlsMaterial, TlsError> {
    let names = requested_names(extra_names, machine_hostname().as_deref())?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(tls_dir)
        .map_err(|source| io_err(tls_dir, source))?;

    let ca = LocalCa::load_or_create(tls_dir, now)?;
    let server_pem = tls_dir.join("server.pem");
    let server_key = tls_dir.join("server.key");

    if let Some(material) = reusable_leaf(&ca, &server_pem, &server_key, &names, now)? {
        return Ok(material);
    }

    let (leaf_pem, key_pem) = ca.issue_leaf(&names, now - BACKDATE, now + LEAF_VALIDITY)?;
    let material = TlsMaterial {
        certs: vec![pem_to_der(&leaf_pem, &server_pem)?, ca.cert_der.clone()],
        key: parse_private_key(key_pem.as_bytes(), &server_key)?,
    };
    // The CA must validate what it just issued; if not, ca.pem is not ours.
    check_leaf(&ca, &material.certs, &names, now).map_err(|source| TlsError::CaMismatch {
        dir: tls_dir.to_path_buf(),
        source,
    })?;
    write_file_atomic(&server_key, key_pem.as_bytes(), 0o600, true)
        .map_err(|e| io_err(&server_key, e))?;
    write_file_atomic(
        &server_pem,
        format!("{leaf_pem}{}", ca.cert_pem).as_bytes(),
        0o644,
        true,
    )
    .map_err(|e| io_err(&server_pem, e))?;
    tracing::info!(
        path = %server_pem.display(),
        names = ?names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "issued server certificate from the local CA"
    );
    Ok(material)
}

/// Operator's own certificate chain (leaf first) and private key, PEM files.
/// Keys may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC); encrypted keys are not
/// supported. Fails if the key does not match the first certificate.
pub fn load_pem(cert: &Path, key: &Path) -> Result<TlsMaterial, TlsError> {
    let cert_bytes = fs::read(cert).map_err(|e| io_err(cert, e))?;
    let certs = rustls_pemfile::certs(&mut cert_bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err(cert, "no CERTIFICATE block found"));
    }
    warn_if_readable_by_others(key);
    let key_bytes = zeroize::Zeroizing::new(fs::read(key).map_err(|e| io_err(key, e))?);
    let key_der = parse_private_key(&key_bytes, key)?;
    rustls::sign::CertifiedKey::from_der(certs.clone(), key_der.clone_key(), &provider()).map_err(
        |e| {
            pem_err(
                key,
                format!("unusable private key for {}: {e}", cert.display()),
            )
        },
    )?;
    Ok(TlsMaterial {
        certs,
        key: key_der,
    })
}

/// A rustls `ServerConfig` with the ring provider, TLS 1.2 and 1.3, no client
/// authentication and the given ALPN protocols in preference order (e.g.
/// `[b"h2", b"http/1.1"]`, or `[b"http/1.1"]` for the video data-plane listener).
pub fn server_config(
    material: &TlsMaterial,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(material.certs.clone(), material.key.clone_key())?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn io_err(path: &Path, source: io::Error) -> TlsError {
    TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pem_err(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "private key file is accessible by group/others; consider chmod 600"
        );
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn parse_private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    match rustls_pemfile::private_key(&mut &pem[..]) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(pem_err(
            path,
            "no PKCS#8, PKCS#1 or SEC1 private key found (encrypted keys are not supported)",
        )),
        Err(e) => Err(pem_err(path, format!("invalid PEM: {e}"))),
    }
}

fn pem_to_der(pem: &str, path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .ok_or_else(|| pem_err(path, "no CERTIFICATE block found"))?
        .map_err(|e| pem_err(path, format!("invalid PEM: {e}")))
}

/// A name the server certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TlsName {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for TlsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsName::Dns(n) => f.write_str(n),
            TlsName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl TlsName {
    fn parse(raw: &str) -> Result<Self, TlsError> {
        let invalid = |reason: &str| TlsError::InvalidName {
            name: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let s = raw.trim();
        let unbracketed = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(TlsName::Ip(ip));
        }
        let dns = s.trim_end_matches('.').to_ascii_lowercase();
        if dns.is_empty() {
            return Err(invalid("empty name"));
        }
        let base = dns.strip_prefix("*.").unwrap_or(&dns);
        if base.contains('*') {
            return Err(invalid("only a leading `*.` wildcard label is allowed"));
        }
        ServerName::try_from(base)
            .ok()
            .filter(|n| matches!(n, ServerName::DnsName(_)))
            .ok_or_else(|| invalid("not a valid DNS name or IP address"))?;
        if base.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(invalid("looks like a malformed IPv4 address"));
        }
        Ok(TlsName::Dns(dns))
    }

    fn san(&self) -> Result<SanType, TlsError> {
        Ok(match self {
            TlsName::Dns(n) => SanType::DnsName(n.clone().try_into()?),
            TlsName::Ip(ip) => SanType::IpAddress(*ip),
        })
    }

    /// The name a client would verify; for `*.example.com`, a name the
    /// wildcard covers.
    fn probe(&self) -> ServerName<'static> {
        match self {
            TlsName::Ip(ip) => ServerName::IpAddress((*ip).into()),
            TlsName::Dns(n) => {
                let probe = match n.strip_prefix("*.") {
                    Some(rest) => format!("wildcard-probe.{rest}"),
                    None => n.clone(),
                };
                // Validated in `parse`.
                ServerName::try_from(probe).expect("validated DNS name")
            }
        }
    }
}

fn machine_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// localhost, 127.0.0.1, ::1, the host name (if a valid DNS name), extras; deduplicated.
fn requested_names(
    extra_names: &[String],
    hostname: Option<&str>,
) -> Result<Vec<TlsName>, TlsError> {
    let mut names = vec![
        TlsName::Dns("localhost".to_owned()),
        TlsName::Ip(IpAddr::from([127, 0, 0, 1])),
        TlsName::Ip(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
    ];
    if let Some(host) = hostname {
        match TlsName::parse(host) {
            Ok(n) => names.push(n),
            Err(e) => tracing::warn!("host name not added to the TLS certificate: {e}"),
        }
    }
    for raw in extra_names {
        names.push(TlsName::parse(raw)?);
    }
    let mut unique = Vec::with_capacity(names.len());
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    Ok(unique)
}

struct LocalCa {
    key: KeyPair,
    /// Issuer rebuilt from `key` (same subject, same key identifier as `ca.pem`).
    issuer: rcgen::Certificate,
    /// `ca.pem` as stored (what clients trust and what the chain carries).
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl LocalCa {
    fn params(key: &KeyPair, now: OffsetDateTime) -> CertificateParams {
        let fingerprint = hex::encode(&Sha256::digest(key.public_key_der())[..6]);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ingest-server");
        dn.push(
            DnType::CommonName,
            format!("ingest-server local CA {fingerprint}"),
        );
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params
    }

    fn load_or_create(dir: &Path, now: OffsetDateTime) -> Result<Self, TlsError> {
        let key_path = dir.join("ca.key");
        let pem_path = dir.join("ca.pem");
        let key = match read_optional(&key_path)? {
            Some(pem) => {
                let pem = zeroize::Zeroizing::new(pem);
                let text =
                    std::str::from_utf8(&pem).map_err(|_| pem_err(&key_path, "not a PEM file"))?;
                KeyPair::from_pem(text)
                    .map_err(|e| pem_err(&key_path, format!("unusable CA key: {e}")))?
            }
            None => {
                if pem_path.exists() {
                    return Err(TlsError::CaKeyMissing {
                        ca_pem: pem_path,
                        ca_key: key_path,
                    });
                }
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
                let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
                if !write_file_atomic(&key_path, key_pem.as_bytes(), 0o600, false)
                    .map_err(|e| io_err(&key_path, e))?
                {
                    // Created concurrently by another process: use theirs.
                    return Self::load_or_create(dir, now);
                }
                key
            }
        };
        let issuer = Self::params(&key, now).self_signed(&key)?;
        let (cert_pem, cert_der) = match read_optional(&pem_path)? {
            Some(bytes) => {
                let pem =
                    String::from_utf8(bytes).map_err(|_| pem_err(&pem_path, "not a PEM file"))?;
                let der = pem_to_der(&pem, &pem_path)?;
                (pem, der)
            }
            None => {
                // First start, or ca.pem was lost: the certificate is
                // re-derived from the key, so clients trusting an earlier
                // ca.pem for this key still validate the chain.
                let pem = issuer.pem();
                if !write_file_atomic(&pem_path, pem.as_bytes(), 0o644, false)
                    .map_err(|e| io_err(&pem_path, e))?
                {
                    return Self::load_or_create(dir, now);
                }
                tracing::info!(path = %pem_path.display(), "created local TLS CA");
                let der = issuer.der().clone();
                (pem, der)
            }
        };
        let ca = Self {
            key,
            issuer,
            cert_der,
            cert_pem,
        };
        // ca.pem and ca.key must belong together (and to this scheme of
        // subject names): a probe certificate issued now must chain to ca.pem.
        let probe_names = [TlsName::Dns("localhost".to_owned())];
        let (probe, _) = ca.issue_leaf(&probe_names, now - BACKDATE, now + LEAF_VALIDITY)?;
        let probe = [pem_to_der(&probe, &pem_path)?];
        check_leaf(&ca, &probe, &probe_names, now).map_err(|source| TlsError::CaMismatch {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(ca)
    }

    /// Returns (leaf certificate PEM, leaf key PEM).
    fn issue_leaf(
        &self,
        names: &[TlsName],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(String, zeroize::Zeroizing<String>), TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ingest-server");
        dn.push(
            DnType::CommonName,
            names.first().map(|n| n.to_string()).unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = names.iter().map(TlsName::san).collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.issuer, &self.key)?;
        Ok((cert.pem(), zeroize::Zeroizing::new(key.serialize_pem())))
    }
}

fn unix_time(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(t.unix_timestamp().max(0) as u64))
}

/// Checks that `chain` (leaf first) is valid for every name now and in 30 days
/// against the local CA alone.
fn check_leaf(
    ca: &LocalCa,
    chain: &[CertificateDer<'static>],
    names: &[TlsName],
    now: OffsetDateTime,
) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der.clone())?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(provider()),
    )
    .build()
    .map_err(|e| rustls::Error::General(e.to_string()))?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or(rustls::Error::NoCertificatesPresented)?;
    for at in [now, now + RENEW_BEFORE] {
        for name in names {
            verifier.verify_server_cert(leaf, intermediates, &name.probe(), &[], unix_time(at))?;
        }
    }
    Ok(())
}

/// The existing server.pem/server.key if they are complete, match each other,
/// chain to the current CA, stay valid for 30 more days and carry all names.
fn reusable_leaf(
    ca: &LocalCa,
    pem_path: &Path,
    key_path: &Path,
    names: &[TlsName],
    now: OffsetDateTime,
) -> Result<Option<TlsMaterial>, TlsError> {
    let (Some(pem), Some(key_pem)) = (read_optional(pem_path)?, read_optional(key_path)?) else {
        return Ok(None);
    };
    let key_pem = zeroize::Zeroizing::new(key_pem);
    let Ok(certs) = rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>()
    else {
        tracing::warn!(path = %pem_path.display(), "unreadable server certificate; re-issuing");
        return Ok(None);
    };
    let Ok(key) = parse_private_key(&key_pem, key_path) else {
        tracing::warn!(path = %key_path.display(), "unreadable server key; re-issuing");
        return Ok(None);
    };
    if certs.len() != 2 || certs[1] != ca.cert_der {
        tracing::info!(path = %pem_path.display(), "server chain does not end in ca.pem; re-issuing");
        return Ok(None);
    }
    if rustls::sign::CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider()).is_err() {
        tracing::warn!(path = %key_path.display(), "server key does not match certificate; re-issuing");
        return Ok(None);
    }
    if let Err(e) = check_leaf(ca, &certs, names, now) {
        tracing::info!(
            path = %pem_path.display(),
            reason = %e,
            "server certificate expires within 30 days, lacks a requested name or does not chain to the CA; re-issuing"
        );
        return Ok(None);
    }
    Ok(Some(TlsMaterial { certs, key }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::ClientConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn names(extra: &[&str]) -> Vec<String> {
        extra.iter().map(|s| s.to_string()).collect()
    }

    fn client_config(ca_pem: &[u8], alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &ca_pem[..]) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }

    /// Full handshake over an in-memory pipe plus one byte each way; returns
    /// the ALPN protocol both sides agreed on.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, io::Error> {
        let (c, s) = tokio::io::duplex(1 << 16);
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let server_task = tokio::spawn(async move {
            let mut tls = acceptor.accept(s).await?;
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await?;
            tls.write_all(&b).await?;
            tls.flush().await?;
            Ok::<_, io::Error>(tls.get_ref().1.alpn_protocol().map(|p| p.to_vec()))
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let client_result = async {
            let mut tls = connector.connect(server_name, c).await?;
            tls.write_all(b"x").await?;
            tls.flush().await?;
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await?;
            assert_eq!(&b, b"x");
            Ok::<_, io::Error>(tls.get_ref().1.alpn_protocol().map(|p| p.to_vec()))
        }
        .await;
        let client_alpn = match client_result {
            Ok(alpn) => alpn,
            Err(e) => {
                server_task.abort();
                return Err(e);
            }
        };
        let server_alpn = server_task.await.unwrap()?;
        assert_eq!(client_alpn, server_alpn);
        Ok(client_alpn)
    }

    #[tokio::test]
    async fn local_ca_handshake_names_and_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("tls");
        let material = load_or_create_local(
            &tls_dir,
            &names(&["cam-gw.example.lan", "10.1.2.3", "[fd00::7]", "*.wild.test"]),
        )
        .unwrap();
        assert_eq!(material.certs.len(), 2);

        for (file, mode) in [
            ("ca.pem", 0o644),
            ("ca.key", 0o600),
            ("server.pem", 0o644),
            ("server.key", 0o600),
        ] {
            let meta = fs::metadata(tls_dir.join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
        }
        assert_eq!(
            fs::read_dir(&tls_dir).unwrap().count(),
            4,
            "no temp files left"
        );
        assert_eq!(
            fs::metadata(&tls_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );

        let ca_pem = fs::read(tls_dir.join("ca.pem")).unwrap();
        let both = server_config(&material, &[b"h2", b"http/1.1"]).unwrap();
        let http1_only = server_config(&material, &[b"http/1.1"]).unwrap();
        let client = client_config(&ca_pem, &[b"h2", b"http/1.1"]);

        let mut expected_names = vec![
            "localhost",
            "127.0.0.1",
            "::1",
            "cam-gw.example.lan",
            "CAM-GW.example.lan",
            "10.1.2.3",
            "fd00::7",
            "any.wild.test",
        ];
        let host = machine_hostname().filter(|h| TlsName::parse(h).is_ok());
        if let Some(h) = &host {
            expected_names.push(h);
        }
        for name in expected_names {
            let alpn = handshake(both.clone(), client.clone(), name).await;
            assert_eq!(alpn.unwrap().as_deref(), Some(&b"h2"[..]), "{name}");
        }
        // The data-plane listener offers only HTTP/1.1 and must select it even
        // though the client prefers h2.
        let alpn = handshake(http1_only.clone(), client.clone(), "localhost").await;
        assert_eq!(alpn.unwrap().as_deref(), Some(&b"http/1.1"[..]));
        let alpn = handshake(http1_only, client.clone(), "127.0.0.1").await;
        assert_eq!(alpn.unwrap().as_deref(), Some(&b"http/1.1"[..]));

        // A name that is not in the certificate fails verification.
        assert!(
            handshake(both.clone(), client.clone(), "other.example.com")
                .await
                .is_err()
        );
        assert!(handshake(both.clone(), client, "10.9.9.9").await.is_err());

        // A client trusting another CA rejects the server.
        let other = tempfile::tempdir().unwrap();
        load_or_create_local(other.path(), &[]).unwrap();
        let stranger = client_config(&fs::read(other.path().join("ca.pem")).unwrap(), &[]);
        assert!(handshake(both, stranger, "localhost").await.is_err());
    }

    #[test]
    fn reuse_and_reissue() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_local(dir.path(), &[]).unwrap();
        let ca_key = fs::read(dir.path().join("ca.key")).unwrap();
        let ca_pem = fs::read(dir.path().join("ca.pem")).unwrap();

        // Second start: everything reused.
        let second = load_or_create_local(dir.path(), &[]).unwrap();
        assert_eq!(first.certs, second.certs);
        assert_eq!(first.key.secret_der(), second.key.secret_der());

        // A new requested name re-issues the leaf with the same CA.
        let third = load_or_create_local(dir.path(), &names(&["new.example"])).unwrap();
        assert_ne!(third.certs[0], first.certs[0]);
        assert_eq!(third.certs[1], first.certs[1]);
        assert_eq!(fs::read(dir.path().join("ca.pem")).unwrap(), ca_pem);
        assert_eq!(fs::read(dir.path().join("ca.key")).unwrap(), ca_key);
        // ... and is then stable, also when asking for a subset of its names.
        let fourth = load_or_create_local(dir.path(), &names(&["new.example"])).unwrap();
        assert_eq!(fourth.certs, third.certs);
        let fifth = load_or_create_local(dir.path(), &[]).unwrap();
        assert_eq!(fifth.certs, third.certs);

        // Missing server.pem: re-issued with the same CA.
        fs::remove_file(dir.path().join("server.pem")).unwrap();
        let sixth = load_or_create_local(dir.path(), &[]).unwrap();
        assert_ne!(sixth.certs[0], third.certs[0]);
        assert_eq!(sixth.certs[1].as_ref(), &first.certs[1][..]);

        // Server key replaced by another key: re-issued.
        fs::copy(dir.path().join("ca.key"), dir.path().join("server.key")).unwrap();
        let seventh = load_or_create_local(dir.path(), &[]).unwrap();
        assert_ne!(seventh.certs[0], sixth.certs[0]);

        // ca.pem lost: re-derived from ca.key; a client trusting the old
        // ca.pem still accepts the new chain (same subject and key).
        fs::remove_file(dir.path().join("ca.pem")).unwrap();
        let eighth = load_or_create_local(dir.path(), &[]).unwrap();
        let ca = LocalCa::load_or_create(dir.path(), OffsetDateTime::now_utc()).unwrap();
        let mut old_root = RootCertStore::empty();
        old_root.add(first.certs[1].clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(old_root),
            Arc::new(provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_server_cert(
                &eighth.certs[0],
                &[],
                &ServerName::try_from("localhost").unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap();
        assert_eq!(eighth.certs[1], ca.cert_der);
    }

    #[test]
    fn expiring_leaf_is_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        load_or_create_local_at(dir.path(), &[], now).unwrap();
        let ca = LocalCa::load_or_create(dir.path(), now).unwrap();
        let names = requested_names(&[], machine_hostname().as_deref()).unwrap();

        // Plant a leaf valid for 10 more days.
        let (leaf, key) = ca
            .issue_leaf(
                &names,
                now - time::Duration::days(300),
                now + time::Duration::days(10),
            )
            .unwrap();
        fs::write(
            dir.path().join("server.pem"),
            format!("{leaf}{}", ca.cert_pem),
        )
        .unwrap();
        fs::write(dir.path().join("server.key"), key.as_bytes()).unwrap();
        let planted = pem_to_der(&leaf, Path::new("x")).unwrap();

        let m = load_or_create_local_at(dir.path(), &[], now).unwrap();
        assert_ne!(m.certs[0], planted, "expiring certificate must be replaced");

        // One valid for 40 days is kept.
        let (leaf, key) = ca
            .issue_leaf(
                &names,
                now - time::Duration::days(300),
                now + time::Duration::days(40),
            )
            .unwrap();
        fs::write(
            dir.path().join("server.pem"),
            format!("{leaf}{}", ca.cert_pem),
        )
        .unwrap();
        fs::write(dir.path().join("server.key"), key.as_bytes()).unwrap();
        let planted = pem_to_der(&leaf, Path::new("x")).unwrap();
        let m = load_or_create_local_at(dir.path(), &[], now).unwrap();
        assert_eq!(m.certs[0], planted);
    }

    #[test]
    fn foreign_or_incomplete_ca_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_local(dir.path(), &[]).unwrap();
        fs::remove_file(dir.path().join("ca.key")).unwrap();
        assert!(matches!(
            load_or_create_local(dir.path(), &[]),
            Err(TlsError::CaKeyMissing { .. })
        ));

        // ca.key from another CA: what we issue does not chain to ca.pem.
        let other = tempfile::tempdir().unwrap();
        load_or_create_local(other.path(), &[]).unwrap();
        fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
        let err = load_or_create_local(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, TlsError::CaMismatch { .. }), "{err}");
    }

    #[test]
    fn invalid_extra_names_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "a b", "foo..bar", "*.*.x", "a*.x", "300.1.1.1", "-"] {
            let err = load_or_create_local(dir.path(), &names(&[bad])).unwrap_err();
            assert!(matches!(err, TlsError::InvalidName { .. }), "{bad}: {err}");
        }
        // Trailing dot and case are normalized; duplicates collapse.
        let n = requested_names(&names(&["Example.COM.", "example.com", "::1"]), None).unwrap();
        assert_eq!(n.len(), 4);
        assert_eq!(n[3], TlsName::Dns("example.com".into()));
        // An unusable host name is skipped, not fatal.
        let n = requested_names(&[], Some("bad host")).unwrap();
        assert_eq!(n.len(), 3);
    }

    // Fixtures made with OpenSSL 3 (self-signed, CN/SAN localhost, 100 years):
    //   openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=localhost \
    //     -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    //     -keyout k.pem -out rsa.crt
    //   openssl rsa -in k.pem -traditional -out rsa_pkcs1.key
    //   openssl ecparam -name prime256v1 -genkey -noout -out ec_sec1.key
    //   openssl req -x509 -key ec_sec1.key -days 36500 -subj /CN=localhost \
    //     -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    //     -out ec.crt
    // Test-only keys, not used anywhere else.
    const RSA_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDHjCCAgagAwIBAgIUEDfvfN9kaNL4Y2S4i0swtOeYduowDQYJKoZIhvcNAQEL\n\
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE5MzQyNVoYDzIxMjYx\n\
MDMwMTkzNDI1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB\n\
AQUAA4IBDwAwggEKAoIBAQCsyhPXcQNQZhfDRM1OdnwgEjCquWjMv1Ns1qJeWAY1\n\
l0LmvLkzgmG7MAC6DXJ7abYlqtWiRoMyztmSJdrDB378G4HsnT26oCdEYrHQgRtH\n\
FkldhNAvIHZZw/Jd9J1eNnQsFoJ/nFd1h+xG6Z09qnxRR0YMvVmgi/SB7YbPVC/5\n\
jizt3BqSFwNDYpO44EiLx7eXUfeliAP0Oer4/5lhu65eGXcUABQNqgosgS8zy2P9\n\
y77pk3A3HHScLrmsvsXdY5BTDXZtKsOy++AxFKdfjfOTD/g685ODq6MKNL/P6HQz\n\
2LCmQoAl0IBHmNKr4tvigQyUa+Ug5biX1fVQNFhEn6DxAgMBAAGjZjBkMB0GA1Ud\n\
DgQWBBTywhfptc985JppfscIUmMT2/jb0TAfBgNVHSMEGDAWgBTywhfptc985Jpp\n\
fscIUmMT2/jb0TAUBgNVHREEDTALgglsb2NhbGhvc3QwDAYDVR0TAQH/BAIwADAN\n\
BgkqhkiG9w0BAQsFAAOCAQEAU28Zi4ND9TfXJ255NlZyfLJhc2edqRYz9m2H9Jb9\n\
KQpjUkC7iP9RbOyjhiLdXt/eYIeIsglP+R6Ss0jURXlh7A4gorcZ7B+lyj5IVVEG\n\
qTAAHODc9sp/K0pbZuuB8towEe0boMbzi+H8UFiyNrmLxnOK9jXZq94bG9Zaiwyd\n\
uocctD8Pwm1SioCX5sOI9TFNgjh4+j+dSodoU9k3HKQwMKfYxEgI112mDb9o+hqY\n\
iRchXr5VSsl6LdXZ4fqiLR8eSPLUuN6iagdA7QtW7Aa29tk+z+mZje6d5q2kDuZQ\n\
TzhA2LkUH4DbQSPp9+bI/cPxYn2g5yCT+hlrpibOm8En4Q==\n\
-----END CERTIFICATE-----\n\
";
    const RSA_PKCS1_KEY: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEoQIBAAKCAQEArMoT13EDUGYXw0TNTnZ8IBIwqrlozL9TbNaiXlgGNZdC5ry5\n\
M4JhuzAAug1ye2m2JarVokaDMs7ZkiXawwd+/BuB7J09uqAnRGKx0IEbRxZJXYTQ\n\
LyB2WcPyXfSdXjZ0LBaCf5xXdYfsRumdPap8UUdGDL1ZoIv0ge2Gz1Qv+Y4s7dwa\n\
khcDQ2KTuOBIi8e3l1H3pYgD9Dnq+P+ZYbuuXhl3FAAUDaoKLIEvM8tj/cu+6ZNw\n\
Nxx0nC65rL7F3WOQUw12bSrDsvvgMRSnX43zkw/4OvOTg6ujCjS/z+h0M9iwpkKA\n\
JdCAR5jSq+Lb4oEMlGvlIOW4l9X1UDRYRJ+g8QIDAQABAoH/feuGKishzyWXi6ZI\n\
ODYAnx6ieMhFp3CGy3pfOYHMhKGHD7/Y98C8mD2TSgMiuu1+4FRu+6OHWS+FPwx3\n\
MEn2MKObO2Qb6DVuaFfEXb64skV7kbuIO8/cb+5sYiwxwsbMQpTk5Tp6QhycA9Gb\n\
1aS4lELsubwD5QwZU9ZVuCISFDplsugsbU3YSB4bsx8QwHy0D1yADw/m0HbGyr83\n\
+nhb7BghFdq2Iu6ikLrmuPLVC5zOJlMQvxMis/UbQi4+trvmU7UsosXNKJoDycp7\n\
0eT0B/r1Rg7KlR24Zt5pvMvhKntmlrjS26XVehe6Byu7eaYrySiQZ7mFFox7iptR\n\
lhxBAoGBANjsb4/QBSG1TckKHOrQmkItv+VWOiqkdgpz1a/CrG2U/YqAGAZf/jQo\n\
B1NwdrVsa8i4t2TwEXu1NHIB8j/x7MCmWEVSHIE1w8ZhsUiVJpJlSGFx6MsZDXMO\n\
IcljahXBqCSxiqjre9DUjnGrlbYGC5AHt9/C14ToTFTzQeIMgHDBAoGBAMvqXYmH\n\
LpTaCD//qjeRxKIHoJGE0eQdm3G1EpIXjbfMsHqySe31g6t7nPshnjDZUcIzxNmy\n\
DZ8SPuTUg57ZkZWzl8YILMqaKxWWXZgZYvlWWb4PFodjSJwxH9Lbsm/+QfNfqqrz\n\
W+IinFLxLST5hgJtjFj74/AwxdH7Oi3qAQwxAoGBAM2H4ABj+ajBjwzvzwxRUAdq\n\
L4rNE1m577nhnNLmYdeGNmBXE+xeYY3ra12Mjn1BWDKbifBSYk5TF3j6DRy3TToP\n\
ok00CpwGZBOAFqiN4TkOS/FAK3DbsNmVxz94OViZ34W8zoNUc0EfVEOxbq1Dtwrl\n\
tTuG8gsUytYmkgLrE3tBAoGAWPNHEjLx0uS5LJGuAseHatbA6Dl0BXoU0KkYDLpR\n\
i5eydBNJxI+QfEFT3QhxJQXncDt85ymQX49p+A/rymNF6nOJBU2TnF1b5fLNqQeJ\n\
8RIF265hOXXJuriDFUvYrpnO0wcsP54guqg2YMfr1XEzT+PRkQ9wAtqDsHFSk6y8\n\
AEECgYBtjiJTWU4L0mvn1lDaLjKq9WN1bdmi0/eJsh1T9mxUD4e7U356YedHlNGW\n\
SyF8Q6yJq3cGzkqj/3GejXh5djj3Itzi8XWbefkiYon/CGEgUXkAm5p98iM6Bnuy\n\
sXMbP1hs8wKvb9BSYzF2las7zbI3dWLVSWKzsxP6KGOAiZAOSA==\n\
-----END RSA PRIVATE KEY-----\n\
";
    const EC_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBkzCCATigAwIBAgIUXhaobvbQvWWkcw7YSceRPQj4O70wCgYIKoZIzj0EAwIw\n\
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE5MzQyNVoYDzIxMjYxMDMw\n\
MTkzNDI1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n\
PQMBBwNCAASJn6t4SpmW0qI3IXWT+lfeOH5P6o+Cu5HEzXACGQPeqXJW9M4LC2jH\n\
6uDAm3RiP0RkkybalfCpS0EIZx41HBUJo2YwZDAdBgNVHQ4EFgQUi4KdglaB36B6\n\
YBKUyxfvGEBgxwkwHwYDVR0jBBgwFoAUi4KdglaB36B6YBKUyxfvGEBgxwkwFAYD\n\
VR0RBA0wC4IJbG9jYWxob3N0MAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwIDSQAw\n\
RgIhAOu9GXmrRbjNFdbLqVyAcq7Wae0UoT/JxA7kAlLvYwyxAiEAxM5ghR49oxvK\n\
2PZAWGsCnCv1dhAqjifQVXbwINVjLCU=\n\
-----END CERTIFICATE-----\n\
";
    const EC_SEC1_KEY: &str = "\
-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEIIdJ6SIH8sWn9Bba8i3RGmK1Rn1r5Pe/5c5iWJ8Pes2NoAoGCCqGSM49\n\
AwEHoUQDQgAEiZ+reEqZltKiNyF1k/pX3jh+T+qPgruRxM1wAhkD3qlyVvTOCwto\n\
x+rgwJt0Yj9EZJMm2pXwqUtBCGceNRwVCQ==\n\
-----END EC PRIVATE KEY-----\n\
";

    #[tokio::test]
    async fn load_pem_formats() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);

        // PKCS#8 (what the local CA writes), chain of two.
        let local = dir.path().join("local");
        load_or_create_local(&local, &[]).unwrap();
        let m = load_pem(&local.join("server.pem"), &local.join("server.key")).unwrap();
        assert_eq!(m.certs.len(), 2);
        assert!(matches!(m.key, PrivateKeyDer::Pkcs8(_)));

        for (cert, key, expect_pkcs1) in [
            (RSA_CERT, RSA_PKCS1_KEY, true),
            (EC_CERT, EC_SEC1_KEY, false),
        ] {
            fs::write(p("c.pem"), cert).unwrap();
            fs::write(p("k.pem"), key).unwrap();
            let m = load_pem(&p("c.pem"), &p("k.pem")).unwrap();
            if expect_pkcs1 {
                assert!(matches!(m.key, PrivateKeyDer::Pkcs1(_)));
            } else {
                assert!(matches!(m.key, PrivateKeyDer::Sec1(_)));
            }
            let server = server_config(&m, &[b"http/1.1"]).unwrap();
            let client = client_config(cert.as_bytes(), &[b"http/1.1"]);
            let alpn = handshake(server, client, "localhost").await.unwrap();
            assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        }

        // Mismatched key and certificate.
        fs::write(p("c.pem"), RSA_CERT).unwrap();
        fs::write(p("k.pem"), EC_SEC1_KEY).unwrap();
        let err = load_pem(&p("c.pem"), &p("k.pem")).unwrap_err();
        assert!(err.to_string().contains("k.pem"), "{err}");

        // No certificate / no key / missing file.
        fs::write(p("empty.pem"), "nothing here\n").unwrap();
        assert!(matches!(
            load_pem(&p("empty.pem"), &p("k.pem")),
            Err(TlsError::Pem { .. })
        ));
        assert!(matches!(
            load_pem(&p("c.pem"), &p("empty.pem")),
            Err(TlsError::Pem { .. })
        ));
        assert!(matches!(
            load_pem(&p("nope.pem"), &p("k.pem")),
            Err(TlsError::Io { .. })
        ));
    }

    #[test]
    fn material_debug_hides_key() {
        let dir = tempfile::tempdir().unwrap();
        let m = load_or_create_local(dir.path(), &[]).unwrap();
        let dbg = format!("{:?}", m.clone());
        assert!(dbg.contains("<redacted>"), "{dbg}");
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
    }
}
