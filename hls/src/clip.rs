//! GetClip: one MP4 file holding consecutive fragments.
//!
//! The file is a fragmented MP4: the init segment (with the clip's duration in `mvhd`/`mehd`),
//! then one `moof` + `mdat` per fragment, sequence numbers from 1. ffmpeg, browsers and
//! players that read fMP4 (every current one) play it as a whole file. The clip's timeline
//! starts at 0 at the first frame's decode time.

use crate::error::HlsError;
use crate::fmp4::{build_init, write_fragment};
use crate::fragment::Fragment;

/// The MP4 clip of `fragments` (in order). Fails with [`HlsError::Empty`] for no fragments and
/// [`HlsError::TrackChanged`] when they do not share one video format (codec private data,
/// size); the caller then cuts the clip at the change, as AWS does.
///
/// Each fragment's last frame keeps its own duration; to make the clip seamless, call
/// [`Fragment::set_end_ms`] with the next fragment's start first.
pub fn clip_mp4(fragments: &[Fragment]) -> Result<Vec<u8>, HlsError> {
    let first = fragments.first().ok_or(HlsError::Empty)?;
    if fragments.iter().any(|f| !f.track.same_format(&first.track)) {
        return Err(HlsError::TrackChanged);
    }
    let origin = first.start_ms();
    let end = fragments
        .iter()
        .map(Fragment::end_ms)
        .max()
        .unwrap_or(origin);
    let mut out = build_init(&first.track, Some(end.saturating_sub(origin)))?;
    let size: usize = fragments
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| s.data.len())
        .sum();
    out.reserve(size + fragments.len() * 1024);
    for (i, fragment) in fragments.iter().enumerate() {
        let sequence_number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        write_fragment(
            &mut out,
            &fragment.track,
            &fragment.samples,
            sequence_number,
            origin,
        )?;
    }
    Ok(out)
}
