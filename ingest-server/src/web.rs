//! The web page at `/`: lists streams and plays one live with hls.js, with a timeline of stored
//! fragments and their metadata tags. Its files (`ingest-server/web/`, third-party ones under
//! `web/vendor/<package>-<version>/`, fetched by `web/update-vendor.sh`) are compiled into the
//! binary; nothing is loaded from elsewhere at run time. The page signs its API calls itself
//! (SigV4 in the browser), so serving its files needs no credentials.

use http::{HeaderValue, Response, StatusCode, header};

use crate::protocol::body::{ResponseBody, full};

/// How long a browser may keep a file without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caching {
    /// Revalidate on every use: the page's own files, which change with the server.
    Revalidate,
    /// Never changes under this path: vendored files live under a versioned directory.
    Immutable,
}

impl Caching {
    fn header(self) -> &'static str {
        match self {
            Caching::Revalidate => "no-cache",
            Caching::Immutable => "public, max-age=31536000, immutable",
        }
    }
}

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    caching: Caching,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The path of the page's configuration (the server's region, for the login form's default).
pub const CONFIG_PATH: &str = "/web/config.json";

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        caching: Caching::Revalidate,
        body: include_bytes!("../web/index.html"),
    },
    Asset {
        path: "/index.html",
        content_type: HTML,
        caching: Caching::Revalidate,
        body: include_bytes!("../web/index.html"),
    },
    Asset {
        path: "/web/app.js",
        content_type: JS,
        caching: Caching::Revalidate,
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        path: "/web/ebml.mjs",
        content_type: JS,
        caching: Caching::Revalidate,
        body: include_bytes!("../web/ebml.mjs"),
    },
    Asset {
        path: "/web/style.css",
        content_type: CSS,
        caching: Caching::Revalidate,
        body: include_bytes!("../web/style.css"),
    },
    Asset {
        path: "/web/vendor/hls.js-1.7.4/hls.min.js",
        content_type: JS,
        caching: Caching::Immutable,
        body: include_bytes!("../web/vendor/hls.js-1.7.4/hls.min.js"),
    },
    Asset {
        path: "/web/vendor/hls.js-1.7.4/LICENSE",
        content_type: TEXT,
        caching: Caching::Immutable,
        body: include_bytes!("../web/vendor/hls.js-1.7.4/LICENSE"),
    },
    Asset {
        path: "/web/vendor/aws4fetch-1.0.20/aws4fetch.esm.mjs",
        content_type: JS,
        caching: Caching::Immutable,
        body: include_bytes!("../web/vendor/aws4fetch-1.0.20/aws4fetch.esm.mjs"),
    },
    Asset {
        path: "/web/vendor/aws4fetch-1.0.20/LICENSE",
        content_type: TEXT,
        caching: Caching::Immutable,
        body: include_bytes!("../web/vendor/aws4fetch-1.0.20/LICENSE"),
    },
];

/// Content-Security-Policy of every file: scripts, styles and API calls from this origin only;
/// media from the MediaSource blobs hls.js makes; hls.js runs its transmuxer in a blob worker.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The response for a GET or HEAD of `path`, when it is one of the page's files; `None`
/// otherwise. `region` is the server's region (`--region`), served in the page's configuration.
pub fn serve(path: &str, region: &str) -> Option<Response<ResponseBody>> {
    if path == CONFIG_PATH {
        let body = serde_json::json!({ "region": region, "service": "kinesisvideo" }).to_string();
        return Some(response(
            "application/json",
            Caching::Revalidate,
            body.into_bytes(),
        ));
    }
    let asset = ASSETS.iter().find(|a| a.path == path)?;
    Some(response(asset.content_type, asset.caching, asset.body))
}

