//! GetImages: frames of a time range decoded with GStreamer and returned as JPEG or PNG.
//!
//! Semantics, from the botocore model and the AWS API reference (`API_reader_GetImages`):
//!
//! * Sampling instants are `StartTimestamp + k * SamplingInterval` before `EndTimestamp`
//!   (at least the one at `StartTimestamp`, "if the timestamp range is less than the
//!   sampling interval, the image from the startTimestamp will be returned"). The interval
//!   is at least 200 ms and defaults to 3000 ms; the range is at most 300 s.
//! * The picture of an instant is the frame shown at that instant: the last frame whose
//!   presentation time is at or before it, in the fragment whose time span (by producer or
//!   server timestamp, per `ImageSelectorType`) contains it. No such fragment: `NO_MEDIA`.
//!   The fragment or frame cannot be decoded: `MEDIA_ERROR`. `TimeStamp` is the instant.
//! * At most 25 images per response ("Providing a MaxResults greater than this value will
//!   result in a page size of 25"), fewer if `MaxResults` is smaller; the rest is paginated
//!   with `NextToken`. A page also ends early, with a `NextToken`, once it has fed the
//!   decoder [`PAGE_DECODE_BUDGET_PIXELS`], so that no single call holds a core for long.
//! * `JPEGQuality` defaults to 80. With `WidthPixels` and `HeightPixels` the picture is
//!   stretched to them; with one of them the other follows the aspect ratio (as the
//!   `HeightPixels` documentation says; the `WidthPixels` text says a lone dimension is
//!   rejected, and the service was seen answering "Height and width for the images need to
//!   be provided or none." in 2023, boto/boto3#3900: accepting it is the superset).
//!
//! Each fragment needed by a page is read and decoded once, with only the frames the
//! wanted pictures depend on, all through one GStreamer pipeline per page (see [`decode`]);
//! decoding runs on the blocking pool, at most one request per core at a time.

mod decode;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine;
use http::Response;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use self::decode::{DecodeError, ImageFormat, Output};
use super::super::list_fragments::timestamp_kind;
use super::super::shapes::{EpochSeconds, StreamRef, decode_token, encode_token, seconds};
use super::super::{RequestContext, VideoService, json_response};
use crate::protocol::body::{ResponseBody, decode_json};
use crate::protocol::error::AwsError;
use crate::protocol::validate::Validation;
use crate::storage::{FragmentRecord, StoreError, TimestampKind, VideoStore};

/// Smallest `SamplingInterval` (ms) AWS accepts.
const MIN_SAMPLING_INTERVAL_MS: i64 = 200;
/// `SamplingInterval` when the request has none (boto3 docs: "with a default of 3000 ms").
const DEFAULT_SAMPLING_INTERVAL_MS: i64 = 3000;
/// Longest `EndTimestamp - StartTimestamp` (ms).
const MAX_RANGE_MS: i64 = 300_000;
/// `JPEGQuality` when not given.
const DEFAULT_JPEG_QUALITY: u32 = 80;
/// Most images in one response, whatever `MaxResults` says.
const PAGE_SIZE: usize = 25;
/// Longest `ImageContent` (base64 characters) the model allows.
const MAX_IMAGE_CONTENT: usize = 6_291_456;
/// Decoding work after which a page ends (with a `NextToken`) before its next fragment:
/// frames fed to the decoder times their pixels. 2000 720p frames (about 2 s of one core),
/// about 900 at 1080p, 220 at 4K. The first fragment of a page is always decoded.
const PAGE_DECODE_BUDGET_PIXELS: u64 = 2000 * 1280 * 720;
/// How long a request waits for a free decoding slot before `ClientLimitExceededException`.
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// Prefix of the cursor inside a `NextToken`.
const TOKEN_PREFIX: &str = "GetImages:";

/// `NextToken` of this operation: `[a-zA-Z0-9+/]+={0,2}`.
static NEXT_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^(?:[a-zA-Z0-9+/]+={0,2})$").expect("valid pattern"));
/// `FormatConfigValue`: `^[a-zA-Z_0-9]+` (AWS applies patterns to the whole value).
static FORMAT_CONFIG_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^(?:^[a-zA-Z_0-9]+)$").expect("valid pattern"));

