//! H.264 helpers: the AVCDecoderConfigurationRecord (`avcC`, the MKV CodecPrivate of
//! `V_MPEG4/ISO/AVC`), the RFC 6381 codecs string, and walking the NAL units of an AVCC frame.

use crate::error::HlsError;

/// NAL unit types used here (ITU-T H.264 table 7-1).
pub(crate) mod nal_type {
    /// Coded slice of an IDR picture.
    pub(crate) const IDR: u8 = 5;
    /// Sequence parameter set.
    pub(crate) const SPS: u8 = 7;
    /// Picture parameter set.
    pub(crate) const PPS: u8 = 8;
    /// Access unit delimiter.
    pub(crate) const AUD: u8 = 9;
}

/// A parsed AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// AVCProfileIndication (66 baseline, 77 main, 100 high, ...).
    pub profile_indication: u8,
    /// profile_compatibility (the constraint flags byte).
    pub profile_compatibility: u8,
    /// AVCLevelIndication (31 = level 3.1).
    pub level_indication: u8,
    /// Bytes of the NAL unit length prefix in the frames: 1, 2 or 4.
    pub nal_length_size: u8,
    /// The sequence parameter set NAL units (at least one).
    pub sps: Vec<Vec<u8>>,
    /// The picture parameter set NAL units (at least one).
    pub pps: Vec<Vec<u8>>,
    /// The extension of the high profiles, when present and well formed.
    pub ext: Option<AvcConfigExt>,
}

/// The avcC fields that follow the PPS list for the high profiles (100, 110, 122, 144).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfigExt {
    /// chroma_format_idc (1 = 4:2:0).
    pub chroma_format: u8,
    /// Luma bit depth (8..=15).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=15).
    pub bit_depth_chroma: u8,
    /// SPS extension NAL units.
    pub sps_ext: Vec<Vec<u8>>,
}

/// Profiles whose avcC may carry [`AvcConfigExt`] (ISO/IEC 14496-15).
const EXT_PROFILES: [u8; 4] = [100, 110, 122, 144];

/// A cursor over untrusted bytes that never panics.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn u16(&mut self) -> Option<u16> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        Some(u16::from_be_bytes([hi, lo]))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    /// A list of `count` parameter sets, each with a 16-bit length.
    fn parameter_sets(&mut self, count: usize) -> Option<Vec<Vec<u8>>> {
        let mut sets = Vec::with_capacity(count.min(32));
        for _ in 0..count {
            let len = usize::from(self.u16()?);
            sets.push(self.take(len)?.to_vec());
        }
        Some(sets)
    }
}

impl AvcConfig {
    /// Parses and checks an avcC record: version 1, a NAL length size of 1, 2 or 4 bytes, at
    /// least one SPS (NAL type 7, 4 bytes or more) and one PPS (NAL type 8), every length within
    /// the input. Bytes after the PPS list are read as the high-profile extension when they
    /// form one and are otherwise ignored, as decoders do.
    pub fn parse(avcc: &[u8]) -> Result<AvcConfig, HlsError> {
        use HlsError::InvalidCodecPrivateData as Invalid;
        if avcc.is_empty() {
            return Err(HlsError::MissingCodecPrivateData);
        }
        let mut r = Reader { bytes: avcc };
        let header = r.take(6).ok_or(Invalid("shorter than 7 bytes"))?;
        let [version, profile, compat, level, length_byte, sps_byte] = header else {
            return Err(Invalid("shorter than 7 bytes"));
        };
        if *version != 1 {
            return Err(Invalid("configurationVersion is not 1"));
        }
        let nal_length_size = (length_byte & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(Invalid("lengthSizeMinusOne is 2 (3-byte NAL lengths)"));
        }
        let sps_count = usize::from(sps_byte & 0x1F);
        if sps_count == 0 {
            return Err(Invalid("no SPS"));
        }
        let sps = r
            .parameter_sets(sps_count)
            .ok_or(Invalid("an SPS overruns the record"))?;
        if sps
            .iter()
            .any(|s| s.len() < 4 || s.first().map(|b| b & 0x1F) != Some(nal_type::SPS))
        {
            return Err(Invalid("an SPS is not an SPS NAL unit"));
        }
        let pps_count = usize::from(r.u8().ok_or(Invalid("no PPS count"))?);
        if pps_count == 0 {
            return Err(Invalid("no PPS"));
        }
        let pps = r
            .parameter_sets(pps_count)
            .ok_or(Invalid("a PPS overruns the record"))?;
        if pps
            .iter()
            .any(|p| p.len() < 2 || p.first().map(|b| b & 0x1F) != Some(nal_type::PPS))
        {
            return Err(Invalid("a PPS is not a PPS NAL unit"));
        }
        let ext = if EXT_PROFILES.contains(profile) {
            parse_ext(&mut r)
        } else {
            None
        };
        Ok(AvcConfig {
            profile_indication: *profile,
            profile_compatibility: *compat,
            level_indication: *level,
            nal_length_size,
            sps,
            pps,
            ext,
        })
    }

