//! Snappy for pages of device ids, without the general match search.
//!
//! A PLAIN page of device ids is a run of 27-byte records: the length 23 (four bytes) and the
//! id's text, `AA-BB-CC-DD-EE-FF-GG-HH`. The general Snappy compressor hashes every position
//! to find repeats; on these pages that search was 17% of an export's CPU, and what it finds
//! is always the same few things: the length and the maker's prefix (`AA-BB-CC-`) seen in an
//! earlier id, often together with the last byte pair before it, and `-XX-` (a byte pair
//! between hyphens) seen anywhere before. This compressor looks only there, each in a small
//! table of last positions, so a record costs a few table reads and short compares.
//!
//! The output is ordinary Snappy (any reader decompresses it) and is correct for any input:
//! a copy is written only after its bytes compared equal, and whatever does not match the
//! record layout is written as literal bytes. On id pages it compresses about as well as the
//! general compressor (14.4 bytes a record against its 14.3 on real ids from the reference job),
//! three times as fast; on anything else it compresses worse, which is why only pages of ids
//! use it.

use crate::model::device_id::HEX_PAIRS;

/// Bytes a record takes: the PLAIN length and the id's 23 characters.
const RECORD: usize = 27;
/// The record's length prefix: 23, little-endian.
const LENGTH: [u8; 4] = [23, 0, 0, 0];
/// The length and the maker's prefix `AA-BB-CC-`.
const HEAD: usize = 13;
/// Snappy copies reach back at most this far with a two-byte offset.
const MAX_OFFSET: usize = 65_535;

/// Compresses `raw` as a Snappy raw block into `out` (grown as needed, kept for the next
/// page) and returns the block. `values_start` is where the records begin (the bytes before
/// it, the page's definition levels, are written as a literal).
pub fn compress<'o>(raw: &[u8], values_start: usize, out: &'o mut Vec<u8>) -> &'o [u8] {
    // Snappy's bound: every byte a literal, a tag per 60 bytes at worst, plus the preamble.
    let bound = 32 + raw.len() + raw.len() / 6;
    if out.len() < bound {
        out.resize(bound, 0);
    }
    let mut e = Encoder {
        raw,
        out: &mut out[..],
        o: 0,
        literal_from: 0,
        heads: [u32::MAX; 1024],
        joins: [u32::MAX; 4096],
        pairs: [u32::MAX; 1024],
    };
    e.varint(raw.len() as u64);
    let mut p = values_start.min(raw.len());
    while p + RECORD <= raw.len() && raw[p..p + 4] == LENGTH {
        e.record(p);
        p += RECORD;
    }
    e.literal_to(raw.len());
    let n = e.o;
    &out[..n]
}

/// Compresses a PLAIN page of device ids given as numbers, `prefix` (the page's definition
/// levels) and then each id's record (the length 23 and the canonical text), into `out`, and
/// returns the block and the page's uncompressed size. The block is the one `compress` makes
/// of those bytes, byte for byte, but the page is never written out: each record's text is
/// made in registers and the matches are found by the numbers. A repeat is known by its key
/// (the maker's prefix, the byte pair, the last pair before the record), so no copy is
/// compared, and the bytes are not written to be read again. On 2,000,000 ids of four makers,
/// writing the page and compressing it took 20.5 ns an id; this takes 13.8 (about 260
/// instructions an id under `callgrind`).
pub fn compress_ids<'o>(
    prefix: &[u8],
    ids: impl ExactSizeIterator<Item = u64>,
    out: &'o mut Vec<u8>,
) -> (&'o [u8], usize) {
    let raw_len = prefix.len() + RECORD * ids.len();
    // `compress`'s bound, and room for a record's writes past the last (`IdEncoder::record`).
    let bound = 32 + raw_len + raw_len / 6 + ROOM;
    if out.len() < bound {
        out.resize(bound, 0);
    }
    let mut e = IdEncoder {
        out: &mut out[..],
        o: 0,
        literal_from: 0,
        literal_at: 0,
        at: 0,
        heads: [Slot::EMPTY; 1024],
        joins: [Slot::EMPTY; 4096],
        pairs: [u32::MAX; 1024],
    };
    e.varint(raw_len as u64);
    if !prefix.is_empty() {
        e.open();
        e.out[e.o..e.o + prefix.len()].copy_from_slice(prefix);
        e.o += prefix.len();
        e.at += prefix.len();
    }
    // The two bytes before a record (`compress` joins the first record to the prefix's last
    // pair, so this does too).
    let mut tail = (prefix.len() >= 2)
        .then(|| Tail::of(prefix[prefix.len() - 2..].try_into().expect("2 bytes")));
    for id in ids {
        e.record(id, tail);
        let low = id as u8;
        tail = Some(Tail {
            text: HEX_PAIRS[low as usize],
            byte: Some(low),
        });
    }
    e.literal_to(raw_len);
    let n = e.o;
    (&out[..n], raw_len)
}