/// Decoding slots: one request per core decodes at a time; the others wait their turn.
static DECODE_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetImagesInput {
    #[serde(flatten)]
    stream: StreamRef,
    image_selector_type: Option<String>,
    start_timestamp: Option<EpochSeconds>,
    end_timestamp: Option<EpochSeconds>,
    sampling_interval: Option<i64>,
    format: Option<String>,
    format_config: Option<BTreeMap<String, String>>,
    width_pixels: Option<i64>,
    height_pixels: Option<i64>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The sampling instants of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    /// Epoch milliseconds, increasing.
    instants: Vec<i64>,
    /// The first instant of the next page, if any.
    next: Option<i64>,
}

/// How many instants `start + k * interval` lie before `end` (at least one: `start`).
fn instant_count(start: i64, end: i64, interval: i64) -> i64 {
    let span = end.saturating_sub(start);
    if span <= 0 || interval <= 0 {
        1
    } else {
        (span + interval - 1) / interval
    }
}

/// The instants of the page that starts at `resume` (a `NextToken` cursor) or at `start`.
fn plan_page(
    start: i64,
    end: i64,
    interval: i64,
    resume: Option<i64>,
    page_size: usize,
) -> Option<Page> {
    let count = instant_count(start, end, interval);
    let first = match resume {
        None => 0,
        Some(t) => {
            let offset = t.checked_sub(start)?;
            if offset < 0 || interval <= 0 || offset % interval != 0 {
                return None;
            }
            let k = offset / interval;
            if k >= count {
                return None;
            }
            k
        }
    };
    let last = count.min(first.saturating_add(page_size.max(1) as i64));
    let instants: Vec<i64> = (first..last).map(|k| start + k * interval).collect();
    let next = (last < count).then(|| start + last * interval);
    Some(Page { instants, next })
}

/// Where the next page starts when `done` of the page's instants got a picture: the first
/// one left out (the decoding budget cut the page), else the page's own continuation.
fn next_cursor(page: &Page, done: usize) -> Option<i64> {
    if done < page.instants.len() {
        page.instants.get(done).copied()
    } else {
        page.next
    }
}

fn token_of(instant: i64) -> String {
    encode_token(&format!("{TOKEN_PREFIX}{instant}"))
}

fn instant_of(token: &str) -> Option<i64> {
    decode_token(token)?
        .strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
}

/// The picture an instant gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Picture {
    /// Base64 of the encoded image.
    Content(Arc<String>),
    /// No fragment covers the instant.
    NoMedia,
    /// The media could not be turned into an image.
    MediaError,
}

/// The index (into `pts`) of the frame shown at `target`: the latest presentation time at
/// or before it, else (the instant falls before the first frame) the earliest frame.
fn frame_at(pts: &[u64], target: u64) -> Option<usize> {
    let before = pts
        .iter()
        .enumerate()
        .filter(|(_, p)| **p <= target)
        .max_by_key(|(i, p)| (**p, *i))
        .map(|(i, _)| i);
    before.or_else(|| {
        pts.iter()
            .enumerate()
            .min_by_key(|(i, p)| (**p, *i))
            .map(|(i, _)| i)
    })
}

/// The fragment whose span contains `t`, if any.
fn covering(
    store: &dyn VideoStore,
    stream_id: i64,
    kind: TimestampKind,
    t: i64,
    cache: &mut HashMap<i64, FragmentRecord>,
) -> Result<Option<FragmentRecord>, StoreError> {
    let Some(seq) = store.seek(stream_id, kind, t)? else {
        return Ok(None);
    };
    let record = match cache.get(&seq) {
        Some(r) => r.clone(),
        None => match store.fragment(stream_id, seq)? {
            Some(r) => {
                cache.insert(seq, r.clone());
                r
            }
            None => return Ok(None),
        },
    };
    let begin = match kind {
        TimestampKind::Producer => record.producer_ts_ms,
        TimestampKind::Server => record.server_ts_ms,
    };
    let contains = begin <= t && t < begin.saturating_add(record.duration_ms.max(1));
    Ok(contains.then_some(record))
}

/// What one page produced: a picture for each of the first instants (all of them unless
/// the decoding budget cut the page short).
struct Rendered {
    pictures: Vec<Picture>,
}

/// Pixels of one frame of `track`, for the decoding budget (1080p when the track does not
/// say).
fn frame_pixels(track: &hls::VideoTrack) -> u64 {
    match u64::from(track.width) * u64::from(track.height) {
        0 => 1920 * 1080,
        n => n,
    }
}

