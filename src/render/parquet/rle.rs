//! Parquet's RLE/bit-packing hybrid encoding, for dictionary keys and definition levels
//! (`dictionary`, `pages`).

use arrow_buffer::BooleanBuffer;

/// Values a bit-packed run holds at most (63 groups of 8: the run's header stays one byte,
/// as parquet-rs and parquet-mr write it).
const MAX_PACKED: usize = 63 * 8;

/// Bits needed for values up to `max`.
pub fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

/// Appends `v` as an unsigned LEB128 varint (Parquet's run headers and delta headers).
pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `values` (each below 2^`width`) in Parquet's RLE/bit-packing hybrid encoding:
/// runs of equal values as RLE runs, the rest bit-packed in groups of 8 (the last group
/// padded with zeros; the page's value count says where the values end).
pub fn rle_hybrid(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let n = values.len();
    let mut pending = 0; // first value not yet written (to be bit-packed)
    let mut i = 0;
    // Groups of 8 from `pending` on: a group of equal values starts an RLE run, which goes
    // on as far as the value repeats (runs that do not start on a group are bit-packed).
    while i + 8 <= n {
        let v = values[i];
        if values[i..i + 8].iter().fold(0, |a, &x| a | (x ^ v)) != 0 {
            i += 8;
            continue;
        }
        let mut j = i + 8;
        while j < n && values[j] == v {
            j += 1;
        }
        bit_packed(out, &values[pending..i], width);
        rle_run(out, v, j - i, width);
        pending = j;
        i = j;
    }
    bit_packed(out, &values[pending..], width);
}

/// Appends the values of `bits` (one bit each, 0 or 1: definition levels) in the hybrid
/// encoding, straight from the bitmap: an Arrow validity bitmap is already their bit-packed
/// form (least significant bit first), so bytes of mixed bits are copied as they are, and
/// stretches of two or more bytes of all 0s or all 1s become RLE runs, where a number a row
/// was built and encoded before (with the message ids' column of nulls, the export then took
/// 0.99x the CPU). A bitmap that does not start on a byte goes through `rle_hybrid`.
pub fn bitmap_levels(out: &mut Vec<u8>, bits: &BooleanBuffer) {
    let n = bits.len();
    if !bits.offset().is_multiple_of(8) {
        let levels: Vec<u32> = bits.iter().map(u32::from).collect();
        return rle_hybrid(out, &levels, 1);
    }
    let start = bits.offset() / 8;
    let bytes = &bits.values()[start..start + n.div_ceil(8)];
    let (groups, tail) = (n / 8, n % 8);
    // The last byte's bits past the end are not the bitmap's: zero, in a group of their own.
    let last = (tail > 0).then(|| bytes[groups] & ((1u8 << tail) - 1));
    let mut pending = 0; // first byte not yet written (to be bit-packed)
    let mut i = 0;
    while i < groups {
        let b = bytes[i];
        if b != 0 && b != 0xFF {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < groups && bytes[j] == b {
            j += 1;
        }
        if j - i >= 2 {
            packed_bytes(out, &bytes[pending..i]);
            let mut count = (j - i) * 8;
            pending = j;
            // A run to the end takes in the last bits when they are its value too.
            if j == groups
                && let Some(l) = last
                && l == (b & ((1u8 << tail) - 1))
            {
                count += tail;
                pending = groups + 1;
            }
            rle_run(out, (b & 1) as u32, count, 1);
        }
        i = j;
    }
    let mut rest = bytes[pending.min(groups)..groups].to_vec();
    if pending <= groups {
        rest.extend(last);
    }
    packed_bytes(out, &rest);
}

/// Bytes that are bit-packed groups of 8 one-bit values already, in runs of at most
/// `MAX_PACKED` values (a one-byte header each).
fn packed_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for run in bytes.chunks(MAX_PACKED / 8) {
        varint(out, ((run.len() as u64) << 1) | 1);
        out.extend_from_slice(run);
    }
}

/// An RLE run: `count` times `value`.
pub fn rle_run(out: &mut Vec<u8>, value: u32, count: usize, width: u8) {
    varint(out, (count as u64) << 1);
    out.extend_from_slice(&value.to_le_bytes()[..(width as usize).div_ceil(8)]);
}

/// Bit-packed runs of at most `MAX_PACKED` values, least significant bit first.
///
/// Each group of 8 is packed in a register and stored as a whole word into room made
/// beforehand, the output then moving on by the group's `width` bytes: a copy of a run-time
/// length a group (a call to `memcpy`) was most of this function's time.
fn bit_packed(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let w = width as usize;
    for run in values.chunks(MAX_PACKED) {
        let groups = run.len().div_ceil(8);
        varint(out, ((groups as u64) << 1) | 1);
        let start = out.len();
        // The groups' bytes, and a word's slack for the last store.
        out.resize(start + groups * w + 16, 0);
        let room = &mut out[start..];
        let (whole, rest) = run.as_chunks::<8>();
        let mut o = 0;
        for g in whole {
            pack_group(room, o, g, w);
            o += w;
        }
        if !rest.is_empty() {
            let mut g = [0u32; 8];
            g[..rest.len()].copy_from_slice(rest);
            pack_group(room, o, &g, w);
            o += w;
        }
        out.truncate(start + o);
    }
}

