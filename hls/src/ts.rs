//! MPEG-2 Transport Stream segments for HLS (`getTSFragment.ts`).
//!
//! Packet serialisation (PAT/PMT sections with their CRC, PES headers with PTS/DTS, adaptation
//! fields with PCR and stuffing) is done by the `mpeg2ts` crate; this module decides the
//! stream layout:
//!
//! * one program (number 1): PMT on PID 0x1000, H.264 (stream type 0x1B) on PID 0x100, which
//!   also carries the PCR;
//! * PAT + PMT at the start of every segment and again before every later key frame;
//! * one PES packet (stream id 0xE0) per access unit, data-aligned, with the PTS and, when it
//!   differs, the DTS on the 90 kHz clock;
//! * each access unit converted from AVCC to Annex B: an access unit delimiter first, then,
//!   before an IDR picture whose frame does not carry them, the SPS and PPS of the avcC, then
//!   the frame's NAL units (its own delimiters dropped), each behind a 4-byte start code;
//! * the first packet of each access unit has an adaptation field with the PCR (the DTS minus
//!   [`PCR_LEAD_TICKS`], floored at 0) and the random access indicator on key frames; the last
//!   packet is padded with adaptation-field stuffing.
//!
//! Timeline: PTS/DTS = `fmp4::ticks(ms, timeline_origin_ms, 90_000)` modulo 2^33, the same
//! ticks as an fMP4 segment at the default 90 kHz timescale. Segments made by separate requests
//! line up when they use the same origin.
//!
//! Continuity counters: [`TsState`] holds them. Pass the same state to the writer for
//! consecutive segments and the counters continue across segment boundaries (a client reading
//! the segments back to back sees no discontinuity). A server that writes each segment on its
//! own starts from `TsState::default()`: every segment is then a valid stream by itself, and
//! HLS clients, which open each segment separately, accept it.

use mpeg2ts::es::{StreamId, StreamType};
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{self, Pat, Pes, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, EsInfo, Pid, ProgramAssociation,
    TransportScramblingControl, TsHeader, TsPacket, TsPacketWriter, TsPayload, VersionNumber,
    WriteTsPacket,
};

use crate::avc::{nal_type, nal_unit_type, nal_units};
use crate::error::HlsError;
use crate::fmp4::ticks;
use crate::fragment::{Fragment, Sample, VideoTrack};

/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream (and of the PCR).
pub const VIDEO_PID: u16 = 0x100;
/// The program number in the PAT and PMT.
pub const PROGRAM_NUMBER: u16 = 1;
/// How far the PCR runs ahead of the decode time: 100 ms at 90 kHz.
pub const PCR_LEAD_TICKS: u64 = 9_000;
/// The 90 kHz MPEG system clock.
pub const TS_TIMESCALE: u32 = 90_000;

const PTS_MODULUS: u64 = 1 << 33;
const PACKET_PAYLOAD: usize = TsPacket::SIZE - 4;
/// Adaptation field with a PCR: length byte, flags byte, 6 PCR bytes.
const PCR_FIELD_SIZE: usize = 8;
const START_CODE: [u8; 4] = [0, 0, 0, 1];
const ACCESS_UNIT_DELIMITER: [u8; 2] = [0x09, 0xF0];

/// Continuity counters carried from one segment to the next (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsState {
    pat_cc: u8,
    pmt_cc: u8,
    video_cc: u8,
}

impl TsState {
    /// The next continuity counter of the PAT, PMT and video PIDs.
    pub fn continuity_counters(&self) -> (u8, u8, u8) {
        (self.pat_cc, self.pmt_cc, self.video_cc)
    }
}

/// An MPEG-TS segment of `samples` (decode order). Fails with [`HlsError::Empty`] for no
/// samples. `state` is read and advanced (see the module docs).
pub fn ts_segment(
    track: &VideoTrack,
    samples: &[Sample],
    timeline_origin_ms: u64,
    state: &mut TsState,
) -> Result<Vec<u8>, HlsError> {
    if samples.is_empty() {
        return Err(HlsError::Empty);
    }
    let capacity = samples.iter().map(|s| s.data.len()).sum::<usize>() * 105 / 100 + 1024;
    let mut mux = Muxer {
        writer: TsPacketWriter::new(Vec::with_capacity(capacity)),
        state: *state,
        track,
        origin_ms: timeline_origin_ms,
    };
    mux.tables()?;
    for (i, sample) in samples.iter().enumerate() {
        if i > 0 && sample.keyframe {
            mux.tables()?;
        }
        mux.access_unit(sample)?;
    }
    *state = mux.state;
    Ok(mux.writer.into_stream())
}