/// The picture of an encoded image.
fn picture_of(bytes: &[u8]) -> Picture {
    if bytes.is_empty() {
        return Picture::MediaError;
    }
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    if text.len() > MAX_IMAGE_CONTENT {
        tracing::warn!(
            chars = text.len(),
            "GetImages: image larger than ImageContent allows."
        );
        return Picture::MediaError;
    }
    Picture::Content(Arc::new(text))
}

/// Locates, reads and decodes the page's pictures. Blocking.
fn render_page(
    store: &dyn VideoStore,
    stream_id: i64,
    kind: TimestampKind,
    instants: &[i64],
    output: &Output,
) -> Result<Rendered, AwsError> {
    let internal = |err: StoreError| {
        tracing::error!(error = %err, "GetImages: storage failure.");
        AwsError::internal()
    };
    let unusable = |err: DecodeError| {
        tracing::error!(error = %err, "GetImages: GStreamer is not usable.");
        AwsError::internal()
    };
    // Which fragment covers each instant, and where in it (ms from its start).
    let mut cache = HashMap::new();
    let mut groups: Vec<(FragmentRecord, Vec<(usize, i64)>)> = Vec::new();
    let mut pictures: Vec<Option<Picture>> = vec![None; instants.len()];
    for (i, &t) in instants.iter().enumerate() {
        match covering(store, stream_id, kind, t, &mut cache).map_err(internal)? {
            None => pictures[i] = Some(Picture::NoMedia),
            Some(record) => {
                let begin = match kind {
                    TimestampKind::Producer => record.producer_ts_ms,
                    TimestampKind::Server => record.server_ts_ms,
                };
                let offset = t - begin;
                match groups.iter_mut().find(|(r, _)| r.seq == record.seq) {
                    Some((_, members)) => members.push((i, offset)),
                    None => groups.push((record, vec![(i, offset)])),
                }
            }
        }
    }
    // Each fragment read and fed once, in time order, until the budget is spent.
    let mut session: Option<decode::Session> = None;
    let mut fed_pixels: u64 = 0;
    // (instant index, fragment key, frame index) of the pictures the decoder owes.
    let mut owed: Vec<(usize, usize, Option<usize>)> = Vec::new();
    for (g, (record, members)) in groups.iter().enumerate() {
        if g > 0 && fed_pixels >= PAGE_DECODE_BUDGET_PIXELS {
            break;
        }
        let media = match store.read_fragment_media(record) {
            Ok(media) => media,
            // Expired or deleted since it was located.
            Err(StoreError::NotFound) => {
                for (i, _) in members {
                    pictures[*i] = Some(Picture::NoMedia);
                }
                continue;
            }
            Err(err) => return Err(internal(err)),
        };
        let fragment = match hls::Fragment::from_mkv(&media) {
            Ok(f) => f,
            Err(err) => {
                tracing::warn!(error = %err, fragment = %record.number(), "GetImages: fragment has no decodable video.");
                for (i, _) in members {
                    pictures[*i] = Some(Picture::MediaError);
                }
                continue;
            }
        };
        let pts: Vec<u64> = fragment.samples.iter().map(|s| s.pts_ms).collect();
        let frames: Vec<Option<usize>> = members
            .iter()
            .map(|&(_, offset)| {
                let target = fragment
                    .timecode_ms
                    .saturating_add_signed(offset.clamp(0, i64::MAX));
                frame_at(&pts, target)
            })
            .collect();
        let mut targets: Vec<usize> = frames.iter().flatten().copied().collect();
        targets.sort_unstable();
        targets.dedup();
        let session = match &mut session {
            Some(s) => s,
            None => session.insert(decode::Session::new(*output).map_err(unusable)?),
        };
        let fed = session.add(g, &fragment, &targets).map_err(unusable)?;
        fed_pixels =
            fed_pixels.saturating_add((fed as u64).saturating_mul(frame_pixels(&fragment.track)));
        owed.extend(members.iter().zip(frames).map(|(&(i, _), f)| (i, g, f)));
    }
    let done = session.map(decode::Session::finish).unwrap_or_default();
    // One base64 string per distinct frame, shared by the instants that show it.
    let mut encoded: HashMap<(usize, usize), Picture> = HashMap::new();
    for (i, g, frame) in owed {
        let picture = match frame {
            Some(f) => encoded
                .entry((g, f))
                .or_insert_with(|| {
                    done.get(&(g, f))
                        .map_or(Picture::MediaError, |b| picture_of(b))
                })
                .clone(),
            None => Picture::MediaError,
        };
        pictures[i] = Some(picture);
    }
    // The page is the prefix of instants that got a picture.
    let pictures: Vec<Picture> = pictures.into_iter().map_while(|p| p).collect();
    Ok(Rendered { pictures })
}

