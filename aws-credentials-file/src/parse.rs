//! Parsing the credentials file into [`Profile`]s.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::Secret;

/// The profile AWS tools use when none is named (`AWS_PROFILE` unset).
pub const DEFAULT_PROFILE: &str = "default";

/// One `[name]` section of the credentials file.
///
/// After [`parse`], `access_key_id` and `secret_access_key` are either both set or
/// both `None` (a profile with only one of them is a parse error); a profile with
/// neither holds other settings only (e.g. `region`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The name between the brackets, without a leading `profile `.
    pub name: String,
    /// Line (1-based) of the `[name]` header.
    pub line: usize,
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// Line (1-based) of `aws_access_key_id`, when present.
    pub access_key_id_line: Option<usize>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<Secret>,
    /// `aws_session_token` (temporary credentials); an empty value counts as absent.
    pub session_token: Option<Secret>,
}

impl Profile {
    /// The access key id and secret, when the profile holds both.
    pub fn keys(&self) -> Option<(&str, &Secret)> {
        Some((
            self.access_key_id.as_deref()?,
            self.secret_access_key.as_ref()?,
        ))
    }
}

/// The `[default]` profile if it holds keys, or else the first profile that does.
pub fn default_or_first(profiles: &[Profile]) -> Option<&Profile> {
    let with_keys = || profiles.iter().filter(|p| p.keys().is_some());
    with_keys()
        .find(|p| p.name == DEFAULT_PROFILE)
        .or_else(|| with_keys().next())
}

/// A syntax error: the 1-based line and what is wrong. Never contains the line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Errors reading a credentials file. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{}: {}", path.display(), error.line, error.message)]
    Parse { path: PathBuf, error: ParseError },
}

/// Reads and parses the credentials file at `path`. The file's bytes are zeroized
/// once parsed.
pub fn read_file(path: &Path) -> Result<Vec<Profile>, FileError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?);
    parse_bytes(&bytes).map_err(|error| FileError::Parse {
        path: path.to_path_buf(),
        error,
    })
}

/// [`parse`] for raw file contents: invalid UTF-8 is an error naming the line
/// that holds the first invalid byte.
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<Profile>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        ParseError::new(line, "not valid UTF-8")
    })?;
    parse(text)
}

