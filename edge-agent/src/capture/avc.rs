//! H.264 framing checks: the AVCDecoderConfigurationRecord (avcC, ISO/IEC 14496-15 5.3.3.1)
//! that becomes the MKV `CodecPrivate`, and the 4-byte length-prefixed (AVCC) access units.
//!
//! Hand-written on purpose: the record is a few length-prefixed fields, about twenty lines to
//! walk, while the crates that parse it bring whole H.264 bitstream stacks with them. Every read
//! goes through `Reader`, which returns `None` past the end, so no input can make it panic.

use std::fmt;

/// NAL unit types (H.264 Table 7-1) that the record must carry.
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// A parsed, validated avcC record, borrowing the parameter sets from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AvcConfig<'a> {
    /// `AVCProfileIndication`: equals `profile_idc` of the first SPS.
    pub(crate) profile: u8,
    /// `profile_compatibility` (the SPS constraint flags).
    pub(crate) compatibility: u8,
    /// `AVCLevelIndication`.
    pub(crate) level: u8,
    /// Sequence parameter set NAL units (at least one).
    pub(crate) sps: Vec<&'a [u8]>,
    /// Picture parameter set NAL units (at least one).
    pub(crate) pps: Vec<&'a [u8]>,
}

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AvcError {
    /// The record ends before a field it announces.
    Truncated(&'static str),
    /// `configurationVersion` is not 1.
    Version(u8),
    /// NAL lengths are not 4 bytes (`lengthSizeMinusOne` != 3); frames are written with 4.
    LengthSize(u8),
    /// No SPS or no PPS.
    MissingParameterSet(&'static str),
    /// A parameter set of length 0 or whose NAL type is not SPS/PPS.
    BadParameterSet(&'static str),
    /// The record's profile byte differs from the SPS's `profile_idc`.
    ProfileMismatch {
        /// `AVCProfileIndication` in the record.
        record: u8,
        /// `profile_idc` in the first SPS.
        sps: u8,
    },
}

impl fmt::Display for AvcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AvcError::Truncated(field) => write!(f, "avcC truncated in {field}"),
            AvcError::Version(v) => write!(f, "avcC configurationVersion {v}, expected 1"),
            AvcError::LengthSize(n) => {
                write!(f, "avcC NAL length size {n} bytes, expected 4")
            }
            AvcError::MissingParameterSet(kind) => write!(f, "avcC carries no {kind}"),
            AvcError::BadParameterSet(kind) => write!(f, "avcC carries an invalid {kind}"),
            AvcError::ProfileMismatch { record, sps } => write!(
                f,
                "avcC profile {record} does not match the SPS profile_idc {sps}"
            ),
        }
    }
}

impl std::error::Error for AvcError {}

/// Bounds-checked big-endian reader.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }
}

/// Reads `count` u16-length-prefixed NAL units of type `nal_type`.
fn parameter_sets<'a>(
    r: &mut Reader<'a>,
    count: u8,
    nal_type: u8,
    kind: &'static str,
) -> Result<Vec<&'a [u8]>, AvcError> {
    if count == 0 {
        return Err(AvcError::MissingParameterSet(kind));
    }
    let mut sets = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = r.u16().ok_or(AvcError::Truncated(kind))?;
        let nal = r.bytes(usize::from(len)).ok_or(AvcError::Truncated(kind))?;
        match nal.first() {
            Some(header) if header & 0x1f == nal_type => sets.push(nal),
            _ => return Err(AvcError::BadParameterSet(kind)),
        }
    }
    Ok(sets)
}

impl<'a> AvcConfig<'a> {
    /// Parses and validates a record. Trailing bytes (the High-profile chroma/bit-depth
    /// extension) are allowed and ignored.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self, AvcError> {
        let mut r = Reader { rest: data };
        let header = AvcError::Truncated("header");
        let version = r.u8().ok_or(header.clone())?;
        if version != 1 {
            return Err(AvcError::Version(version));
        }
        let profile = r.u8().ok_or(header.clone())?;
        let compatibility = r.u8().ok_or(header.clone())?;
        let level = r.u8().ok_or(header.clone())?;
        let length_size = (r.u8().ok_or(header.clone())? & 0b11) + 1;
        if length_size != 4 {
            return Err(AvcError::LengthSize(length_size));
        }
        let num_sps = r.u8().ok_or(header)? & 0b1_1111;
        let sps = parameter_sets(&mut r, num_sps, NAL_SPS, "SPS")?;
        let num_pps = r.u8().ok_or(AvcError::Truncated("PPS count"))?;
        let pps = parameter_sets(&mut r, num_pps, NAL_PPS, "PPS")?;
        // SPS byte 0 is the NAL header, byte 1 profile_idc.
        let sps_profile = sps
            .first()
            .and_then(|s| s.get(1))
            .copied()
            .ok_or(AvcError::BadParameterSet("SPS"))?;
        if sps_profile != profile {
            return Err(AvcError::ProfileMismatch {
                record: profile,
                sps: sps_profile,
            });
        }
        Ok(AvcConfig {
            profile,
            compatibility,
            level,
            sps,
            pps,
        })
    }
}