/// The validated request.
struct Request {
    kind: TimestampKind,
    start: i64,
    end: i64,
    interval: i64,
    output: Output,
    page_size: usize,
    resume: Option<i64>,
}

fn validate(input: &GetImagesInput) -> Result<Request, AwsError> {
    let mut v = Validation::new();
    input.stream.check(&mut v);
    v.required("imageSelectorType", input.image_selector_type.as_ref());
    v.one_of(
        "imageSelectorType",
        input.image_selector_type.as_deref(),
        &["PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"],
    );
    v.required("startTimestamp", input.start_timestamp.as_ref());
    v.required("endTimestamp", input.end_timestamp.as_ref());
    v.int(
        "samplingInterval",
        input.sampling_interval,
        MIN_SAMPLING_INTERVAL_MS,
        i64::from(i32::MAX),
    );
    v.required("format", input.format.as_ref());
    v.one_of("format", input.format.as_deref(), &["JPEG", "PNG"]);
    if let Some(config) = &input.format_config {
        v.count("formatConfig", Some(config.len()), 1, 1);
        for (key, value) in config {
            v.one_of("formatConfig.key", Some(key), &["JPEGQuality"]);
            v.string(
                "formatConfig.value",
                Some(value),
                0,
                256,
                &FORMAT_CONFIG_VALUE,
            );
        }
    }
    v.int("widthPixels", input.width_pixels, 1, 3840);
    v.int("heightPixels", input.height_pixels, 1, 2160);
    v.int("maxResults", input.max_results, 1, 100);
    v.string(
        "nextToken",
        input.next_token.as_deref(),
        1,
        4096,
        &NEXT_TOKEN,
    );
    v.finish()?;

    let kind = input
        .image_selector_type
        .as_deref()
        .and_then(timestamp_kind)
        .ok_or_else(|| AwsError::invalid_argument("ImageSelectorType is required."))?;
    let (Some(start), Some(end)) = (input.start_timestamp, input.end_timestamp) else {
        return Err(AwsError::invalid_argument(
            "StartTimestamp and EndTimestamp are required.",
        ));
    };
    let (start, end) = (start.millis(), end.millis());
    if start > end {
        return Err(AwsError::invalid_argument(
            "The StartTimestamp must be earlier than or equal to the EndTimestamp.",
        ));
    }
    if end - start > MAX_RANGE_MS {
        return Err(AwsError::invalid_argument(format!(
            "The time range between StartTimestamp and EndTimestamp must not exceed {} seconds.",
            MAX_RANGE_MS / 1000
        )));
    }
    let quality = match input
        .format_config
        .as_ref()
        .and_then(|c| c.get("JPEGQuality"))
    {
        None => DEFAULT_JPEG_QUALITY,
        Some(q) => q
            .parse::<u32>()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| {
                AwsError::invalid_argument(format!(
                    "JPEGQuality must be an integer from 1 to 100, not '{q}'."
                ))
            })?,
    };
    let format = match input.format.as_deref() {
        Some("PNG") => ImageFormat::Png,
        _ => ImageFormat::Jpeg { quality },
    };
    let dim = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    let resume = match &input.next_token {
        Some(token) => Some(
            instant_of(token)
                .ok_or_else(|| AwsError::invalid_argument("The NextToken is not valid."))?,
        ),
        None => None,
    };
    Ok(Request {
        kind,
        start,
        end,
        interval: input
            .sampling_interval
            .unwrap_or(DEFAULT_SAMPLING_INTERVAL_MS),
        output: Output {
            format,
            width: dim(input.width_pixels),
            height: dim(input.height_pixels),
        },
        page_size: input
            .max_results
            .map_or(PAGE_SIZE, |m| (m.max(1) as usize).min(PAGE_SIZE)),
        resume,
    })
}

fn image_json(t: i64, picture: &Picture) -> Value {
    match picture {
        Picture::Content(text) => json!({ "TimeStamp": seconds(t), "ImageContent": **text }),
        Picture::NoMedia => json!({ "TimeStamp": seconds(t), "Error": "NO_MEDIA" }),
        Picture::MediaError => json!({ "TimeStamp": seconds(t), "Error": "MEDIA_ERROR" }),
    }
}

