//! Access keys the server accepts, read from an AWS CLI style `credentials` file.
//!
//! The file uses the same INI format as `~/.aws/credentials`, so an operator can
//! copy a profile between the server and their clients unchanged:
//!
//! ```ini
//! [default]
//! aws_access_key_id = AKIAIOSFODNN7EXAMPLE
//! aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//! ```
//!
//! Every profile holding both keys is loaded. Secrets never reach logs or error
//! messages: [`SecretKey`] prints as `<redacted>` and parse errors name the file
//! and line, never the line's content.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_credentials_file::{DEFAULT_PROFILE, Profile};
use rand::Rng;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// A secret access key. Zeroized on drop; `Debug` and `Display` print `<redacted>`.
pub use aws_credentials_file::Secret as SecretKey;

/// Errors reading or creating the credentials file. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{}: no profile holds both aws_access_key_id and aws_secret_access_key",
        path.display()
    )]
    NoCredentials { path: PathBuf },
}

/// Access key id -> secret access key, for every profile of the credentials file.
#[derive(Debug, Default, Clone)]
pub struct CredentialStore {
    keys: HashMap<String, SecretKey>,
    default_access_key_id: Option<String>,
}

impl CredentialStore {
    /// Reads the credentials file at `path` (normally `DIR/credentials`), in the
    /// AWS CLI INI format as [`aws_credentials_file::parse`] reads it, and loads
    /// every profile holding both `aws_access_key_id` and `aws_secret_access_key`.
    /// Other keys (e.g. `aws_session_token`, `region`) are ignored.
    ///
    /// If the file does not exist, creates it (and its parent directory) with a
    /// `[default]` profile holding a random access key id (20 chars, `A-Z0-9`,
    /// starting `AKIA`) and a random 40-char secret, mode 0600, written
    /// atomically. Returns the store and whether the file was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CredentialsError> {
        let io_err = |source| CredentialsError::Io {
            path: path.to_path_buf(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                warn_if_readable_by_others(path);
                let profiles = aws_credentials_file::parse_bytes(&bytes).map_err(|e| {
                    CredentialsError::Parse {
                        path: path.to_path_buf(),
                        line: e.line,
                        message: e.message,
                    }
                })?;
                Ok((Self::from_profiles(profiles, path)?, false))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let access_key_id = random_access_key_id();
                let secret = random_secret_key();
                let contents = Zeroizing::new(format!(
                    "# Credentials accepted by ingest-server (AWS CLI format).\n\
                     # Add profiles to allow more keys; restart the server to apply.\n\
                     [{DEFAULT_PROFILE}]\n\
                     aws_access_key_id = {access_key_id}\n\
                     aws_secret_access_key = {}\n",
                    secret.expose()
                ));
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(|source| CredentialsError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let created =
                    write_file_atomic(path, contents.as_bytes(), 0o600, false).map_err(io_err)?;
                if !created {
                    // Another process created it between our read and our write:
                    // theirs wins, read it.
                    return Self::load_or_create(path);
                }
                tracing::info!(
                    path = %path.display(),
                    access_key_id = %access_key_id,
                    "created credentials file with a new random access key"
                );
                let mut store = Self::default();
                store.insert(access_key_id.clone(), secret);
                store.default_access_key_id = Some(access_key_id);
                Ok((store, true))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// The secret for `access_key_id` (exact, case-sensitive match).
    pub fn secret_for(&self, access_key_id: &str) -> Option<&SecretKey> {
        self.keys.get(access_key_id)
    }

    /// The access key id of the `[default]` profile, or else of the first
    /// profile in the file; `None` only for a store built empty in code.
    pub fn default_access_key_id(&self) -> Option<&str> {
        self.default_access_key_id.as_deref()
    }

    /// Adds (or replaces) a key. For tests and embedding; the server itself
    /// loads keys with [`CredentialStore::load_or_create`].
    pub fn insert(&mut self, access_key_id: impl Into<String>, secret: SecretKey) {
        let access_key_id = access_key_id.into();
        if self.default_access_key_id.is_none() {
            self.default_access_key_id = Some(access_key_id.clone());
        }
        self.keys.insert(access_key_id, secret);
    }

    /// Number of distinct access keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The store for parsed `profiles` of the file at `path`: every profile
    /// holding keys; an access key id in several profiles must have one secret.
    fn from_profiles(profiles: Vec<Profile>, path: &Path) -> Result<Self, CredentialsError> {
        let mut store = Self {
            default_access_key_id: aws_credentials_file::default_or_first(&profiles)
                .and_then(|p| p.access_key_id.clone()),
            ..Self::default()
        };
        for profile in profiles {
            let (Some(akid), Some(secret)) = (profile.access_key_id, profile.secret_access_key)
            else {
                continue;
            };
            if let Some(existing) = store.keys.get(&akid)
                && *existing != secret
            {
                return Err(CredentialsError::Parse {
                    path: path.to_path_buf(),
                    line: profile.access_key_id_line.unwrap_or(profile.line),
                    message: format!(
                        "access key id {akid} appears in several profiles with different secrets"
                    ),
                });
            }
            store.keys.insert(akid, secret);
        }
        if store.keys.is_empty() {
            return Err(CredentialsError::NoCredentials {
                path: path.to_path_buf(),
            });
        }
        Ok(store)
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "credentials file is accessible by group/others; consider chmod 600"
        );
    }
}

const ACCESS_KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[OsRng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// `AKIA` + 16 characters of `A-Z0-9`, like an AWS long-term access key id.
fn random_access_key_id() -> String {
    format!("AKIA{}", random_string(ACCESS_KEY_ALPHABET, 16))
}

/// 40 characters of `A-Za-z0-9+/`, like an AWS secret access key (~238 bits).
fn random_secret_key() -> SecretKey {
    SecretKey::new(random_string(SECRET_ALPHABET, 40))
}

/// Writes `contents` to `path` atomically: a temporary file in the same
/// directory (created with `mode`), fsync, then rename over `path` (or, with
/// `replace == false`, a hard link that fails if `path` exists), then fsync of
/// the directory. Returns `false` only when `replace == false` and `path`
/// already existed (nothing written).
pub(crate) fn write_file_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: bool,
) -> io::Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp.{}.{:016x}",
        std::process::id(),
        OsRng.r#gen::<u64>()
    ));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // `mode` is filtered by the umask at creation; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        let written = if replace {
            fs::rename(&tmp, path)?;
            true
        } else {
            match fs::hard_link(&tmp, path) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            }
        };
        File::open(dir)?.sync_all()?;
        Ok(written)
    })();
    // After a rename this is a no-op error; after a hard link or a failure it
    // removes the temporary name.
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("credentials");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn creates_file_with_random_default_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("credentials");
        let (store, created) = CredentialStore::load_or_create(&path).unwrap();
        assert!(created);
        let akid = store.default_access_key_id().unwrap().to_owned();
        assert_eq!(akid.len(), 20);
        assert!(akid.starts_with("AKIA"));
        assert!(akid.bytes().all(|b| ACCESS_KEY_ALPHABET.contains(&b)));
        let secret = store.secret_for(&akid).unwrap().expose().to_owned();
        assert_eq!(secret.len(), 40);
        assert!(secret.bytes().all(|b| SECRET_ALPHABET.contains(&b)));

        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("credentials")]);

        // Second start reads the same key back.
        let (again, created) = CredentialStore::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.default_access_key_id(), Some(akid.as_str()));
        assert_eq!(again.secret_for(&akid).unwrap().expose(), secret);

        // Two creations produce different keys.
        let other = dir.path().join("other");
        let (store2, _) = CredentialStore::load_or_create(&other).unwrap();
        assert_ne!(store2.default_access_key_id(), Some(akid.as_str()));
    }

    #[test]
    fn loads_every_profile_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "# comment\n\
             [camera]\n\
             AWS_Access_Key_ID=AKIACAMERA000000000\n\
             aws_secret_access_key:cam/secret+key\n\
             [profile viewer]\n\
             aws_access_key_id = AKIAVIEWER000000000\n\
             aws_secret_access_key = viewer secret with spaces\n\
             aws_session_token = ignored\n\
             [default]\n\
             aws_access_key_id = AKIADEFAULT00000000\n\
             aws_secret_access_key = default=secret\n\
             [same-key-again]\n\
             aws_access_key_id = AKIADEFAULT00000000\n\
             aws_secret_access_key = default=secret\n\
             [empty]\n\
             region = eu-west-1\n",
        );
        let (store, created) = CredentialStore::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(store.len(), 3);
        assert_eq!(store.default_access_key_id(), Some("AKIADEFAULT00000000"));
        assert_eq!(
            store.secret_for("AKIACAMERA000000000").unwrap().expose(),
            "cam/secret+key"
        );
        assert_eq!(
            store.secret_for("AKIAVIEWER000000000").unwrap().expose(),
            "viewer secret with spaces"
        );
        assert_eq!(
            store.secret_for("AKIADEFAULT00000000").unwrap().expose(),
            "default=secret"
        );
        assert!(store.secret_for("akiadefault00000000").is_none());
        assert!(store.secret_for("AKIAUNKNOWN").is_none());
    }

    #[test]
    fn default_falls_back_to_first_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[default]\nregion=us-east-1\n\
             [b]\naws_access_key_id=AKIAB\naws_secret_access_key=sb\n\
             [a]\naws_access_key_id=AKIAA\naws_secret_access_key=sa\n",
        );
        let (store, _) = CredentialStore::load_or_create(&path).unwrap();
        assert_eq!(store.default_access_key_id(), Some("AKIAB"));
    }

    fn parse_err(text: &[u8]) -> (usize, String) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials");
        fs::write(&p, text).unwrap();
        match CredentialStore::load_or_create(&p) {
            Err(e @ CredentialsError::Parse { line, .. }) => {
                let shown = e.to_string();
                assert!(
                    shown.starts_with(&format!("{}:{line}: ", p.display())),
                    "{shown}"
                );
                (line, shown)
            }
            other => panic!("expected parse error, got {other:?}"),
        }
    }

    /// Syntax errors come from `aws_credentials_file` (tested there); here: that
    /// they are reported with the path, and the server's own checks.
    #[test]
    fn errors_name_path_and_line_but_never_the_secret() {
        let (line, msg) = parse_err(b"[default]\naws_secret_access_key = TOPSECRET\n");
        assert_eq!(line, 2);
        assert!(
            msg.ends_with(": profile [default] has aws_secret_access_key but no aws_access_key_id")
        );
        assert!(!msg.contains("TOPSECRET"), "{msg}");

        let (line, msg) = parse_err(b"[a]\naws_secret_access_key = \xffTOPSECRET\n");
        assert_eq!(line, 2);
        assert!(msg.ends_with(": not valid UTF-8"), "{msg}");

        let (line, msg) = parse_err(
            b"[a]\naws_access_key_id=X\naws_secret_access_key=s1\n\
              [b]\naws_access_key_id=X\naws_secret_access_key=s2\n",
        );
        assert_eq!(line, 5);
        assert!(
            msg.ends_with(": access key id X appears in several profiles with different secrets"),
            "{msg}"
        );
        assert!(!msg.contains("s1") && !msg.contains("s2"), "{msg}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["", "# nothing\n[default]\nregion=us-east-1\n"] {
            let path = write(dir.path(), text);
            let e = CredentialStore::load_or_create(&path).unwrap_err();
            assert!(matches!(e, CredentialsError::NoCredentials { .. }), "{e:?}");
        }
    }

    #[test]
    fn store_debug_hides_secrets() {
        let mut store = CredentialStore::default();
        store.insert("AKID", SecretKey::new("hunter2hunter2".into()));
        let dbg = format!("{store:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("AKID"), "{dbg}");
    }

    #[test]
    fn atomic_write_without_replace_keeps_existing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(write_file_atomic(&p, b"one", 0o600, false).unwrap());
        assert!(!write_file_atomic(&p, b"two", 0o600, false).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert!(write_file_atomic(&p, b"three", 0o644, true).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"three");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