/// The two bytes before a record: their text, and the byte they spell when they are two hex
/// digits as ids are written.
#[derive(Clone, Copy)]
struct Tail {
    text: u16,
    byte: Option<u8>,
}

impl Tail {
    fn of(text: [u8; 2]) -> Tail {
        let t = u16::from_le_bytes(text);
        let byte = hex_value(text[0])
            .zip(hex_value(text[1]))
            .map(|(hi, lo)| hi << 4 | lo);
        Tail { text: t, byte }
    }
}

/// A hex digit's value (the digits ids are written with).
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes `v` as a varint (the block's length) at `out[o..]`; returns where it ends.
fn varint(out: &mut [u8], mut o: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        out[o] = (v as u8) | 0x80;
        o += 1;
        v >>= 7;
    }
    out[o] = v as u8;
    o + 1
}

/// A copy element of `len` (4-64) bytes from `offset` (1-65,535) back, and its length: two
/// bytes when it is short and near, three otherwise. Which one is a coin toss on id pages (a
/// `-XX-` is near seven times in ten), so both are computed and three bytes stored either
/// way, without a branch to mispredict; the writer moves on by the length.
#[inline(always)]
fn copy_element(offset: usize, len: usize) -> ([u8; 3], usize) {
    let near = (4..12).contains(&len) && offset < 2048;
    let short = [
        1 | (((len.wrapping_sub(4)) as u8) << 2) | (((offset >> 8) as u8) << 5),
        offset as u8,
        0,
    ];
    let bytes = if near { short } else { long_copy(offset, len) };
    (bytes, 3 - near as usize)
}

/// A copy element with a two-byte offset: `len` (1-64) bytes from `offset` (1-65,535) back.
#[inline(always)]
fn long_copy(offset: usize, len: usize) -> [u8; 3] {
    let [lo, hi] = (offset as u16).to_le_bytes();
    [2 | (((len - 1) as u8) << 2), lo, hi]
}

/// Whether a copy from `from` (`u32::MAX`: none) can be written at `at`: `Encoder::try_copy`'s
/// conditions but the comparison (the keys have made it) and the pending literal's start
/// (a record's copies always start after it).
#[inline(always)]
fn in_reach(from: u32, at: usize) -> bool {
    at.wrapping_sub(from as usize) <= MAX_OFFSET
}

/// `pair_key` of a byte's two hex digits.
const PAIR_KEYS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let [hi, lo] = HEX_PAIRS[b].to_le_bytes();
        t[b] = ((hi & 0x1f) as u16) << 5 | (lo & 0x1f) as u16;
        b += 1;
    }
    t
};

/// A `heads` or `joins` entry of `IdEncoder`: where the record (or the pair before it) was,
/// and its key: the maker (the id's top three bytes), with the byte before for `joins`.
/// Equal keys are equal bytes, so a match needs no comparison.
#[derive(Clone, Copy)]
struct Slot {
    at: u32,
    key: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        at: u32::MAX,
        key: 0,
    };
}