/// The MPEG-TS segment of a whole fragment.
pub fn fragment_ts(
    fragment: &Fragment,
    timeline_origin_ms: u64,
    state: &mut TsState,
) -> Result<Vec<u8>, HlsError> {
    ts_segment(
        &fragment.track,
        &fragment.samples,
        timeline_origin_ms,
        state,
    )
}

/// Converts one AVCC access unit to Annex B (see the module docs for what is added).
pub fn annex_b(track: &VideoTrack, sample: &Sample) -> Vec<u8> {
    let length_size = track.config.nal_length_size;
    let mut has_idr = false;
    let mut has_sps = false;
    let mut has_pps = false;
    for nal in nal_units(&sample.data, length_size) {
        match nal_unit_type(nal) {
            nal_type::IDR => has_idr = true,
            nal_type::SPS => has_sps = true,
            nal_type::PPS => has_pps = true,
            _ => {}
        }
    }
    let mut es = Vec::with_capacity(sample.data.len() + 128);
    es.extend_from_slice(&START_CODE);
    es.extend_from_slice(&ACCESS_UNIT_DELIMITER);
    if (has_idr || sample.keyframe) && !(has_sps && has_pps) {
        for ps in track.config.sps.iter().chain(&track.config.pps) {
            es.extend_from_slice(&START_CODE);
            es.extend_from_slice(ps);
        }
    }
    for nal in nal_units(&sample.data, length_size) {
        if nal_unit_type(nal) != nal_type::AUD {
            es.extend_from_slice(&START_CODE);
            es.extend_from_slice(nal);
        }
    }
    es
}

struct Muxer<'a> {
    writer: TsPacketWriter<Vec<u8>>,
    state: TsState,
    track: &'a VideoTrack,
    origin_ms: u64,
}

fn header(pid: u16, cc: &mut u8) -> Result<TsHeader, HlsError> {
    let counter = ContinuityCounter::from_u8(*cc & 0x0F)?;
    *cc = (*cc + 1) & 0x0F;
    Ok(TsHeader {
        transport_error_indicator: false,
        transport_priority: false,
        pid: Pid::new(pid)?,
        transport_scrambling_control: TransportScramblingControl::NotScrambled,
        continuity_counter: counter,
    })
}

