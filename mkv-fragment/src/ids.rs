//! Matroska / EBML element ids used by KVS producers and GetMedia, in one table.
//!
//! Why one file: the reader, the writers and the tests must agree on every id, and the ids are
//! easy to mistype. Ids are written with their length marker bits, as in the Matroska
//! specification (`0x1A45DFA3` for the EBML header).

/// EBML header (level 0).
pub const EBML: u32 = 0x1A45_DFA3;
/// EBMLVersion.
pub const EBML_VERSION: u32 = 0x4286;
/// EBMLReadVersion.
pub const EBML_READ_VERSION: u32 = 0x42F7;
/// EBMLMaxIDLength.
pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
/// EBMLMaxSizeLength.
pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
/// DocType (`matroska` or `webm`).
pub const DOC_TYPE: u32 = 0x4282;
/// DocTypeVersion.
pub const DOC_TYPE_VERSION: u32 = 0x4287;
/// DocTypeReadVersion.
pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
/// Void (global: allowed anywhere, skipped).
pub const VOID: u32 = 0xEC;
/// CRC-32 (global: allowed as the first child of any master element, skipped).
pub const CRC32: u32 = 0xBF;

/// Segment (level 0).
pub const SEGMENT: u32 = 0x1853_8067;
/// SeekHead (level 1).
pub const SEEK_HEAD: u32 = 0x114D_9B74;
/// Info (level 1).
pub const INFO: u32 = 0x1549_A966;
/// Tracks (level 1).
pub const TRACKS: u32 = 0x1654_AE6B;
/// Chapters (level 1).
pub const CHAPTERS: u32 = 0x1043_A770;
/// Attachments (level 1).
pub const ATTACHMENTS: u32 = 0x1941_A469;
/// Cues (level 1).
pub const CUES: u32 = 0x1C53_BB6B;
/// Tags (level 1).
pub const TAGS: u32 = 0x1254_C367;
/// Cluster (level 1).
pub const CLUSTER: u32 = 0x1F43_B675;

/// Info/SegmentUID.
pub const SEGMENT_UID: u32 = 0x73A4;
/// Info/TimecodeScale (nanoseconds per timecode unit).
pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
/// Info/Duration.
pub const DURATION: u32 = 0x4489;
/// Info/Title.
pub const TITLE: u32 = 0x7BA9;
/// Info/MuxingApp.
pub const MUXING_APP: u32 = 0x4D80;
/// Info/WritingApp.
pub const WRITING_APP: u32 = 0x5741;

/// Tracks/TrackEntry.
pub const TRACK_ENTRY: u32 = 0xAE;
/// TrackEntry/TrackNumber.
pub const TRACK_NUMBER: u32 = 0xD7;
/// TrackEntry/TrackUID.
pub const TRACK_UID: u32 = 0x73C5;
/// TrackEntry/TrackType (1 video, 2 audio).
pub const TRACK_TYPE: u32 = 0x83;
/// TrackEntry/Name.
pub const NAME: u32 = 0x536E;
/// TrackEntry/CodecID.
pub const CODEC_ID: u32 = 0x86;
/// TrackEntry/CodecPrivate.
pub const CODEC_PRIVATE: u32 = 0x63A2;
/// TrackEntry/Video.
pub const VIDEO: u32 = 0xE0;
/// Video/PixelWidth.
pub const PIXEL_WIDTH: u32 = 0xB0;
/// Video/PixelHeight.
pub const PIXEL_HEIGHT: u32 = 0xBA;
/// TrackEntry/Audio.
pub const AUDIO: u32 = 0xE1;
/// Audio/SamplingFrequency (float).
pub const SAMPLING_FREQUENCY: u32 = 0xB5;
/// Audio/Channels.
pub const CHANNELS: u32 = 0x9F;
/// Audio/BitDepth.
pub const BIT_DEPTH: u32 = 0x6264;

/// Cluster/Timecode.
pub const TIMECODE: u32 = 0xE7;
/// Cluster/Position.
pub const POSITION: u32 = 0xA7;
/// Cluster/PrevSize.
pub const PREV_SIZE: u32 = 0xAB;
/// Cluster/SimpleBlock.
pub const SIMPLE_BLOCK: u32 = 0xA3;
/// Cluster/BlockGroup.
pub const BLOCK_GROUP: u32 = 0xA0;
/// BlockGroup/Block.
pub const BLOCK: u32 = 0xA1;
/// BlockGroup/BlockDuration.
pub const BLOCK_DURATION: u32 = 0x9B;
/// BlockGroup/ReferenceBlock (its presence means "not a key frame").
pub const REFERENCE_BLOCK: u32 = 0xFB;

/// Tags/Tag.
pub const TAG: u32 = 0x7373;
/// Tag/Targets.
pub const TARGETS: u32 = 0x63C0;
/// Tag/SimpleTag (also nested inside SimpleTag).
pub const SIMPLE_TAG: u32 = 0x67C8;
/// SimpleTag/TagName.
pub const TAG_NAME: u32 = 0x45A3;
/// SimpleTag/TagLanguage.
pub const TAG_LANGUAGE: u32 = 0x447A;
/// SimpleTag/TagDefault.
pub const TAG_DEFAULT: u32 = 0x4484;
/// SimpleTag/TagString.
pub const TAG_STRING: u32 = 0x4487;
/// SimpleTag/TagBinary.
pub const TAG_BINARY: u32 = 0x4485;

/// True for the ids that end an unknown-size Cluster: level-1 elements that cannot be a Cluster
/// child, a new Segment, or a new EBML header.
pub fn ends_unknown_size_cluster(id: u32) -> bool {
    matches!(
        id,
        CLUSTER | TAGS | CUES | INFO | TRACKS | SEEK_HEAD | CHAPTERS | ATTACHMENTS | EBML | SEGMENT
    )
}
