//! Which GStreamer elements exist here, and which Debian package to install when one is missing.

use super::CaptureError;

/// The Debian package that ships `element` (checked with `dpkg -S` on Debian 12).
pub(crate) fn debian_package(element: &str) -> &'static str {
    match element {
        "filesrc" | "fakesink" | "identity" | "queue" => "libgstreamer1.0-0",
        "videotestsrc" | "videoconvert" | "videoscale" | "videorate" | "appsink" | "decodebin" => {
            "gstreamer1.0-plugins-base"
        }
        // pango's overlays live in the X/Pango split-out package, not plugins-base.
        "clockoverlay" | "textoverlay" => "gstreamer1.0-x",
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "h264parse" | "qsvh264enc" | "vah264enc" | "openh264enc" => "gstreamer1.0-plugins-bad",
        "rtspsrc" | "rtph264depay" | "v4l2src" | "v4l2h264enc" | "mp4mux" | "qtdemux" => {
            "gstreamer1.0-plugins-good"
        }
        "vaapih264enc" => "gstreamer1.0-vaapi",
        "nvv4l2h264enc" => "nvidia-l4t-gstreamer",
        "avdec_h264" => "gstreamer1.0-libav",
        _ => "unknown (search for the plugin with apt-file)",
    }
}

/// Whether the registry has a factory for `element`.
pub(crate) fn available(element: &str) -> bool {
    gstreamer::ElementFactory::find(element).is_some()
}

/// The error for a missing element.
pub(crate) fn missing(element: &str) -> CaptureError {
    CaptureError::MissingElement {
        element: element.to_owned(),
        package: debian_package(element).to_owned(),
    }
}

/// Fails with [`CaptureError::MissingElement`] for the first element not in the registry.
pub(crate) fn require<'a>(elements: impl IntoIterator<Item = &'a str>) -> Result<(), CaptureError> {
    match elements.into_iter().find(|e| !available(e)) {
        Some(element) => Err(missing(element)),
        None => Ok(()),
    }
}