    /// The RFC 6381 codecs string: `avc1.` and the profile, compatibility and level bytes in
    /// hex, e.g. `avc1.64001f` for high profile level 3.1.
    pub fn codecs_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_indication, self.profile_compatibility, self.level_indication
        )
    }

    /// The record as the `mp4-atom` encoder takes it.
    pub(crate) fn to_mp4_atom(&self) -> mp4_atom::Avcc {
        mp4_atom::Avcc {
            configuration_version: 1,
            avc_profile_indication: self.profile_indication,
            profile_compatibility: self.profile_compatibility,
            avc_level_indication: self.level_indication,
            length_size: self.nal_length_size,
            sequence_parameter_sets: self.sps.clone(),
            picture_parameter_sets: self.pps.clone(),
            ext: self.ext.as_ref().map(|e| mp4_atom::AvccExt {
                chroma_format: e.chroma_format,
                bit_depth_luma: e.bit_depth_luma,
                bit_depth_chroma: e.bit_depth_chroma,
                sequence_parameter_sets_ext: e.sps_ext.clone(),
            }),
        }
    }
}

fn parse_ext(r: &mut Reader<'_>) -> Option<AvcConfigExt> {
    let chroma_format = r.u8()? & 0x03;
    let bit_depth_luma = (r.u8()? & 0x07) + 8;
    let bit_depth_chroma = (r.u8()? & 0x07) + 8;
    let count = usize::from(r.u8()?);
    let sps_ext = r.parameter_sets(count)?;
    Some(AvcConfigExt {
        chroma_format,
        bit_depth_luma,
        bit_depth_chroma,
        sps_ext,
    })
}

/// The RFC 6381 codecs string (`avc1.PPCCLL`) of an avcC record, for `CODECS=` in a master
/// playlist and `codecs=` in an MPD.
pub fn codecs_string(avcc: &[u8]) -> Result<String, HlsError> {
    AvcConfig::parse(avcc).map(|c| c.codecs_string())
}

/// The NAL units of one AVCC frame (each prefixed by its length in `length_size` bytes). Stops
/// at the first length that overruns the frame: what follows cannot be delimited.
pub(crate) fn nal_units(frame: &[u8], length_size: u8) -> impl Iterator<Item = &[u8]> {
    let length_size = usize::from(length_size.clamp(1, 4));
    let mut rest = frame;
    std::iter::from_fn(move || {
        loop {
            if rest.len() < length_size {
                return None;
            }
            let (prefix, tail) = rest.split_at(length_size);
            let len = prefix
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len > tail.len() {
                rest = &[];
                return None;
            }
            let (nal, next) = tail.split_at(len);
            rest = next;
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    })
}

/// The NAL unit type of a NAL unit (its first byte's low 5 bits).
pub(crate) fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// avcC of an x264 320x240 high-profile stream, level 1.3.
    fn sample_avcc() -> Vec<u8> {
        let sps = [
            0x67, 0x64, 0x00, 0x0D, 0xAC, 0xD9, 0x41, 0x41, 0xFB, 0x01, 0x10,
        ];
        let pps = [0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];
        let mut v = vec![1, 0x64, 0x00, 0x0D, 0xFF, 0xE1, 0, sps.len() as u8];
        v.extend_from_slice(&sps);
        v.extend_from_slice(&[1, 0, pps.len() as u8]);
        v.extend_from_slice(&pps);
        v.extend_from_slice(&[0xFD, 0xF8, 0xF8, 0x00]);
        v
    }

    #[test]
    fn parses_a_high_profile_record() {
        let c = AvcConfig::parse(&sample_avcc()).unwrap();
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.sps.len(), 1);
        assert_eq!(c.pps.len(), 1);
        assert_eq!(c.codecs_string(), "avc1.64000d");
        assert_eq!(
            c.ext,
            Some(AvcConfigExt {
                chroma_format: 1,
                bit_depth_luma: 8,
                bit_depth_chroma: 8,
                sps_ext: vec![]
            })
        );
        assert_eq!(codecs_string(&sample_avcc()).unwrap(), "avc1.64000d");
    }

    #[test]
    fn rejects_bad_records() {
        let good = sample_avcc();
        assert!(matches!(
            AvcConfig::parse(&[]),
            Err(HlsError::MissingCodecPrivateData)
        ));
        let invalid = |bytes: &[u8]| {
            matches!(
                AvcConfig::parse(bytes),
                Err(HlsError::InvalidCodecPrivateData(_))
            )
        };
        assert!(invalid(&good[..5]));
        let mut v = good.clone();
        v[0] = 0;
        assert!(invalid(&v), "version");
        let mut v = good.clone();
        v[5] = 0xE0;
        assert!(invalid(&v), "no SPS");
        let mut v = good.clone();
        v[7] = 200;
        assert!(invalid(&v), "SPS length overruns");
        let mut v = good.clone();
        v[4] = 0xFE;
        assert!(invalid(&v), "3-byte NAL lengths");
        let mut v = good.clone();
        v[8] = 0x68;
        assert!(invalid(&v), "SPS slot holds a PPS");
        // Everything up to the PPS count only.
        assert!(invalid(&good[..8 + 11]));
        // Truncated extension: ignored.
        let c = AvcConfig::parse(&good[..good.len() - 2]).unwrap();
        assert_eq!(c.ext, None);
    }

    #[test]
    fn walks_nal_units() {
        let frame = [
            0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 0, 0, 0, 0, 1, 0x65, 0, 0, 0, 9, 1,
        ];
        let nals: Vec<&[u8]> = nal_units(&frame, 4).collect();
        assert_eq!(nals, vec![&[0x09, 0xF0][..], &[0x65][..]]);
        let short: Vec<&[u8]> = nal_units(&[0, 5, 1], 2).collect();
        assert!(short.is_empty());
        assert_eq!(nal_unit_type(&[0x65]), nal_type::IDR);
    }
}