impl VideoService {
    pub(super) async fn get_images(
        self: &Arc<Self>,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let input: GetImagesInput = decode_json(body)?;
        let request = validate(&input)?;
        let stream = self.resolve_ref(&input.stream).await?;
        if stream.retention_hours == 0 {
            return Err(AwsError::new(
                400,
                "NoDataRetentionException",
                format!(
                    "The stream {} does not retain data (DataRetentionInHours is 0).",
                    stream.name
                ),
            ));
        }
        let page = plan_page(
            request.start,
            request.end,
            request.interval,
            request.resume,
            request.page_size,
        )
        .ok_or_else(|| AwsError::invalid_argument("The NextToken is not valid."))?;

        let permit = tokio::time::timeout(SLOT_WAIT, Arc::clone(&DECODE_SLOTS).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                AwsError::new(
                    400,
                    "ClientLimitExceededException",
                    "Too many GetImages requests are being processed; try again later.",
                )
            })?;
        let store = Arc::clone(&self.store);
        let instants = page.instants.clone();
        let (kind, output, stream_id) = (request.kind, request.output, stream.id);
        let rendered = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            render_page(store.as_ref(), stream_id, kind, &instants, &output)
        })
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "GetImages task failed.");
            AwsError::internal()
        })??;

        let done = rendered.pictures.len();
        let images: Vec<Value> = page
            .instants
            .iter()
            .zip(&rendered.pictures)
            .map(|(&t, p)| image_json(t, p))
            .collect();
        let mut out = json!({ "Images": images });
        if let Some(next) = next_cursor(&page, done) {
            out["NextToken"] = json!(token_of(next));
        }
        Ok(json_response(&out, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_cover_the_range_end_exclusive() {
        assert_eq!(instant_count(0, 1000, 200), 5);
        assert_eq!(instant_count(0, 1001, 200), 6);
        assert_eq!(instant_count(0, 999, 200), 5);
        // A range shorter than the interval, or empty: the start instant only.
        assert_eq!(instant_count(0, 100, 200), 1);
        assert_eq!(instant_count(5, 5, 200), 1);
        assert_eq!(instant_count(0, 300_000, 200), 1500);
        let page = plan_page(1_000, 2_000, 200, None, 25).unwrap();
        assert_eq!(page.instants, vec![1_000, 1_200, 1_400, 1_600, 1_800]);
        assert_eq!(page.next, None);
        let single = plan_page(1_000, 1_000, 3_000, None, 25).unwrap();
        assert_eq!(single.instants, vec![1_000]);
    }

    #[test]
    fn pages_chain_through_next_token() {
        let (start, end, interval) = (1_700_000_000_000, 1_700_000_011_000, 200);
        let mut resume = None;
        let mut all = Vec::new();
        let mut pages = 0;
        loop {
            let page = plan_page(start, end, interval, resume, 25).unwrap();
            assert!(page.instants.len() <= 25);
            all.extend(page.instants.iter().copied());
            pages += 1;
            match page.next {
                Some(next) => {
                    let token = token_of(next);
                    assert!(NEXT_TOKEN.is_match(&token), "{token}");
                    resume = Some(instant_of(&token).unwrap());
                }
                None => break,
            }
        }
        assert_eq!(pages, 3, "55 instants in pages of 25");
        let expected: Vec<i64> = (0..55).map(|k| start + k * interval).collect();
        assert_eq!(all, expected);
        // Smaller pages.
        let page = plan_page(start, end, interval, None, 10).unwrap();
        assert_eq!(page.instants.len(), 10);
        assert_eq!(page.next, Some(start + 10 * interval));
        // A page cut short by the decoding budget continues at its first missing instant,
        // and the rest of the range still follows.
        assert_eq!(next_cursor(&page, 4), Some(start + 4 * interval));
        assert_eq!(next_cursor(&page, 10), Some(start + 10 * interval));
        let cut = plan_page(start, end, interval, next_cursor(&page, 4), 25).unwrap();
        assert_eq!(cut.instants[0], start + 4 * interval);
        let last = plan_page(start, end, interval, Some(start + 50 * interval), 25).unwrap();
        assert_eq!(next_cursor(&last, last.instants.len()), None);
        assert_eq!(next_cursor(&last, 2), Some(start + 52 * interval));
    }

    #[test]
    fn bad_cursors_are_rejected() {
        assert_eq!(
            plan_page(1_000, 2_000, 200, Some(900), 25),
            None,
            "before start"
        );
        assert_eq!(
            plan_page(1_000, 2_000, 200, Some(1_100), 25),
            None,
            "off grid"
        );
        assert_eq!(
            plan_page(1_000, 2_000, 200, Some(2_000), 25),
            None,
            "past end"
        );
        assert_eq!(
            plan_page(1_000, 2_000, 200, Some(1_800), 25)
                .unwrap()
                .instants,
            vec![1_800]
        );
        assert_eq!(instant_of("not base64!"), None);
        assert_eq!(instant_of(&encode_token("seq:5")), None);
        assert_eq!(instant_of(&token_of(-5)), Some(-5));
    }

    #[test]
    fn frame_shown_at_an_instant() {
        let pts = [1000, 1033, 1067, 1100];
        assert_eq!(frame_at(&pts, 1000), Some(0));
        assert_eq!(frame_at(&pts, 1032), Some(0));
        assert_eq!(frame_at(&pts, 1033), Some(1));
        assert_eq!(frame_at(&pts, 5000), Some(3));
        assert_eq!(
            frame_at(&pts, 10),
            Some(0),
            "before the first frame: the first"
        );
        // Decode order differs from presentation order (B-frames).
        let reordered = [1000, 1100, 1033, 1067];
        assert_eq!(frame_at(&reordered, 1050), Some(2));
        assert_eq!(frame_at(&reordered, 1099), Some(3));
        assert_eq!(frame_at(&[], 1000), None);
    }

    fn input(json: serde_json::Value) -> GetImagesInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn validation_follows_the_model() {
        let base = json!({
            "StreamName": "cam",
            "ImageSelectorType": "PRODUCER_TIMESTAMP",
            "StartTimestamp": 1_700_000_000,
            "EndTimestamp": 1_700_000_010,
            "Format": "JPEG",
        });
        let ok = validate(&input(base.clone())).unwrap();
        assert_eq!(ok.interval, DEFAULT_SAMPLING_INTERVAL_MS);
        assert_eq!(ok.page_size, 25);
        assert_eq!(
            ok.output.format,
            ImageFormat::Jpeg {
                quality: DEFAULT_JPEG_QUALITY
            }
        );
        let with = |patch: serde_json::Value| {
            let mut v = base.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            validate(&input(v))
        };
        let err = with(json!({"SamplingInterval": 100})).err().unwrap();
        assert_eq!(err.code, "InvalidArgumentException");
        assert_eq!(
            err.message,
            "1 validation error detected: Value '100' at 'samplingInterval' failed to satisfy constraint: Member must have value greater than or equal to 200"
        );
        assert!(with(json!({"MaxResults": 101})).is_err());
        assert_eq!(with(json!({"MaxResults": 100})).unwrap().page_size, 25);
        assert_eq!(with(json!({"MaxResults": 7})).unwrap().page_size, 7);
        assert!(with(json!({"WidthPixels": 3841})).is_err());
        assert!(with(json!({"HeightPixels": 0})).is_err());
        assert!(with(json!({"Format": "GIF"})).is_err());
        assert!(with(json!({"EndTimestamp": 1_699_999_999})).is_err());
        assert!(with(json!({"EndTimestamp": 1_700_000_301})).is_err());
        assert!(with(json!({"EndTimestamp": 1_700_000_300})).is_ok());
        assert!(with(json!({"FormatConfig": {"JPEGQuality": "101"}})).is_err());
        assert!(with(json!({"FormatConfig": {"Other": "1"}})).is_err());
        assert_eq!(
            with(json!({"FormatConfig": {"JPEGQuality": "55"}}))
                .unwrap()
                .output
                .format,
            ImageFormat::Jpeg { quality: 55 }
        );
        assert_eq!(
            with(json!({"Format": "PNG"})).unwrap().output.format,
            ImageFormat::Png
        );
        assert!(with(json!({"NextToken": "not a token"})).is_err());
        let err = validate(&input(json!({"StreamName": "cam"})))
            .err()
            .unwrap();
        assert!(
            err.message.starts_with("4 validation errors detected"),
            "{}",
            err.message
        );
    }
}