impl Muxer<'_> {
    fn write(&mut self, packet: &TsPacket) -> Result<(), HlsError> {
        self.writer.write_ts_packet(packet)?;
        Ok(())
    }

    /// One PAT and one PMT packet.
    fn tables(&mut self) -> Result<(), HlsError> {
        let pat = TsPacket {
            header: header(Pid::PAT, &mut self.state.pat_cc)?,
            adaptation_field: None,
            payload: Some(TsPayload::Pat(Pat {
                transport_stream_id: 1,
                version_number: VersionNumber::new(),
                table: vec![ProgramAssociation {
                    program_num: PROGRAM_NUMBER,
                    program_map_pid: Pid::new(PMT_PID)?,
                }],
            })),
        };
        self.write(&pat)?;
        let pmt = TsPacket {
            header: header(PMT_PID, &mut self.state.pmt_cc)?,
            adaptation_field: None,
            payload: Some(TsPayload::Pmt(Pmt {
                program_num: PROGRAM_NUMBER,
                pcr_pid: Some(Pid::new(VIDEO_PID)?),
                version_number: VersionNumber::new(),
                program_info: Vec::new(),
                es_info: vec![EsInfo {
                    stream_type: StreamType::H264,
                    elementary_pid: Pid::new(VIDEO_PID)?,
                    descriptors: Vec::new(),
                }],
            })),
        };
        self.write(&pmt)
    }

    /// One PES packet, split into TS packets.
    fn access_unit(&mut self, sample: &Sample) -> Result<(), HlsError> {
        let es = annex_b(self.track, sample);
        let dts_ticks = ticks(sample.dts_ms, self.origin_ms, TS_TIMESCALE);
        let pts_ticks = ticks(sample.pts_ms, self.origin_ms, TS_TIMESCALE);
        let pcr_ticks = dts_ticks.saturating_sub(PCR_LEAD_TICKS) % PTS_MODULUS;
        let pts = Timestamp::new(pts_ticks % PTS_MODULUS)?;
        let dts = if dts_ticks == pts_ticks {
            None
        } else {
            Some(Timestamp::new(dts_ticks % PTS_MODULUS)?)
        };
        // PES header: start code (3), stream id (1), length (2), flags (2), header length (1),
        // then 5 bytes per timestamp.
        let optional_len = if dts.is_some() { 10 } else { 5 };
        let pes_header_len = 9 + optional_len;
        let pes_packet_len = u16::try_from(3 + optional_len + es.len()).unwrap_or(0);
        let first_len = es
            .len()
            .min(PACKET_PAYLOAD - PCR_FIELD_SIZE - pes_header_len);
        let (first, mut rest) = es.split_at(first_len);
        let packet = TsPacket {
            header: header(VIDEO_PID, &mut self.state.video_cc)?,
            adaptation_field: Some(AdaptationField {
                discontinuity_indicator: false,
                random_access_indicator: sample.keyframe,
                es_priority_indicator: false,
                pcr: Some(ClockReference::new(pcr_ticks * 300)?),
                opcr: None,
                splice_countdown: None,
                transport_private_data: Vec::new(),
                extension: None,
            }),
            payload: Some(TsPayload::PesStart(Pes {
                header: PesHeader {
                    stream_id: StreamId::new_video(0xE0)?,
                    priority: false,
                    data_alignment_indicator: true,
                    copyright: false,
                    original_or_copy: false,
                    pts: Some(pts),
                    dts,
                    escr: None,
                },
                pes_packet_len,
                data: payload::Bytes::new(first)?,
            })),
        };
        self.write(&packet)?;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(PACKET_PAYLOAD));
            rest = tail;
            let packet = TsPacket {
                header: header(VIDEO_PID, &mut self.state.video_cc)?,
                adaptation_field: None,
                payload: Some(TsPayload::PesContinuation(payload::Bytes::new(chunk)?)),
            };
            self.write(&packet)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn track() -> VideoTrack {
        let avcc = [
            1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 6, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 1, 0, 4,
            0x68, 0xCE, 0x3C, 0x80,
        ];
        VideoTrack {
            track_number: 1,
            codec_private: avcc.to_vec(),
            config: crate::avc::AvcConfig::parse(&avcc).unwrap(),
            width: 320,
            height: 240,
            timescale: crate::DEFAULT_TIMESCALE,
        }
    }

    fn sample(ms: u64, keyframe: bool, data: Vec<u8>) -> Sample {
        Sample {
            dts_ms: ms,
            pts_ms: ms,
            duration_ms: 40,
            keyframe,
            data: Bytes::from(data),
        }
    }

    #[test]
    fn annex_b_adds_aud_and_parameter_sets_before_idr() {
        let idr = sample(0, true, vec![0, 0, 0, 3, 0x65, 0xAA, 0xBB]);
        let es = annex_b(&track(), &idr);
        let expected: Vec<u8> = [
            &[0, 0, 0, 1, 0x09, 0xF0][..],
            &[0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00],
            &[0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80],
            &[0, 0, 0, 1, 0x65, 0xAA, 0xBB],
        ]
        .concat();
        assert_eq!(es, expected);
        // A delta frame with its own AUD: one AUD, no parameter sets.
        let delta = sample(
            40,
            false,
            vec![0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 2, 0x41, 0x9A],
        );
        assert_eq!(
            annex_b(&track(), &delta),
            vec![0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x9A]
        );
    }

    #[test]
    fn packets_are_aligned_and_counters_continue() {
        let samples = vec![
            sample(
                1_000,
                true,
                [&[0, 0, 3, 0xE8, 0x65][..], &[7; 1000]].concat(),
            ),
            sample(1_040, false, vec![0, 0, 0, 2, 0x41, 1]),
        ];
        let mut state = TsState::default();
        let ts = ts_segment(&track(), &samples, 0, &mut state).unwrap();
        assert_eq!(ts.len() % TsPacket::SIZE, 0);
        assert!(ts.chunks(TsPacket::SIZE).all(|p| p[0] == 0x47));
        let video_packets = ts
            .chunks(TsPacket::SIZE)
            .filter(|p| u16::from_be_bytes([p[1] & 0x1F, p[2]]) == VIDEO_PID)
            .count() as u8;
        assert_eq!(state.continuity_counters(), (1, 1, video_packets & 0x0F));
        let again = ts_segment(&track(), &samples, 0, &mut state).unwrap();
        // The second segment's PAT continues at counter 1.
        assert_eq!(again[3] & 0x0F, 1);
        assert!(matches!(
            ts_segment(&track(), &[], 0, &mut state),
            Err(HlsError::Empty)
        ));
    }
}