/// `Encoder` for pages it does not hold: the same choices, from the ids' numbers. The
/// tables' slots are chosen from the text as `Encoder` chooses them (so the blocks are the
/// same) but the text is made in registers, never written and read back. The pending
/// literal is written into `out` as it comes, after a byte kept for its tag.
struct IdEncoder<'a> {
    out: &'a mut [u8],
    o: usize,
    /// Where the pending literal starts in the page (`Encoder::literal_from`).
    literal_from: usize,
    /// Where its bytes start in `out` (the tag's byte is just before).
    literal_at: usize,
    /// The page's bytes so far (the next record starts here).
    at: usize,
    heads: [Slot; 1024],
    joins: [Slot; 4096],
    pairs: [u32; 1024],
}

/// Bytes of `out` free when a record starts: more than a record writes (27 bytes of literal,
/// or three copies and three short literals). `record` checks it once, so its writes need no
/// check each (they were a third of its instructions).
const ROOM: usize = 64;

impl IdEncoder<'_> {
    /// `Encoder::record` for the record of `id` at `self.at`, after the bytes `tail`: the
    /// tables first (read and updated in `Encoder`'s order), then the bytes.
    #[inline(always)]
    fn record(&mut self, id: u64, tail: Option<Tail>) {
        assert!(self.o + ROOM <= self.out.len(), "room for a record");
        let p = self.at;
        let b = id.to_be_bytes();
        let hex = |i: usize| HEX_PAIRS[b[i] as usize].to_le_bytes();
        // `AA-BB-CC`, the text `Encoder` hashes, and the number it spells.
        let maker_text = u64::from_le_bytes([
            hex(0)[0],
            hex(0)[1],
            b'-',
            hex(1)[0],
            hex(1)[1],
            b'-',
            hex(2)[0],
            hex(2)[1],
        ]);
        let maker = (id >> 40) as u32;
        // The join: the pair before the record and its head, from an earlier one.
        let mut join = None;
        if let Some(tail) = tail
            && self.literal_from + 2 <= p
        {
            let join_key = ((maker_text ^ tail.text as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 52) as usize;
            let q = self.joins[join_key];
            // Bytes that are no id's digits match nothing later: the slot is left empty.
            let key = tail.byte.map(|t| (t as u32) << 24 | maker);
            self.joins[join_key] = Slot {
                at: if key.is_some() {
                    (p - 2) as u32
                } else {
                    u32::MAX
                },
                key: key.unwrap_or(0),
            };
            join = (key == Some(q.key) && in_reach(q.at, p - 2)).then_some(q.at as usize);
        }
        let head_key = (maker_text.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        let q = self.heads[head_key];
        self.heads[head_key] = Slot {
            at: p as u32,
            key: maker,
        };
        let head = (q.key == maker && in_reach(q.at, p)).then_some(q.at as usize);
        let pair = |i: usize| PAIR_KEYS[b[i] as usize] as usize;
        self.pairs[pair(1)] = (p + 6) as u32;
        self.pairs[pair(2)] = (p + 9) as u32;
        self.pairs[pair(3)] = (p + 12) as u32;
        let e = self.pairs[pair(4)];
        self.pairs[pair(4)] = (p + 15) as u32;
        self.pairs[pair(5)] = (p + 18) as u32;
        let g = self.pairs[pair(6)];
        self.pairs[pair(6)] = (p + 21) as u32;
        let (e, g) = (
            in_reach(e, p + 15).then_some(e as usize),
            in_reach(g, p + 21).then_some(g as usize),
        );

        // The usual record: the last record's pair alone pending, and every copy found.
        if self.literal_from + 2 == p
            && let (Some(e), Some(g)) = (e, g)
            && (join.is_some() || head.is_some())
        {
            // The pending pair's tag and bytes lie just before `o`.
            match join {
                Some(q) => {
                    self.o -= 3;
                    self.put(long_copy(p - 2 - q, HEAD + 2));
                }
                None => {
                    self.out[self.o - 3] = 1 << 2;
                    self.put(long_copy(p - head.unwrap_or(0), HEAD));
                }
            }
            self.put([1 << 2, hex(3)[0], hex(3)[1]]);
            self.copy4(p + 15 - e);
            self.put([1 << 2, hex(5)[0], hex(5)[1]]);
            self.copy4(p + 21 - g);
            self.put([1 << 2, hex(7)[0], hex(7)[1]]);
            self.literal_at = self.o - 2;
            self.literal_from = p + RECORD - 2;
            self.at = p + RECORD;
            return;
        }

        match (join, head) {
            (Some(q), _) => self.copy(q, p - 2, HEAD + 2),
            (None, Some(q)) => self.copy(q, p, HEAD),
            (None, None) => {
                let mut head = [b'-'; HEAD];
                head[..4].copy_from_slice(&LENGTH);
                head[4..12].copy_from_slice(&maker_text.to_le_bytes());
                self.pending(head);
            }
        }
        self.pending(hex(3));
        self.pair(e, p + 15, hex(4));
        self.pending(hex(5));
        self.pair(g, p + 21, hex(6));
        self.pending(hex(7));
    }

    /// `-XX-` at `at` (`digits` the two between): copied from `from` if there is one in
    /// reach, else pending.
    #[inline(always)]
    fn pair(&mut self, from: Option<usize>, at: usize, [a, b]: [u8; 2]) {
        match from {
            Some(q) => self.copy(q, at, 4),
            None => self.pending([b'-', a, b, b'-']),
        }
    }

    /// A copy of 4 bytes from `offset` back, after a literal already closed.
    #[inline(always)]
    fn copy4(&mut self, offset: usize) {
        self.element(offset, 4);
    }

    /// Writes a copy element (`copy_element`).
    #[inline(always)]
    fn element(&mut self, offset: usize, len: usize) {
        let (bytes, n) = copy_element(offset, len);
        self.put(bytes);
        self.o -= 3 - n;
    }

    /// Writes the pending literal up to `at` and a copy of `len` bytes from `from`.
    #[inline(always)]
    fn copy(&mut self, from: usize, at: usize, len: usize) {
        self.literal_to(at);
        self.element(at - from, len);
        self.literal_from = at + len;
        self.at = self.at.max(at + len);
    }

    /// Appends page bytes to the pending literal (opening one when none is pending).
    #[inline(always)]
    fn pending<const N: usize>(&mut self, bytes: [u8; N]) {
        if self.literal_from == self.at {
            self.open();
        }
        self.put(bytes);
        self.at += N;
    }

    /// Opens a literal: a byte kept for its tag.
    #[inline(always)]
    fn open(&mut self) {
        self.literal_at = self.o + 1;
        self.o += 1;
    }

    /// Writes `bytes` at `o`, without a bounds check of its own.
    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        debug_assert!(self.o + N <= self.out.len());
        // SAFETY: `record` checked that `ROOM` bytes were free when it started, and a record
        // writes fewer (`ROOM`'s doc); `literal_to` only moves `o` back.
        unsafe {
            self.out
                .as_mut_ptr()
                .add(self.o)
                .cast::<[u8; N]>()
                .write_unaligned(bytes);
        }
        self.o += N;
    }

    /// Ends the pending literal at page position `end` (bytes after it are dropped: a copy
    /// starts there) and writes its tag: one byte up to 60 bytes, else the bytes move up
    /// for the longer tag.
    #[inline(always)]
    fn literal_to(&mut self, end: usize) {
        if self.at <= self.literal_from {
            return; // none pending
        }
        let len = end - self.literal_from;
        if len == 0 {
            // All of it is copied: the tag's byte and the bytes go.
            self.o = self.literal_at - 1;
            return;
        }
        let n = len - 1;
        if n < 60 {
            self.out[self.literal_at - 1] = (n as u8) << 2;
        } else {
            let extra = (8 - (n as u64).leading_zeros() as usize / 8).max(1);
            let from = self.literal_at;
            self.out.copy_within(from..from + len, from + extra);
            self.out[from - 1] = ((59 + extra) as u8) << 2;
            self.out[from..from + extra].copy_from_slice(&n.to_le_bytes()[..extra]);
            self.literal_at += extra;
        }
        self.o = self.literal_at + len;
        self.literal_from = end;
    }

    fn varint(&mut self, v: u64) {
        self.o = varint(self.out, self.o, v);
    }
}