/// Packs 8 values of `w` bits into `room[o..]`: `w` bytes, and zeros past them up to a
/// word (which the next group overwrites or the caller cuts off).
#[inline(always)]
fn pack_group(room: &mut [u8], o: usize, g: &[u32; 8], w: usize) {
    if w <= 8 {
        // 8 values of up to 8 bits: one 64-bit word.
        let mut acc = 0u64;
        for (k, &x) in g.iter().enumerate() {
            acc |= (x as u64) << (k * w);
        }
        room[o..o + 8].copy_from_slice(&acc.to_le_bytes());
    } else {
        let mut acc = 0u128;
        for (k, &x) in g.iter().enumerate() {
            acc |= (x as u128) << (k * w);
        }
        room[o..o + 16].copy_from_slice(&acc.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the hybrid encoding (the reference for the tests).
    fn decode(mut b: &[u8], width: u8, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let varint = |b: &mut &[u8]| {
            let mut v = 0u64;
            let mut s = 0;
            loop {
                let x = b[0];
                *b = &b[1..];
                v |= ((x & 0x7f) as u64) << s;
                s += 7;
                if x < 0x80 {
                    return v;
                }
            }
        };
        while out.len() < n {
            let h = varint(&mut b);
            if h & 1 == 1 {
                let count = (h >> 1) as usize * 8;
                let bytes = count * width as usize / 8;
                let mut acc = 0u64;
                let mut bits = 0;
                let mut it = b[..bytes].iter();
                for _ in 0..count {
                    while bits < width as u32 {
                        acc |= (*it.next().unwrap() as u64) << bits;
                        bits += 8;
                    }
                    out.push((acc & ((1u64 << width) - 1)) as u32);
                    acc >>= width;
                    bits -= width as u32;
                }
                b = &b[bytes..];
            } else {
                let count = (h >> 1) as usize;
                let bytes = (width as usize).div_ceil(8);
                let mut v = [0u8; 4];
                v[..bytes].copy_from_slice(&b[..bytes]);
                b = &b[bytes..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(v), count));
            }
        }
        assert!(b.is_empty(), "trailing bytes");
        out.truncate(n);
        out
    }

    #[test]
    fn hybrid_runs_round_trip() {
        let mut cases: Vec<(Vec<u32>, u8)> = vec![
            (vec![], 1),
            (vec![0; 20], 0),
            (vec![1, 0, 1, 1, 0], 1),
            ((0..1000).map(|i| (i * 7919 % 13) as u32).collect(), 4),
            ((0..3000).map(|i| (i / 37 % 5) as u32).collect(), 3),
            ((0..600).map(|i| (i % 300) as u32).collect(), 9),
            ((0..77).map(|i| (i * 851) as u32).collect(), 16),
        ];
        let mut mixed: Vec<u32> = (0..13).collect();
        mixed.extend([5; 11]);
        mixed.extend([1, 2, 3]);
        mixed.extend([7; 8]);
        cases.push((mixed, 4));
        for (values, width) in cases {
            let mut out = Vec::new();
            rle_hybrid(&mut out, &values, width);
            assert_eq!(decode(&out, width, values.len()), values, "width {width}");
        }
        // A long run is one RLE run: a header and the value.
        let mut out = Vec::new();
        rle_hybrid(&mut out, &[3; 1000], 2);
        assert_eq!(out, [0xd0, 0x0f, 3]);
    }

    proptest::proptest! {
        /// Any values of any width up to 16 bits come back as they went in, runs or not.
        #[test]
        fn hybrid_round_trips_any_values(
            width in 0u8..=16,
            raw in proptest::collection::vec((0u32..u32::MAX, 1usize..40), 0..200),
        ) {
            let mask = if width == 0 { 0 } else { u32::MAX >> (32 - width as u32) };
            // Values repeated a few times each: runs of every length, and bit-packed stretches.
            let values: Vec<u32> = raw
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v & mask, if v % 3 == 0 { n } else { 1 }))
                .collect();
            let mut out = vec![0xAA];
            rle_hybrid(&mut out, &values, width);
            proptest::prop_assert_eq!(out[0], 0xAA, "what was in the buffer is kept");
            proptest::prop_assert_eq!(decode(&out[1..], width, values.len()), values);
        }
    }

    /// Any bitmap, starting on a byte or not, of any length: its levels come back as its
    /// bits, and long stretches of one value are RLE runs.
    #[test]
    fn bitmap_levels_are_the_bits() {
        let check = |bits: &BooleanBuffer| {
            let mut out = vec![0xAA];
            bitmap_levels(&mut out, bits);
            assert_eq!(out[0], 0xAA);
            let want: Vec<u32> = bits.iter().map(u32::from).collect();
            assert_eq!(
                decode(&out[1..], 1, want.len()),
                want,
                "{} bits",
                bits.len()
            );
            out.len() - 1
        };
        // All null, all present: one RLE run each.
        assert_eq!(check(&BooleanBuffer::new_unset(100_000)), 4);
        assert_eq!(check(&BooleanBuffer::new_set(100_003)), 4);
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 504, 505, 1000, 4099] {
            for pattern in 0..5u64 {
                let bits = BooleanBuffer::from_iter((0..n).map(|i: usize| match pattern {
                    0 => i.is_multiple_of(3),
                    1 => i < n / 2,
                    2 => (i / 40).is_multiple_of(2),
                    3 => (i * 2_654_435_761usize) % 7 < 5,
                    _ => i != n / 3,
                }));
                check(&bits);
                // Sliced: on a byte, and off one.
                for at in [1, 8, 13] {
                    if at <= n {
                        check(&bits.slice(at, n - at));
                    }
                }
            }
        }
    }

    #[test]
    fn bit_widths() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
    }
}