fn response(
    content_type: &'static str,
    caching: Caching,
    body: impl Into<bytes::Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(caching.header()),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // Streaming session URLs carry their token in the query string.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn body(response: Response<ResponseBody>) -> Vec<u8> {
        // A full body is ready at once.
        use futures_util::FutureExt;
        match response.into_body().collect().now_or_never() {
            Some(Ok(collected)) => collected.to_bytes().to_vec(),
            _ => panic!("the body was not ready"),
        }
    }

    fn header<'a>(response: &'a Response<ResponseBody>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn serves_the_page_with_its_content_types() {
        for (path, content_type) in [
            ("/", HTML),
            ("/index.html", HTML),
            ("/web/app.js", JS),
            ("/web/ebml.mjs", JS),
            ("/web/style.css", CSS),
            ("/web/vendor/hls.js-1.7.4/hls.min.js", JS),
            ("/web/vendor/hls.js-1.7.4/LICENSE", TEXT),
            ("/web/vendor/aws4fetch-1.0.20/aws4fetch.esm.mjs", JS),
            ("/web/vendor/aws4fetch-1.0.20/LICENSE", TEXT),
            (CONFIG_PATH, "application/json"),
        ] {
            let response = serve(path, "us-west-2").unwrap_or_else(|| panic!("{path} not served"));
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), content_type, "{path}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert!(
                header(&response, "content-security-policy").contains("script-src 'self'"),
                "{path}"
            );
            assert!(!body(response).is_empty(), "{path} is empty");
        }
    }

    #[test]
    fn other_paths_are_not_the_page() {
        for path in [
            "",
            "/web",
            "/web/",
            "/web/vendor/",
            "/web/app.js/",
            "/web/../web/app.js",
            "/WEB/app.js",
            "/app.js",
            "/style.css",
            "/favicon.ico",
            "/web/vendor/hls.js-1.7.4/hls.min.js.map",
            "/web/vendor/hls.js-0.0.1/hls.min.js",
            "/getMedia",
            "/listStreams",
            "/hls/v1/getHLSMasterPlaylist.m3u8",
            "/dash/v1/getDASHManifest.mpd",
        ] {
            assert!(serve(path, "us-west-2").is_none(), "{path:?} was served");
        }
    }

    #[test]
    fn caching_is_immutable_only_for_versioned_vendor_files() {
        for asset in ASSETS {
            let response = serve(asset.path, "r").unwrap();
            let cache = header(&response, "cache-control");
            if asset.path.starts_with("/web/vendor/") {
                assert_eq!(
                    cache, "public, max-age=31536000, immutable",
                    "{}",
                    asset.path
                );
                let dir = asset.path.split('/').nth(3).unwrap_or("");
                assert!(
                    dir.rsplit_once('-')
                        .is_some_and(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit())),
                    "{} is immutable but not under a versioned directory",
                    asset.path
                );
            } else {
                assert_eq!(cache, "no-cache", "{}", asset.path);
            }
        }
        let config = serve(CONFIG_PATH, "r").unwrap();
        assert_eq!(header(&config, "cache-control"), "no-cache");
    }

    #[test]
    fn config_carries_the_region_as_json() {
        let response = serve(CONFIG_PATH, "eu-\"west\"-1").unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body(response)).unwrap();
        assert_eq!(json["region"], "eu-\"west\"-1");
        assert_eq!(json["service"], "kinesisvideo");
    }

    /// Every local file the page references (src/href in index.html, imports in the scripts)
    /// is served: catches a vendored version bumped in one place only.
    #[test]
    fn every_reference_of_the_page_is_served() {
        let reference =
            regex::Regex::new(r#"(?:src|href)="(/[^"]*)"|from\s+'(\./[^']+|/[^']+)'"#).unwrap();
        let mut checked = 0;
        for asset in ASSETS {
            let Ok(text) = std::str::from_utf8(asset.body) else {
                continue;
            };
            if asset.path.starts_with("/web/vendor/") {
                continue;
            }
            for caps in reference.captures_iter(text) {
                let target = caps.get(1).or_else(|| caps.get(2)).unwrap().as_str();
                let path = match target.strip_prefix("./") {
                    Some(rel) => format!("/web/{rel}"),
                    None => target.to_owned(),
                };
                assert!(
                    serve(&path, "r").is_some(),
                    "{} references {target}, which is not served",
                    asset.path
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 5,
            "found only {checked} references: the pattern is stale"
        );
    }

    #[test]
    fn vendored_packages_ship_their_licenses() {
        for asset in ASSETS.iter().filter(|a| a.path.starts_with("/web/vendor/")) {
            let dir = &asset.path[..asset.path.rfind('/').unwrap()];
            assert!(
                serve(&format!("{dir}/LICENSE"), "r").is_some(),
                "{dir} has no LICENSE"
            );
        }
    }

    #[test]
    fn the_page_holds_no_inline_script_or_style() {
        let html = std::str::from_utf8(serve("/", "r").map(body).unwrap().as_slice())
            .unwrap()
            .to_owned();
        let inline_script = regex::Regex::new(r"<script(?:\s[^>]*)?>\s*[^<\s]").unwrap();
        assert!(
            !inline_script.is_match(&html),
            "inline script in index.html"
        );
        assert!(!html.contains("<style"), "inline style in index.html");
        assert!(!html.contains(" style="), "style attribute in index.html");
        let handler = regex::Regex::new(r"\son[a-z]+\s*=").unwrap();
        assert!(
            !handler.is_match(&html),
            "inline event handler in index.html"
        );
    }
}