struct Encoder<'a> {
    raw: &'a [u8],
    out: &'a mut [u8],
    /// Bytes written to `out`.
    o: usize,
    /// The first byte of `raw` not yet written (a literal pending from here).
    literal_from: usize,
    /// Last position of a record with this head (length and maker's prefix), by hash.
    heads: [u32; 1024],
    /// Last position of a record's last byte pair followed by the next record's head.
    joins: [u32; 4096],
    /// Last position of `-XX-`, by the pair (`pair_key`).
    pairs: [u32; 1024],
}

impl Encoder<'_> {
    /// Writes the record at `p` (its last byte pair stays pending: the next record's head
    /// may copy it along).
    #[inline(always)]
    fn record(&mut self, p: usize) {
        let r: &[u8; RECORD] = self.raw[p..p + RECORD].try_into().expect("a whole record");
        // `AA-BB-CC`, the maker's prefix, as one word.
        let maker = u64::from_le_bytes(r[4..12].try_into().expect("8 bytes"));
        let head_key = (maker.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        // The previous record's last pair, then this head: one copy of 15 bytes.
        let mut done = false;
        if p >= 2 && self.literal_from <= p - 2 {
            let tail = u16::from_le_bytes([self.raw[p - 2], self.raw[p - 1]]) as u64;
            let join_key = ((maker ^ tail).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize;
            let q = self.joins[join_key];
            self.joins[join_key] = (p - 2) as u32;
            done = self.try_copy(q, p - 2, HEAD + 2);
        }
        let q = self.heads[head_key];
        self.heads[head_key] = p as u32;
        if !done {
            self.try_copy(q, p, HEAD);
        }
        // `-XX-` at 6, 9, ..., 21 from the record's start: remembered at every place, copied
        // at 15 and 21 (`DD` and `FF` before them stay literal).
        let key = |at: usize| pair_key(r[at + 1], r[at + 2]);
        let (k6, k9, k12, k15, k18, k21) = (key(6), key(9), key(12), key(15), key(18), key(21));
        self.pairs[k6] = (p + 6) as u32;
        self.pairs[k9] = (p + 9) as u32;
        self.pairs[k12] = (p + 12) as u32;
        self.try_copy(self.pairs[k15], p + 15, 4);
        self.pairs[k15] = (p + 15) as u32;
        self.pairs[k18] = (p + 18) as u32;
        self.try_copy(self.pairs[k21], p + 21, 4);
        self.pairs[k21] = (p + 21) as u32;
    }

    /// Copies `len` (4-16) bytes at `at` from `from` when they are equal, in reach, and
    /// nothing after `at` has been written; returns whether it did.
    #[inline(always)]
    fn try_copy(&mut self, from: u32, at: usize, len: usize) -> bool {
        let from = from as usize;
        if from >= at || at - from > MAX_OFFSET || at < self.literal_from {
            return false;
        }
        if !equal(self.raw, from, at, len) {
            return false;
        }
        self.literal_to(at);
        self.copy(at - from, len);
        self.literal_from = at + len;
        true
    }

    /// Writes the pending literal up to `end`: a tag (with the length inline up to 60, else
    /// in 1-4 more bytes) and the bytes.
    #[inline(always)]
    fn literal_to(&mut self, end: usize) {
        if end <= self.literal_from {
            return;
        }
        let bytes = &self.raw[self.literal_from..end];
        let n = bytes.len() - 1;
        if n < 60 {
            self.out[self.o] = (n as u8) << 2;
            self.o += 1;
        } else {
            let extra = (8 - (n as u64).leading_zeros() as usize / 8).max(1);
            self.out[self.o] = ((59 + extra) as u8) << 2;
            self.out[self.o + 1..self.o + 1 + extra].copy_from_slice(&n.to_le_bytes()[..extra]);
            self.o += 1 + extra;
        }
        if bytes.len() == 2 {
            // The usual literal between copies: a byte pair.
            self.out[self.o..self.o + 2].copy_from_slice(bytes);
        } else {
            self.out[self.o..self.o + bytes.len()].copy_from_slice(bytes);
        }
        self.o += bytes.len();
        self.literal_from = end;
    }

    /// Writes a copy element (`copy_element`).
    #[inline(always)]
    fn copy(&mut self, offset: usize, len: usize) {
        let (bytes, n) = copy_element(offset, len);
        self.out[self.o..self.o + 3].copy_from_slice(&bytes);
        self.o += n;
    }

    fn varint(&mut self, v: u64) {
        self.o = varint(self.out, self.o, v);
    }
}

/// Whether `raw[a..a + len]` equals `raw[b..b + len]`, for `len` of 4 to 16 (two loads each
/// side, overlapping, instead of a call to `memcmp`).
#[inline(always)]
fn equal(raw: &[u8], a: usize, b: usize, len: usize) -> bool {
    if len >= 8 {
        let at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().expect("8 bytes"));
        at(a) == at(b) && at(a + len - 8) == at(b + len - 8)
    } else {
        let at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().expect("4 bytes"));
        at(a) == at(b) && at(a + len - 4) == at(b + len - 4)
    }
}

