//! `GetClip`: one MP4 file of the fragments of a timestamp range (`hls::clip_mp4`).
//!
//! As the model documents, the output holds the first 200 fragments or the first 100 MB
//! (summed fragment sizes) from the start timestamp; a longer range is cut, not refused. The
//! clip also ends where the video track changes (codec private data or picture size), since
//! one MP4 has one init segment. No fragment in the range: `ResourceNotFoundException`.

use std::sync::Arc;

use http::Response;
use serde::Deserialize;

use super::super::shapes::{FragmentSelector, StreamRef};
use super::super::{RequestContext, VideoService, now_ms};
use super::media::{self, LoadError};
use super::selection::{DISCONTINUITY_THRESHOLD_MS, DiscontinuityMode, Kind, Timeline};
use super::session_url::{SELECTOR_TYPES, check_range, check_retention, select_range};
use crate::protocol::body::{ResponseBody, decode_json, full};
use crate::protocol::error::AwsError;
use crate::protocol::validate::Validation;
use crate::storage::fragment_number;

/// At most this many fragments per clip.
const MAX_CLIP_FRAGMENTS: usize = 200;
/// At most this many bytes of fragments per clip.
const MAX_CLIP_BYTES: i64 = 100 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetClipInput {
    #[serde(flatten)]
    stream: StreamRef,
    clip_fragment_selector: Option<FragmentSelector>,
}

impl VideoService {
    pub(super) async fn get_clip(
        self: &Arc<Self>,
        body: &[u8],
        ctx: &RequestContext,
    ) -> Result<Response<ResponseBody>, AwsError> {
        let input: GetClipInput = decode_json(body)?;
        let mut v = Validation::new();
        input.stream.check(&mut v);
        let selector = input.clip_fragment_selector.as_ref();
        v.required("clipFragmentSelector", selector);
        if let Some(selector) = selector {
            let kind = selector.fragment_selector_type.as_deref();
            v.required("clipFragmentSelector.fragmentSelectorType", kind.as_ref());
            v.one_of(
                "clipFragmentSelector.fragmentSelectorType",
                kind,
                SELECTOR_TYPES,
            );
            let range = selector.timestamp_range.as_ref();
            v.required("clipFragmentSelector.timestampRange", range);
            if let Some(range) = range {
                v.required(
                    "clipFragmentSelector.timestampRange.startTimestamp",
                    range.start_timestamp.as_ref(),
                );
                v.required(
                    "clipFragmentSelector.timestampRange.endTimestamp",
                    range.end_timestamp.as_ref(),
                );
            }
        }
        v.finish()?;
        let selector = selector
            .ok_or_else(|| AwsError::invalid_argument("ClipFragmentSelector is required."))?;
        let kind = selector
            .fragment_selector_type
            .as_deref()
            .and_then(Kind::parse)
            .ok_or_else(|| AwsError::invalid_argument("FragmentSelectorType is required."))?;
        let range = selector
            .timestamp_range
            .as_ref()
            .ok_or_else(|| AwsError::invalid_argument("TimestampRange is required."))?;
        let (Some(start), Some(end)) = (range.start_timestamp, range.end_timestamp) else {
            return Err(AwsError::invalid_argument(
                "StartTimestamp and EndTimestamp are required.",
            ));
        };
        let (start, end) = (start.millis(), end.millis());
        check_range(kind, start, Some(end), now_ms())?;

        let stream = self.resolve_ref(&input.stream).await?;
        check_retention(&stream)?;
        let id = stream.id;
        let selected = self
            .store_call(move |s| {
                select_range(
                    s,
                    id,
                    kind,
                    start,
                    end,
                    MAX_CLIP_FRAGMENTS,
                    Some(MAX_CLIP_BYTES),
                )
            })
            .await?;
        let Some(first) = selected.first().copied() else {
            return Err(AwsError::not_found(format!(
                "No fragments were found in the stream {} for the requested time range.",
                stream.name
            )));
        };
        let first_number = fragment_number(id, first.seq);
        let first_record = self
            .store_call(move |s| s.fragment(id, first.seq))
            .await?
            .ok_or_else(|| LoadError::Gone.into_aws(&first_number))?;
        media::check_playable(&first_record)?;

        // The clip's timeline never goes back (see `Timeline::append`).
        let mut timeline = Timeline::new(kind, DiscontinuityMode::Never, selected.len());
        for meta in &selected {
            timeline.append(*meta);
        }
        let segments = timeline.window(selected.len());
        let clip = self
            .blocking(move |store| -> Result<Vec<u8>, (LoadError, String)> {
                let mut fragments: Vec<hls::Fragment> = Vec::with_capacity(segments.len());
                for (i, segment) in segments.iter().enumerate() {
                    let seq = segment.meta.seq;
                    let number = fragment_number(id, seq);
                    let fragment = match media::load(store, id, seq) {
                        Ok((_, mut f)) => {
                            media::shift(&mut f, segment.offset_ms);
                            f
                        }
                        // Expired since it was listed: the clip ends here.
                        Err(LoadError::Gone) if i > 0 => break,
                        Err(err) => return Err((err, number)),
                    };
                    if let Some(prev) = fragments.last_mut() {
                        if !prev.track.same_format(&fragment.track) {
                            break;
                        }
                        // Seamless: the previous fragment's last frame lasts until this one
                        // starts, when they are contiguous.
                        let gap = fragment.start_ms() as i64 - prev.end_ms() as i64;
                        if gap.abs() <= DISCONTINUITY_THRESHOLD_MS {
                            prev.set_end_ms(fragment.start_ms());
                        }
                    }
                    fragments.push(fragment);
                }
                hls::clip_mp4(&fragments).map_err(|e| (LoadError::Convert(e), String::new()))
            })
            .await?
            .map_err(|(err, number)| err.into_aws(&number))?;
        tracing::info!(stream = %stream.name, bytes = clip.len(), "Clip served.");
        Ok(Response::builder()
            .status(200)
            .header("content-type", "video/mp4")
            .header("x-amzn-RequestId", &ctx.request_id)
            .body(full(clip))
            .unwrap_or_else(|_| Response::new(full(""))))
    }
}
