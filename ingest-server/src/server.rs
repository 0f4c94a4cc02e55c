//! The listeners and the HTTP service every connection runs.
//!
//! Two listeners serve the same routes. The main one offers HTTP/2 and HTTP/1.1 (the
//! Kinesis Data Streams SDKs need h2 for SubscribeToShard). The video data-plane one
//! offers only HTTP/1.1: the AWS producer SDK switches PutMedia to h2 whenever it is
//! offered, which drops the `connection` and `transfer-encoding` headers it signed and
//! so breaks its own signature. GetDataEndpoint returns the data-plane listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::protocol::body::{MAX_JSON_BODY, ResponseBody, read_capped};
use crate::protocol::error::AwsError;
use crate::protocol::router::VideoOperation;
use crate::protocol::rpc;
use crate::protocol::sigv4::{self, PayloadHash};
use crate::services::streams::StreamsService;
use crate::services::video::{RequestContext, VideoService};

/// SigV4 service names accepted for the video APIs.
const VIDEO_SERVICES: &[&str] = &["kinesisvideo"];
/// SigV4 service name of Kinesis Data Streams.
const STREAMS_SERVICES: &[&str] = &["kinesis"];
/// Largest Kinesis request body: a PutRecords of 10 MiB (records above 1 MiB allowed by
/// UpdateMaxRecordSize) base64-encoded in JSON, with room for keys and framing.
const MAX_RPC_BODY: usize = 16 * 1024 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request needs.
pub struct App {
    /// The video service.
    pub video: Arc<VideoService>,
    /// The Kinesis Data Streams service.
    pub streams: Arc<StreamsService>,
    /// Accepted credentials.
    pub credentials: Arc<CredentialStore>,
    /// The command-line configuration (the web page serves its region).
    pub config: Arc<Config>,
}

/// Which protocols a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// HTTP/2 and HTTP/1.1 (ALPN, or h2c prior knowledge on plain HTTP).
    Http2AndHttp1,
    /// HTTP/1.1 only.
    Http1Only,
}

/// Accepts connections until the process ends.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    protocols: Protocols,
    app: Arc<App>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = Arc::clone(&app);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&app), req));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if protocols == Protocols::Http1Only {
                builder = builder.http1_only();
            }
            builder.http1().keep_alive(true);
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed.");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => builder.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "Connection ended with an error.");
            }
        });
    }
}

/// The authority the client addressed, as sent: the Host header on HTTP/1.1, the
/// `:authority` on HTTP/2.
fn request_authority<B>(req: &Request<B>) -> String {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The host the client addressed, without port.
fn request_host<B>(req: &Request<B>) -> String {
    let raw = request_authority(req);
    match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6).to_owned(),
        None => raw
            .rsplit_once(':')
            .map_or(raw.clone(), |(host, _)| host.to_owned()),
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn auth_error(err: &sigv4::AuthError) -> AwsError {
    AwsError::new(err.http_status(), err.aws_code(), err.message())
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let ctx = RequestContext {
        request_id: uuid::Uuid::new_v4().to_string(),
        host: request_host(&req),
        authority: request_authority(&req),
    };
    let path = req.uri().path().to_owned();
    let head = req.method() == http::Method::HEAD;
    let result = route(&app, req, &ctx).await;
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(request_id = %ctx.request_id, %path, code = err.code, message = %err.message, "Request failed.");
            err.to_response(&ctx.request_id)
        }
    };
    Ok(if head {
        without_body(response)
    } else {
        response
    })
}

/// A HEAD response: the headers of the GET, no body. hyper drops HEAD bodies on HTTP/1.1 but
/// sends them on HTTP/2, which clients reject as a protocol error.
fn without_body(response: Response<ResponseBody>) -> Response<ResponseBody> {
    use http_body::Body as _;
    let (mut parts, body) = response.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts
            .headers
            .entry(http::header::CONTENT_LENGTH)
            .or_insert_with(|| http::HeaderValue::from(len));
    }
    Response::from_parts(parts, crate::protocol::body::full(bytes::Bytes::new()))
}

