//! EBML variable-length integers: element ids and element sizes.
//!
//! Why: every element starts with an id (1-4 bytes, marker kept) and a size (1-8 bytes, marker
//! removed, all data bits set = unknown size). Producers use fixed widths so they can patch sizes
//! in place (kvssink writes 8-byte SimpleBlock sizes and a 1-byte `0xFF` unknown Segment size),
//! so both readers and writers must handle every width. Readers here work on whatever bytes have
//! arrived and report "need more" instead of failing on a short slice.

/// Result of reading a variable-length integer from a possibly incomplete slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vint<T> {
    /// A complete integer and the number of bytes it took.
    Complete(T, usize),
    /// The slice ends before the integer does.
    Incomplete,
    /// Not a valid integer (first byte zero, or too long for its kind).
    Invalid,
}

/// Length in bytes of a VINT whose first byte is `first` (1..=8), or `None` for `0x00`.
pub fn vint_len(first: u8) -> Option<usize> {
    if first == 0 {
        None
    } else {
        Some(first.leading_zeros() as usize + 1)
    }
}

/// Reads an element id (1-4 bytes, marker bits kept, as ids are written in the specification).
pub fn read_id(buf: &[u8]) -> Vint<u32> {
    let Some(&first) = buf.first() else {
        return Vint::Incomplete;
    };
    let len = match vint_len(first) {
        Some(len) if len <= 4 => len,
        _ => return Vint::Invalid,
    };
    let Some(bytes) = buf.get(..len) else {
        return Vint::Incomplete;
    };
    let id = bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    Vint::Complete(id, len)
}

/// Reads an element size (1-8 bytes). `None` inside `Complete` means "unknown size" (all data
/// bits set, at any width).
pub fn read_size(buf: &[u8]) -> Vint<Option<u64>> {
    match read_vint_value(buf) {
        Vint::Complete((value, unknown), len) => {
            Vint::Complete(if unknown { None } else { Some(value) }, len)
        }
        Vint::Incomplete => Vint::Incomplete,
        Vint::Invalid => Vint::Invalid,
    }
}

/// Reads a VINT value with its marker removed; the flag is true when all data bits are set
/// (which for sizes means "unknown"). Used for sizes and for block track numbers.
pub fn read_vint_value(buf: &[u8]) -> Vint<(u64, bool)> {
    let Some(&first) = buf.first() else {
        return Vint::Incomplete;
    };
    let Some(len) = vint_len(first) else {
        return Vint::Invalid;
    };
    let Some(bytes) = buf.get(..len) else {
        return Vint::Incomplete;
    };
    // len is 1..=8, so the shifts below stay in range.
    let mut value = u64::from(first) & (0xFFu64 >> len);
    for &b in bytes.iter().skip(1) {
        value = (value << 8) | u64::from(b);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Vint::Complete((value, value == all_ones), len)
}

/// Largest size that can be written as a known size (the 8-byte all-ones pattern means unknown).
pub const MAX_KNOWN_SIZE: u64 = (1u64 << 56) - 2;

/// Smallest width (1..=8) that can hold `size` as a known size.
pub fn min_size_width(size: u64) -> usize {
    (1..=8usize)
        .find(|&w| size < (1u64 << (7 * w)) - 1)
        .unwrap_or(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_every_width() {
        assert_eq!(read_id(&[0xA3]), Vint::Complete(0xA3, 1));
        assert_eq!(read_id(&[0x42, 0x86, 0x81]), Vint::Complete(0x4286, 2));
        assert_eq!(read_id(&[0x2A, 0xD7, 0xB1]), Vint::Complete(0x2AD7B1, 3));
        assert_eq!(
            read_id(&[0x1A, 0x45, 0xDF, 0xA3]),
            Vint::Complete(0x1A45DFA3, 4)
        );
        assert_eq!(read_id(&[0x1A, 0x45]), Vint::Incomplete);
        assert_eq!(read_id(&[]), Vint::Incomplete);
        assert_eq!(read_id(&[0x08, 0, 0, 0, 0]), Vint::Invalid);
        assert_eq!(read_id(&[0x00]), Vint::Invalid);
    }

    #[test]
    fn sizes_of_every_width_and_unknown() {
        assert_eq!(read_size(&[0x81]), Vint::Complete(Some(1), 1));
        assert_eq!(read_size(&[0xFF]), Vint::Complete(None, 1));
        assert_eq!(read_size(&[0x7F, 0xFF]), Vint::Complete(None, 2));
        assert_eq!(read_size(&[0x40, 0x7F]), Vint::Complete(Some(127), 2));
        assert_eq!(
            read_size(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Vint::Complete(None, 8)
        );
        assert_eq!(
            read_size(&[0x01, 0, 0, 0, 0, 0x08, 0x57, 0x17]),
            Vint::Complete(Some(0x085717), 8)
        );
        assert_eq!(read_size(&[0x10, 0, 0]), Vint::Incomplete);
        assert_eq!(read_size(&[0x00, 1, 2, 3, 4, 5, 6, 7, 8]), Vint::Invalid);
    }

    #[test]
    fn min_width() {
        assert_eq!(min_size_width(0), 1);
        assert_eq!(min_size_width(126), 1);
        assert_eq!(min_size_width(127), 2);
        assert_eq!(min_size_width(16382), 2);
        assert_eq!(min_size_width(16383), 3);
        assert_eq!(min_size_width(MAX_KNOWN_SIZE), 8);
    }
}