/// Splits an AVCC access unit (4-byte big-endian length prefixes) into its NAL units; `None`
/// unless the prefixes cover the buffer exactly with non-empty units.
pub(crate) fn split_avcc(data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut r = Reader { rest: data };
    let mut units = Vec::new();
    while !r.rest.is_empty() {
        let len = u32::from_be_bytes([r.u8()?, r.u8()?, r.u8()?, r.u8()?]);
        let len = usize::try_from(len).ok().filter(|&n| n > 0)?;
        units.push(r.bytes(len)?);
    }
    if units.is_empty() { None } else { Some(units) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A Baseline (profile 66) SPS and a PPS; only NAL headers and the profile byte matter here.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn record(version: u8, profile: u8, length_byte: u8, sps: &[&[u8]], pps: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![version, profile, 0xc0, 0x0d, length_byte];
        out.push(0xe0 | u8::try_from(sps.len()).unwrap_or(0x1f));
        for s in sps {
            out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(s);
        }
        out.push(u8::try_from(pps.len()).unwrap_or(0xff));
        for p in pps {
            out.extend_from_slice(&u16::try_from(p.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    fn valid() -> Vec<u8> {
        record(1, 0x42, 0xff, &[SPS], &[PPS])
    }

    #[test]
    fn parses_valid_record() {
        let data = valid();
        let cfg = AvcConfig::parse(&data).expect("valid");
        assert_eq!(cfg.profile, 0x42);
        assert_eq!(cfg.compatibility, 0xc0);
        assert_eq!(cfg.level, 0x0d);
        assert_eq!(cfg.sps, vec![SPS]);
        assert_eq!(cfg.pps, vec![PPS]);
    }

    #[test]
    fn allows_high_profile_trailer_and_several_sets() {
        let mut sps_high = SPS.to_vec();
        sps_high[1] = 100;
        let mut data = record(1, 100, 0xff, &[&sps_high, &sps_high], &[PPS, PPS]);
        data.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0x00]);
        let cfg = AvcConfig::parse(&data).expect("valid");
        assert_eq!((cfg.sps.len(), cfg.pps.len()), (2, 2));
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(AvcConfig::parse(&[]), Err(AvcError::Truncated("header")));
        assert_eq!(
            AvcConfig::parse(&record(0, 0x42, 0xff, &[SPS], &[PPS])),
            Err(AvcError::Version(0))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x42, 0xfd, &[SPS], &[PPS])),
            Err(AvcError::LengthSize(2))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x42, 0xff, &[], &[PPS])),
            Err(AvcError::MissingParameterSet("SPS"))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x42, 0xff, &[SPS], &[])),
            Err(AvcError::MissingParameterSet("PPS"))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x42, 0xff, &[PPS], &[PPS])),
            Err(AvcError::BadParameterSet("SPS"))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x42, 0xff, &[SPS], &[SPS])),
            Err(AvcError::BadParameterSet("PPS"))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x42, 0xff, &[&[]], &[PPS])),
            Err(AvcError::BadParameterSet("SPS"))
        );
        assert_eq!(
            AvcConfig::parse(&record(1, 0x4d, 0xff, &[SPS], &[PPS])),
            Err(AvcError::ProfileMismatch {
                record: 0x4d,
                sps: 0x42
            })
        );
        // Every strict prefix of a valid record is truncated somewhere.
        let data = valid();
        for end in 0..data.len() {
            assert!(AvcConfig::parse(&data[..end]).is_err(), "prefix {end}");
        }
        // A length field pointing past the end.
        let mut long = valid();
        long[7] = 0xff;
        assert_eq!(AvcConfig::parse(&long), Err(AvcError::Truncated("SPS")));
    }

    #[test]
    fn splits_avcc() {
        let au = [0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06];
        assert_eq!(split_avcc(&au), Some(vec![&au[4..6], &au[10..]]));
        assert_eq!(split_avcc(&[]), None);
        assert_eq!(split_avcc(&au[..10]), None);
        assert_eq!(split_avcc(&[0, 0, 0, 0]), None);
        assert_eq!(split_avcc(&[0, 0, 1, 0x65]), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AvcConfig::parse(&data);
            let _ = split_avcc(&data);
        }

        #[test]
        fn mutated_records_never_panic(
            index in 0usize..40,
            value in any::<u8>(),
            cut in 0usize..40,
        ) {
            let mut data = valid();
            if let Some(b) = data.get_mut(index) {
                *b = value;
            }
            data.truncate(data.len().saturating_sub(cut));
            let _ = AvcConfig::parse(&data);
        }

        #[test]
        fn built_records_round_trip(
            sps_tail in proptest::collection::vec(any::<u8>(), 2..64),
            pps_tail in proptest::collection::vec(any::<u8>(), 0..64),
            profile in any::<u8>(),
        ) {
            let mut sps = vec![0x67, profile];
            sps.extend_from_slice(&sps_tail);
            let mut pps = vec![0x68];
            pps.extend_from_slice(&pps_tail);
            let data = record(1, profile, 0xff, &[&sps], &[&pps]);
            let cfg = AvcConfig::parse(&data).expect("built record parses");
            prop_assert_eq!(cfg.sps, vec![sps.as_slice()]);
            prop_assert_eq!(cfg.pps, vec![pps.as_slice()]);
        }
    }
}