/// Parses credentials file text in the AWS CLI INI format: `[name]` sections
/// (`[profile name]` is accepted as `[name]`), keys `aws_access_key_id`,
/// `aws_secret_access_key` and `aws_session_token` (case-insensitive), `#`/`;`
/// comment lines, `=` or `:` with optional spaces around it. Other keys (e.g.
/// `region`) and more-indented continuation lines (e.g. under `s3 =`) are ignored.
///
/// Errors: a malformed line, a key outside any section, a duplicate profile, a
/// duplicate or malformed access key id or secret, and a profile holding only one
/// of the access key id and the secret. A repeated `aws_session_token` keeps the
/// last value.
pub fn parse(text: &str) -> Result<Vec<Profile>, ParseError> {
    let mut profiles: Vec<Profile> = Vec::new();
    // Line of each profile's `aws_secret_access_key`, for the half-profile check.
    let mut secret_lines: Vec<Option<usize>> = Vec::new();
    // Indentation of the last `key = value` line in the current section;
    // more-indented lines after it are continuation lines (configparser's
    // nested values, e.g. `s3 =` blocks) and are ignored.
    let mut last_key_indent: Option<usize> = None;

    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let err = |message: &str| ParseError::new(line_no, message);
        let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if let Some(key_indent) = last_key_indent
            && indent > key_indent
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(inner) = rest.strip_suffix(']') else {
                return Err(err("section header without closing `]`"));
            };
            let mut name = inner.trim();
            if let Some(n) = name.strip_prefix("profile ") {
                name = n.trim();
            }
            if name.is_empty() {
                return Err(err("empty profile name"));
            }
            if let Some(prev) = profiles.iter().find(|p| p.name == name) {
                return Err(err(&format!(
                    "duplicate profile [{name}] (first defined on line {})",
                    prev.line
                )));
            }
            profiles.push(Profile {
                name: name.to_owned(),
                line: line_no,
                access_key_id: None,
                access_key_id_line: None,
                secret_access_key: None,
                session_token: None,
            });
            secret_lines.push(None);
            last_key_indent = None;
            continue;
        }
        let Some(sep) = line.find(['=', ':']) else {
            return Err(err("expected `[profile]`, `key = value` or a comment"));
        };
        let key = line[..sep].trim().to_ascii_lowercase();
        let value = line[sep + 1..].trim();
        let (Some(profile), Some(secret_line)) = (profiles.last_mut(), secret_lines.last_mut())
        else {
            return Err(err("key outside of any [profile] section"));
        };
        last_key_indent = Some(indent);
        match key.as_str() {
            "aws_access_key_id" => {
                if profile.access_key_id.is_some() {
                    return Err(err("duplicate aws_access_key_id"));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
                    return Err(err(
                        "aws_access_key_id must be non-empty printable ASCII without `/` or spaces",
                    ));
                }
                profile.access_key_id = Some(value.to_owned());
                profile.access_key_id_line = Some(line_no);
            }
            "aws_secret_access_key" => {
                if profile.secret_access_key.is_some() {
                    return Err(err("duplicate aws_secret_access_key"));
                }
                if value.is_empty() {
                    return Err(err("empty aws_secret_access_key"));
                }
                profile.secret_access_key = Some(Secret::new(value.to_owned()));
                *secret_line = Some(line_no);
            }
            "aws_session_token" => {
                profile.session_token = (!value.is_empty()).then(|| Secret::new(value.to_owned()));
            }
            "" => return Err(err("missing key name before `=`")),
            _ => {}
        }
    }

    for (profile, secret_line) in profiles.iter().zip(secret_lines) {
        match (profile.access_key_id_line, secret_line) {
            (Some(line), None) => {
                return Err(ParseError::new(
                    line,
                    format!(
                        "profile [{}] has aws_access_key_id but no aws_secret_access_key",
                        profile.name
                    ),
                ));
            }
            (None, Some(line)) => {
                return Err(ParseError::new(
                    line,
                    format!(
                        "profile [{}] has aws_secret_access_key but no aws_access_key_id",
                        profile.name
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &Profile) -> Option<(&str, &str)> {
        p.keys().map(|(id, s)| (id, s.expose()))
    }

    #[test]
    fn parses_aws_cli_format() {
        let profiles = parse(
            "# comment\n\
             ; another comment\n\
             [camera]\n\
             AWS_Access_Key_ID=AKIACAMERA000000000\n\
             aws_secret_access_key:cam/secret+key\n\
             region = us-west-2\n\
             \n\
             [profile viewer]\n\
             aws_access_key_id   =   AKIAVIEWER000000000  \n\
             aws_secret_access_key = viewer secret with spaces\n\
             aws_session_token = token/value==\n\
             s3 =\n\
             \x20   max_concurrent_requests = 20\n\
             \x20   aws_access_key_id = not-a-key-continuation\n\
             [default]\n\
             aws_access_key_id = AKIADEFAULT00000000\n\
             aws_secret_access_key = default=secret\n\
             aws_session_token =\n\
             [empty]\n\
             region = eu-west-1\n",
        )
        .unwrap();
        let names: Vec<_> = profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["camera", "viewer", "default", "empty"]);
        let lines: Vec<_> = profiles.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 8, 15, 19]);

        let [camera, viewer, default, empty] = &profiles[..] else {
            unreachable!()
        };
        assert_eq!(
            keys(camera),
            Some(("AKIACAMERA000000000", "cam/secret+key"))
        );
        assert_eq!(camera.access_key_id_line, Some(4));
        assert_eq!(camera.session_token, None);
        assert_eq!(
            keys(viewer),
            Some(("AKIAVIEWER000000000", "viewer secret with spaces"))
        );
        assert_eq!(
            viewer.session_token.as_ref().map(Secret::expose),
            Some("token/value==")
        );
        assert_eq!(
            keys(default),
            Some(("AKIADEFAULT00000000", "default=secret"))
        );
        assert_eq!(default.session_token, None, "empty token counts as absent");
        assert_eq!(keys(empty), None);
        assert_eq!(empty.access_key_id_line, None);

        assert_eq!(default_or_first(&profiles).unwrap().name, "default");
    }

    #[test]
    fn default_falls_back_to_first_profile_with_keys() {
        let profiles = parse(
            "[default]\nregion=us-east-1\n\
             [b]\naws_access_key_id=AKIAB\naws_secret_access_key=sb\n\
             [a]\naws_access_key_id=AKIAA\naws_secret_access_key=sa\n",
        )
        .unwrap();
        assert_eq!(default_or_first(&profiles).unwrap().name, "b");
        assert!(default_or_first(&profiles[..1]).is_none());
        assert!(default_or_first(&[]).is_none());
    }

    #[test]
    fn empty_text_has_no_profiles() {
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse("# only a comment\n\n").unwrap(), []);
    }

    fn parse_err(text: &str) -> (usize, String) {
        let e = parse(text).unwrap_err();
        assert_eq!(e.to_string(), format!("line {}: {}", e.line, e.message));
        (e.line, e.message)
    }

    #[test]
    fn errors_name_the_line_but_never_the_secret() {
        let (line, msg) = parse_err("aws_access_key_id = AKIA\n");
        assert_eq!(line, 1);
        assert!(msg.contains("outside"), "{msg}");

        let (line, msg) =
            parse_err("[default]\naws_secret_access_key = TOPSECRET\ngarbage TOPSECRET\n");
        assert_eq!(line, 3);
        assert!(!msg.contains("TOPSECRET"), "{msg}");

        let (line, msg) = parse_err("[default]\naws_secret_access_key = TOPSECRET\n");
        assert_eq!(line, 2);
        assert!(msg.contains("no aws_access_key_id"), "{msg}");
        assert!(!msg.contains("TOPSECRET"), "{msg}");

        let (line, msg) = parse_err("[p]\naws_access_key_id = AKID\nregion = x\n");
        assert_eq!(line, 2);
        assert_eq!(
            msg,
            "profile [p] has aws_access_key_id but no aws_secret_access_key"
        );

        let (line, msg) = parse_err("[a]\n[b\n");
        assert_eq!(line, 2);
        assert_eq!(msg, "section header without closing `]`");

        let (line, msg) = parse_err("[ ]\n");
        assert_eq!((line, msg.as_str()), (1, "empty profile name"));

        let (line, msg) = parse_err(
            "[a]\naws_access_key_id=X\naws_secret_access_key=s\n[a]\naws_access_key_id=Y\n",
        );
        assert_eq!(line, 4);
        assert_eq!(msg, "duplicate profile [a] (first defined on line 1)");

        let (line, msg) = parse_err("[a]\naws_access_key_id=X\nAWS_ACCESS_KEY_ID=Y\n");
        assert_eq!((line, msg.as_str()), (3, "duplicate aws_access_key_id"));

        let (line, msg) = parse_err("[a]\naws_secret_access_key=s1\naws_secret_access_key=s2\n");
        assert_eq!((line, msg.as_str()), (3, "duplicate aws_secret_access_key"));

        let (line, msg) = parse_err("[a]\naws_secret_access_key =\n");
        assert_eq!((line, msg.as_str()), (2, "empty aws_secret_access_key"));

        let (line, msg) = parse_err("[a]\n = value\n");
        assert_eq!((line, msg.as_str()), (2, "missing key name before `=`"));

        let (line, _) = parse_err("[a]\naws_access_key_id = AK/ID\n");
        assert_eq!(line, 2);
        let (line, _) = parse_err("[a]\naws_access_key_id = AK ID\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let e = parse_bytes(b"[a]\naws_secret_access_key = \xff\xfe\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "not valid UTF-8"));
        assert_eq!(parse_bytes(b"[a]\n").unwrap().len(), 1);
    }

    #[test]
    fn read_file_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let e = read_file(&path).unwrap_err();
        assert!(
            matches!(&e, FileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(
            e.to_string().starts_with(&format!("{}: ", path.display())),
            "{e}"
        );

        fs::write(&path, "[default]\naws_secret_access_key = TOPSECRET\n").unwrap();
        let e = read_file(&path).unwrap_err();
        let shown = e.to_string();
        assert_eq!(
            shown,
            format!(
                "{}:2: profile [default] has aws_secret_access_key but no aws_access_key_id",
                path.display()
            )
        );
        assert!(matches!(
            e,
            FileError::Parse {
                error: ParseError { line: 2, .. },
                ..
            }
        ));

        fs::write(
            &path,
            "[default]\naws_access_key_id=A\naws_secret_access_key=s\n",
        )
        .unwrap();
        let profiles = read_file(&path).unwrap();
        assert_eq!(keys(&profiles[0]), Some(("A", "s")));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let profiles = parse(
            "[a]\naws_access_key_id=AKID\naws_secret_access_key=hunter2\naws_session_token=tok3n\n",
        )
        .unwrap();
        let dbg = format!("{profiles:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("tok3n"), "{dbg}");
        assert!(dbg.contains("AKID"), "{dbg}");
    }
}
