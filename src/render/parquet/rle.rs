//! Parquet's RLE/bit-packing hybrid encoding, for dictionary keys and definition levels
//! (`dictionary`, `pages`).

/// Values a bit-packed run holds at most (63 groups of 8: the run's header stays one byte,
/// as parquet-rs and parquet-mr write it).
const MAX_PACKED: usize = 63 * 8;

/// Bits needed for values up to `max`.
pub fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
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

/// An RLE run: `count` times `value`.
pub fn rle_run(out: &mut Vec<u8>, value: u32, count: usize, width: u8) {
    varint(out, (count as u64) << 1);
    out.extend_from_slice(&value.to_le_bytes()[..(width as usize).div_ceil(8)]);
}

/// Bit-packed runs of at most `MAX_PACKED` values, least significant bit first.
fn bit_packed(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let w = width as usize;
    for run in values.chunks(MAX_PACKED) {
        let groups = run.len().div_ceil(8);
        varint(out, ((groups as u64) << 1) | 1);
        out.reserve(groups * w);
        let mut group = [0u32; 8];
        for g in run.chunks(8) {
            group[..g.len()].copy_from_slice(g);
            group[g.len()..].fill(0);
            if w <= 8 {
                // A group of 8 values of up to 8 bits is at most 64 bits: one word.
                let mut acc = 0u64;
                for (k, &x) in group.iter().enumerate() {
                    acc |= (x as u64) << (k * w);
                }
                out.extend_from_slice(&acc.to_le_bytes()[..w]);
            } else {
                let mut acc = 0u128;
                for (k, &x) in group.iter().enumerate() {
                    acc |= (x as u128) << (k * w);
                }
                out.extend_from_slice(&acc.to_le_bytes()[..w]);
            }
        }
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

    #[test]
    fn bit_widths() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
    }
}