/// The `pairs` slot of a byte pair: the low five bits of each byte, which tell the hex
/// digits apart (`0`-`9` are 0x10-0x19, `A`-`F` 0x01-0x06). Other bytes share slots, which
/// only costs a copy: every copy is compared first.
#[inline(always)]
fn pair_key(a: u8, b: u8) -> usize {
    ((a & 0x1f) as usize) << 5 | (b & 0x1f) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceId;
    use proptest::prelude::*;

    fn page(prefix: &[u8], ids: &[u64]) -> Vec<u8> {
        let mut raw = prefix.to_vec();
        for &d in ids {
            raw.extend_from_slice(&LENGTH);
            raw.extend_from_slice(&DeviceId(d).to_bytes());
        }
        raw
    }

    fn decompress(c: &[u8]) -> Vec<u8> {
        snap::raw::Decoder::new().decompress_vec(c).unwrap()
    }

    /// Ids as a fleet has them: a few makers' prefixes, random low bytes.
    fn fleet_ids(n: usize, seed: u64) -> Vec<u64> {
        let makers = [
            0x000D_6F00_0000_0000u64,
            0xBC33_AC00_0000_0000,
            0x70B3_D500_0000_0000,
            0x00DB_1200_0000_0000,
        ];
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                makers[(x % 4) as usize] | (x >> 24)
            })
            .collect()
    }

    #[test]
    fn a_page_of_ids_round_trips_and_is_as_small_as_general_snappy() {
        let raw = page(
            &[9, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8],
            &fleet_ids(30_000, 7),
        );
        let c = compress(&raw, 13, &mut Vec::new()).to_vec();
        assert_eq!(decompress(&c), raw);
        let general = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let per_record = c.len() as f64 / 30_000.0;
        assert!(per_record < 15.0, "{per_record} bytes a record");
        assert!(
            c.len() as f64 <= general.len() as f64 * 1.05,
            "{} against {}",
            c.len(),
            general.len()
        );
    }

    #[test]
    fn literal_lengths_of_every_size_decode() {
        for n in [1usize, 59, 60, 61, 255, 256, 257, 65_536, 65_537, 70_000] {
            let raw: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            assert_eq!(decompress(compress(&raw, n, &mut Vec::new())), raw, "{n}");
        }
        assert_eq!(
            decompress(compress(&[], 0, &mut Vec::new())),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn records_that_break_the_layout_end_the_structured_part() {
        let mut raw = page(&[], &fleet_ids(100, 3));
        raw.extend_from_slice(&[5, 0, 0, 0, b'a', b'b', b'c', b'd', b'e']);
        raw.extend(page(&[], &fleet_ids(100, 3)));
        assert_eq!(decompress(compress(&raw, 0, &mut Vec::new())), raw);
    }

    /// The block `compress_ids` makes of `prefix` and `ids`, checked against `compress` of
    /// the page's bytes.
    fn same_as_compress(prefix: &[u8], ids: &[u64]) -> Result<(), TestCaseError> {
        let raw = page(prefix, ids);
        let want = compress(&raw, prefix.len(), &mut Vec::new()).to_vec();
        let mut out = vec![7u8; 5]; // a buffer from an earlier page, of any size
        let (got, raw_len) = compress_ids(prefix, ids.iter().copied(), &mut out);
        prop_assert_eq!(raw_len, raw.len());
        prop_assert_eq!(got, &want[..]);
        Ok(())
    }

    #[test]
    fn ids_given_as_numbers_compress_as_their_page_does() {
        same_as_compress(&[], &[]).unwrap();
        same_as_compress(&[1, 2, 3, 4, 5], &[]).unwrap();
        same_as_compress(&[9, 0, 0, 0, 3, 1, 2, 3], &fleet_ids(30_000, 11)).unwrap();
        // Records without a match for long stretches (literals of every length).
        let lone: Vec<u64> = (0..300u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        same_as_compress(&[], &lone).unwrap();
        same_as_compress(&[0x41; 200], &lone).unwrap();
        // Copies past the two-byte offset's reach (more than 65,535 bytes back).
        let mut far = fleet_ids(3000, 5);
        far.extend(lone.iter().cycle().take(3000));
        far.extend(fleet_ids(3000, 5));
        same_as_compress(&[1, 0], &far).unwrap();
        // A prefix ending in two digits: a later record after the same digits, of the first
        // record's maker, copies the join from the prefix; other endings match nothing.
        let m = 0x70B3_D500_0000_0000u64;
        let joined = [m | 0x1111, m | 0x223A, m | 0x3333, 0, m | 0x5A, m | 0x4444];
        for prefix in [&b"\x01\x023A"[..], b"3a", b"\x00\x00", b"A"] {
            same_as_compress(prefix, &joined).unwrap();
        }
    }

    proptest! {
        /// Any ids after any prefix: the same block as `compress` of their page.
        #[test]
        fn any_ids_compress_as_their_page_does(
            prefix in prop::collection::vec(any::<u8>(), 0..80),
            ids in prop::collection::vec(any::<u64>(), 0..300),
            makers in prop::collection::vec((0usize..300, 0u64..4, any::<u8>()), 0..300),
        ) {
            // Some ids of a few makers, some with the low byte of others (joins and pairs).
            let mut ids = ids;
            for (at, m, low) in makers {
                if let Some(v) = ids.get_mut(at) {
                    *v = ((0x70_B3D5 + m) << 40) | (*v & 0xFF_FFFF_FF00) | low as u64;
                }
            }
            same_as_compress(&prefix, &ids)?;
        }

        /// Any bytes after any prefix round-trip (copies are written only when equal).
        #[test]
        fn any_bytes_round_trip(raw in prop::collection::vec(any::<u8>(), 0..3000), start in 0usize..100) {
            let start = start.min(raw.len());
            prop_assert_eq!(decompress(compress(&raw, start, &mut Vec::new())), raw);
        }

        /// Id pages with damage (a byte changed, ids of few makers or none repeated) round-trip.
        #[test]
        fn id_pages_with_damage_round_trip(
            ids in prop::collection::vec(any::<u64>(), 0..400),
            same in prop::collection::vec(0usize..400, 0..50),
            damage in prop::collection::vec((0usize..20_000, any::<u8>()), 0..5),
        ) {
            let mut ids = ids;
            for s in same {
                if !ids.is_empty() {
                    let v = ids[s % ids.len()];
                    ids.push(v);
                }
            }
            let mut raw = page(&[1, 2, 3], &ids);
            for (at, b) in damage {
                if !raw.is_empty() {
                    let n = raw.len();
                    raw[at % n] = b;
                }
            }
            prop_assert_eq!(decompress(compress(&raw, 3, &mut Vec::new())), raw);
        }
    }
}
