//! Resolving a client's credentials as AWS tools do: environment, then the shared
//! credentials file and profile.

use std::path::{Path, PathBuf};

use crate::{DEFAULT_PROFILE, FileError, Secret};

/// A client's keys and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// For logs: `environment`, or `PATH (profile NAME)`.
    pub source: String,
}

/// Why no credentials were resolved. Messages name variables, files and profiles,
/// never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{set} is set but {missing} is not: set both, or neither to use the credentials file")]
    PartialEnvironment {
        set: &'static str,
        missing: &'static str,
    },
    #[error(
        "no credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and the home \
         directory is unknown (set HOME or AWS_SHARED_CREDENTIALS_FILE)"
    )]
    NoHome,
    #[error(
        "no credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and {} does not exist",
        path.display()
    )]
    FileNotFound { path: PathBuf },
    #[error(transparent)]
    File(FileError),
    #[error("{}: no profile [{profile}]", path.display())]
    ProfileNotFound { path: PathBuf, profile: String },
    #[error(
        "{}: profile [{profile}] has no aws_access_key_id and aws_secret_access_key",
        path.display()
    )]
    NoKeys { path: PathBuf, profile: String },
}

/// [`resolve_credentials_with`] on the process environment and home directory.
pub fn resolve_credentials() -> Result<Credentials, ResolveError> {
    resolve_credentials_with(
        |name| std::env::var(name).ok(),
        std::env::home_dir().as_deref(),
    )
}