async fn route(
    app: &App,
    req: Request<Incoming>,
    ctx: &RequestContext,
) -> Result<Response<ResponseBody>, AwsError> {
    // Kinesis Data Streams: JSON 1.1 / CBOR RPC, the operation named by X-Amz-Target.
    if req.method() == http::Method::POST && req.headers().contains_key("x-amz-target") {
        return Ok(streams_route(app, req, ctx).await);
    }
    if req.method() == http::Method::GET || req.method() == http::Method::HEAD {
        let path = req.uri().path();
        // Playback URLs carry their own session token (as AWS's do): no SigV4.
        if path.starts_with("/hls/") || path.starts_with("/dash/") {
            let (parts, _) = req.into_parts();
            return app.video.playback_get(&parts, ctx).await;
        }
        // The web page and its assets are public; every API call it makes is signed.
        if let Some(response) = crate::web::serve(path, &app.config.region) {
            return Ok(response);
        }
    }
    let op = match (req.method(), VideoOperation::from_path(req.uri().path())) {
        (&http::Method::POST, Some(op)) => op,
        _ => {
            return Err(AwsError::new(
                404,
                "UnknownOperationException",
                format!(
                    "No operation is served at {} {}.",
                    req.method(),
                    req.uri().path()
                ),
            ));
        }
    };
    let (parts, body) = req.into_parts();
    if op == VideoOperation::PutMedia {
        // The media body is streamed and never hashed by producers.
        sigv4::verify(
            &parts,
            PayloadHash::Streaming,
            &app.credentials,
            VIDEO_SERVICES,
            now(),
        )
        .map_err(|e| auth_error(&e))?;
        return app.video.put_media(&parts, body, ctx).await;
    }
    let bytes = read_capped(body, MAX_JSON_BODY).await?;
    sigv4::verify(
        &parts,
        PayloadHash::Body(&bytes),
        &app.credentials,
        VIDEO_SERVICES,
        now(),
    )
    .map_err(|e| auth_error(&e))?;
    app.video.handle_json(op, bytes, ctx).await
}

/// A Kinesis Data Streams call, checked in AWS's order: content type and target, then
/// the body, then the signature, then the model's constraints. Errors are answered in
/// the request's encoding (JSON 1.1 or CBOR).
async fn streams_route(
    app: &App,
    req: Request<Incoming>,
    ctx: &RequestContext,
) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let call = match rpc::parse_call(&parts.headers, rpc::model::kinesis()) {
        Ok(call) => call,
        Err(err) => {
            return rpc::error_response(rpc::encoding_of(&parts.headers), &err, &ctx.request_id);
        }
    };
    let result = async {
        let bytes = read_capped(body, MAX_RPC_BODY).await?;
        let input = rpc::decode_input(&call, &bytes)?;
        sigv4::verify(
            &parts,
            PayloadHash::Body(&bytes),
            &app.credentials,
            STREAMS_SERVICES,
            now(),
        )
        // Kinesis answers authentication failures with 400, not REST-JSON's 403.
        .map_err(|e| AwsError::new(400, e.aws_code(), e.message()))?;
        rpc::validate_input(&call, &input)?;
        let operation = call.operation.name.as_str();
        if operation == "SubscribeToShard" {
            return app
                .streams
                .subscribe(&input, call.encoding, &ctx.request_id)
                .await;
        }
        let output = app.streams.handle(operation, &input).await?;
        Ok(rpc::response(call.encoding, &output, &ctx.request_id))
    }
    .await;
    result.unwrap_or_else(|err| {
        tracing::debug!(request_id = %ctx.request_id, operation = %call.operation.name, code = err.code, message = %err.message, "Request failed.");
        rpc::error_response(call.encoding, &err, &ctx.request_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_drops_the_port() {
        let req = |host: &str| Request::builder().header("host", host).body(()).unwrap();
        assert_eq!(request_host(&req("127.0.0.1:8444")), "127.0.0.1");
        assert_eq!(request_host(&req("localhost")), "localhost");
        assert_eq!(request_host(&req("[::1]:8443")), "::1");
        let h2 = Request::builder()
            .uri("https://cam.example:8443/getMedia")
            .body(())
            .unwrap();
        assert_eq!(request_host(&h2), "cam.example");
    }

    #[test]
    fn head_responses_keep_the_length_and_drop_the_body() {
        use http_body::Body as _;
        let get = Response::builder()
            .header("content-type", "text/plain")
            .body(crate::protocol::body::full("hello"))
            .unwrap();
        let head = without_body(get);
        assert_eq!(head.headers()["content-length"], "5");
        assert_eq!(head.headers()["content-type"], "text/plain");
        assert_eq!(head.body().size_hint().exact(), Some(0));
    }
}
