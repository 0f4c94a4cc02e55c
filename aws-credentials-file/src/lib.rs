//! The AWS CLI shared credentials file (`~/.aws/credentials`), read in one place.
//!
//! Why this crate exists: three binaries read the same file format — the ingest server
//! (which accepts every key in its own `credentials` file, and also writes that file),
//! the bench load generator and the camera agent (which sign requests with one profile)
//! — and they must agree on what a valid file is. [`parse`] turns the text into
//! [`Profile`]s, [`read_file`] does the same for a path, and [`resolve_credentials`]
//! picks a client's keys the way AWS tools do (environment, then file and profile).
//! Secrets are held in [`Secret`], which never prints its value and is zeroized on drop;
//! errors name the file, the line or the profile, never a secret.
//!
//! ```
//! let profiles = aws_credentials_file::parse(
//!     "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t\n",
//! )
//! .unwrap();
//! let (id, secret) = profiles[0].keys().unwrap();
//! assert_eq!((id, secret.expose()), ("AKIDEXAMPLE", "s3cr3t"));
//! assert_eq!(format!("{secret:?}"), "<redacted>");
//! ```

mod parse;
mod resolve;
mod secret;

pub use parse::{
    DEFAULT_PROFILE, FileError, ParseError, Profile, default_or_first, parse, parse_bytes,
    read_file,
};
pub use resolve::{Credentials, ResolveError, resolve_credentials, resolve_credentials_with};
pub use secret::Secret;