/// Resolves credentials as the AWS CLI and SDKs do, reading variables through `env`:
///
/// 1. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN` if
///    set) when both are set; only one of them set is an error.
/// 2. Else the file `AWS_SHARED_CREDENTIALS_FILE` (a leading `~/` is the home
///    directory), by default `HOME/.aws/credentials`, profile `AWS_PROFILE`, by
///    default `default`.
///
/// An empty variable counts as unset.
pub fn resolve_credentials_with(
    env: impl Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Credentials, ResolveError> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());

    let access_key_id = var("AWS_ACCESS_KEY_ID");
    let secret = var("AWS_SECRET_ACCESS_KEY").map(Secret::new);
    match (access_key_id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            return Ok(Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
                source: "environment".to_owned(),
            });
        }
        (Some(_), None) => {
            return Err(ResolveError::PartialEnvironment {
                set: "AWS_ACCESS_KEY_ID",
                missing: "AWS_SECRET_ACCESS_KEY",
            });
        }
        (None, Some(_)) => {
            return Err(ResolveError::PartialEnvironment {
                set: "AWS_SECRET_ACCESS_KEY",
                missing: "AWS_ACCESS_KEY_ID",
            });
        }
        (None, None) => {}
    }

    let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => match p.strip_prefix("~/") {
            Some(rest) => home.ok_or(ResolveError::NoHome)?.join(rest),
            None => PathBuf::from(p),
        },
        None => home
            .ok_or(ResolveError::NoHome)?
            .join(".aws")
            .join("credentials"),
    };
    let profile_name = var("AWS_PROFILE").unwrap_or_else(|| DEFAULT_PROFILE.to_owned());

    let profiles = match crate::read_file(&path) {
        Ok(profiles) => profiles,
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResolveError::FileNotFound { path });
        }
        Err(e) => return Err(ResolveError::File(e)),
    };
    let Some(profile) = profiles.into_iter().find(|p| p.name == profile_name) else {
        return Err(ResolveError::ProfileNotFound {
            path,
            profile: profile_name,
        });
    };
    match (profile.access_key_id, profile.secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: profile.session_token,
            source: format!("{} (profile {profile_name})", path.display()),
        }),
        _ => Err(ResolveError::NoKeys {
            path,
            profile: profile_name,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;

    use super::*;

    const FILE: &str = "[default]\n\
                        aws_access_key_id = AKIDDEFAULT\n\
                        aws_secret_access_key = secret-default\n\
                        [camera]\n\
                        aws_access_key_id = AKIDCAMERA\n\
                        aws_secret_access_key = secret-camera\n\
                        aws_session_token = token-camera\n\
                        [regiononly]\n\
                        region = eu-west-1\n";

    /// A home directory with `.aws/credentials` holding [`FILE`].
    fn home() -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".aws")).unwrap();
        fs::write(home.path().join(".aws/credentials"), FILE).unwrap();
        home
    }

    fn resolve(vars: &[(&str, &str)], home: Option<&Path>) -> Result<Credentials, ResolveError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_credentials_with(|name| vars.get(name).cloned(), home)
    }

    fn summary(c: &Credentials) -> (&str, &str, Option<&str>) {
        (
            c.access_key_id.as_str(),
            c.secret_access_key.expose(),
            c.session_token.as_ref().map(Secret::expose),
        )
    }

    #[test]
    fn environment_wins_over_the_file() {
        let home = home();
        let c = resolve(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "secret-env"),
                ("AWS_PROFILE", "camera"),
            ],
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(summary(&c), ("AKIDENV", "secret-env", None));
        assert_eq!(c.source, "environment");

        let c = resolve(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "secret-env"),
                ("AWS_SESSION_TOKEN", "token-env"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(summary(&c), ("AKIDENV", "secret-env", Some("token-env")));
        assert!(!format!("{c:?}").contains("secret-env"));
    }

    #[test]
    fn half_set_environment_is_an_error() {
        let home = home();
        let e = resolve(&[("AWS_ACCESS_KEY_ID", "AKIDENV")], Some(home.path())).unwrap_err();
        assert!(matches!(
            e,
            ResolveError::PartialEnvironment {
                missing: "AWS_SECRET_ACCESS_KEY",
                ..
            }
        ));
        let e = resolve(&[("AWS_SECRET_ACCESS_KEY", "TOPSECRET")], Some(home.path())).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
            "{shown}"
        );
        assert!(!shown.contains("TOPSECRET"), "{shown}");

        // Empty counts as unset: falls through to the file.
        let c = resolve(
            &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKIDDEFAULT");
    }

    #[test]
    fn file_and_profile() {
        let home = home();
        let path = home.path().join(".aws/credentials");
        let c = resolve(&[], Some(home.path())).unwrap();
        assert_eq!(summary(&c), ("AKIDDEFAULT", "secret-default", None));
        assert_eq!(c.source, format!("{} (profile default)", path.display()));

        let c = resolve(&[("AWS_PROFILE", "camera")], Some(home.path())).unwrap();
        assert_eq!(
            summary(&c),
            ("AKIDCAMERA", "secret-camera", Some("token-camera"))
        );
        assert_eq!(c.source, format!("{} (profile camera)", path.display()));

        // AWS_SHARED_CREDENTIALS_FILE, absolute and `~/`-relative; the session token
        // from the environment is not mixed into file credentials.
        let other = home.path().join("other");
        fs::write(
            &other,
            "[x]\naws_access_key_id=AKIDX\naws_secret_access_key=sx\n",
        )
        .unwrap();
        for file in [other.display().to_string(), "~/other".to_owned()] {
            let c = resolve(
                &[
                    ("AWS_SHARED_CREDENTIALS_FILE", &file),
                    ("AWS_PROFILE", "x"),
                    ("AWS_SESSION_TOKEN", "stray"),
                ],
                Some(home.path()),
            )
            .unwrap();
            assert_eq!(summary(&c), ("AKIDX", "sx", None));
            assert_eq!(c.source, format!("{} (profile x)", other.display()));
        }
        // An explicit file needs no home directory.
        let c = resolve(
            &[
                ("AWS_SHARED_CREDENTIALS_FILE", &other.display().to_string()),
                ("AWS_PROFILE", "x"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKIDX");
    }

    #[test]
    fn missing_profile_or_keys() {
        let home = home();
        let path = home.path().join(".aws/credentials");
        let e = resolve(&[("AWS_PROFILE", "nope")], Some(home.path())).unwrap_err();
        assert!(matches!(&e, ResolveError::ProfileNotFound { profile, .. } if profile == "nope"));
        assert_eq!(
            e.to_string(),
            format!("{}: no profile [nope]", path.display())
        );

        let e = resolve(&[("AWS_PROFILE", "regiononly")], Some(home.path())).unwrap_err();
        assert!(matches!(&e, ResolveError::NoKeys { profile, .. } if profile == "regiononly"));
        assert_eq!(
            e.to_string(),
            format!(
                "{}: profile [regiononly] has no aws_access_key_id and aws_secret_access_key",
                path.display()
            )
        );
    }

    #[test]
    fn missing_file_or_home() {
        let empty_home = tempfile::tempdir().unwrap();
        let e = resolve(&[], Some(empty_home.path())).unwrap_err();
        let path = empty_home.path().join(".aws/credentials");
        assert!(matches!(&e, ResolveError::FileNotFound { path: p } if *p == path));
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");

        let e = resolve(&[], None).unwrap_err();
        assert!(matches!(e, ResolveError::NoHome));
        let e = resolve(&[("AWS_SHARED_CREDENTIALS_FILE", "~/creds")], None).unwrap_err();
        assert!(matches!(e, ResolveError::NoHome));
    }

    #[test]
    fn bad_file_is_a_parse_error_without_the_secret() {
        let home = home();
        let path = home.path().join(".aws/credentials");
        fs::write(&path, "[default]\naws_secret_access_key = TOPSECRET\n").unwrap();
        let e = resolve(&[], Some(home.path())).unwrap_err();
        assert!(matches!(e, ResolveError::File(FileError::Parse { .. })));
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:2: ", path.display())),
            "{shown}"
        );
        assert!(!shown.contains("TOPSECRET"), "{shown}");
    }
}
