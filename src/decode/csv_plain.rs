//! The CSV hot path for rows without a `"`: no field can be quoted and no record can span
//! lines, so the chunk is cut by bit masks per 64-byte block (newlines, delimiters) and every
//! field is borrowed where it lies. The same masks look for a quote: at the first block
//! holding one, the rest of the chunk from the record under way goes to the general loop.
//! (Before, one `memchr` over the whole chunk decided the path: a second read of 4 MiB that
//! no longer fits in L2, 3% of the reference job.)
//!
//! The general loop (`csv::decode_general`) looked for the newline, then twice for a quote,
//! then for the delimiters of each line: four short `memchr` calls for a 50-byte row. This
//! finds the same records with one pass; the unit tests hold the two to the same events,
//! rejects, lines and offsets.
//!
//! Two kinds of record ride the block loop (`Cut`): `PlainRecord` for the reference job's
//! shape (a timestamp, a device id and a code alone: it only notes where the two delimiters
//! lie) and `Record` for any other layout (every field a row feeds, delimiter by delimiter).

use super::csv_layout::{CsvLayout, assign, emit_row};
use super::{Field, RawFields, Sink, plain_alert};

/// Bit `k` set where byte `k` of the block is `\n` (first) or the delimiter (second); and
/// whether the block holds a `"` (third).
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_masks(b: &[u8; 64], delim: u8) -> (u64, u64, bool) {
    use std::arch::x86_64::*;
    let (mut nl, mut de) = (0u64, 0u64);
    // SAFETY: SSE2 is part of every x86_64 target; each load reads 16 of the 64 bytes.
    unsafe {
        let (nl_c, de_c) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(delim as i8));
        let qt_c = _mm_set1_epi8(b'"' as i8);
        let mut qt = _mm_setzero_si128();
        for k in 0..4 {
            let v = _mm_loadu_si128(b.as_ptr().add(16 * k) as *const __m128i);
            nl |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl_c)) as u16 as u64) << (16 * k);
            de |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, de_c)) as u16 as u64) << (16 * k);
            qt = _mm_or_si128(qt, _mm_cmpeq_epi8(v, qt_c));
        }
        (nl, de, _mm_movemask_epi8(qt) != 0)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn block_masks(b: &[u8; 64], delim: u8) -> (u64, u64, bool) {
    let (mut nl, mut de) = (0u64, 0u64);
    for (k, &x) in b.iter().enumerate() {
        nl |= ((x == b'\n') as u64) << k;
        de |= ((x == delim) as u64) << k;
    }
    (nl, de, b.contains(&b'"'))
}

/// The masks of each 64-byte block of `data` (`block_masks`), with the block's start:
/// `(start, newlines, delimiters, holds a quote)`. The last, short block is padded with zeros
/// (neither a newline, a delimiter nor a quote).
pub(crate) fn line_and_field_ends(
    data: &[u8],
    delim: u8,
) -> impl Iterator<Item = (usize, u64, u64, bool)> + '_ {
    (0..data.len()).step_by(64).map(move |base| {
        let (nl, de, quote) = match data.get(base..base + 64) {
            Some(b) => block_masks(b.try_into().expect("64 bytes"), delim),
            None => {
                let mut pad = [0u8; 64];
                pad[..data.len() - base].copy_from_slice(&data[base..]);
                block_masks(&pad, delim)
            }
        };
        (base, nl, de, quote)
    })
}

/// Decodes the rows of a chunk exactly as `csv::decode_general` would, up to the first
/// 64-byte block that holds a `"`. Returns where the record under way there starts (its
/// index in `data` and its line number): the rest, from there, is the general loop's. Every
/// newline before a quote ends a record, so that start is where the general loop would
/// start a record too.
pub(super) fn decode_until_quote(
    layout: &CsvLayout,
    data: &[u8],
    first_line: u64,
    offset: u64,
    sink: &mut impl Sink,
) -> Option<(usize, u64)> {
    let at = Cursor {
        data,
        line_start: 0,
        field_start: 0,
        n: 0,
        line_no: first_line,
        offset,
    };
    match PlainRecord::new(layout, at) {
        Some(rec) => cut_until_quote(layout.delimiter, rec, sink),
        None => cut_until_quote(
            layout.delimiter,
            Record {
                layout,
                at,
                fields: RawFields::default(),
            },
            sink,
        ),
    }
}

/// The block loop of `decode_until_quote`, for either kind of record.
#[inline(always)]
fn cut_until_quote<'a, R: Cut<'a>>(
    delim: u8,
    mut rec: R,
    sink: &mut impl Sink,
) -> Option<(usize, u64)> {
    let data = rec.at().data;
    for (base, nl, de, quote) in line_and_field_ends(data, delim) {
        if quote {
            return Some((rec.at().line_start, rec.at().line_no));
        }
        let mut m = nl | de;
        while m != 0 {
            let bit = m.trailing_zeros();
            m &= m - 1;
            let i = base + bit as usize;
            if nl >> bit & 1 != 0 {
                rec.finish(i, sink);
            } else {
                rec.field_end(i);
            }
        }
    }
    if rec.at().line_start < data.len() {
        rec.finish(data.len(), sink);
    }
    None
}

/// Where the cut stands in a chunk: the record under way, its line and its current field.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    data: &'a [u8],
    line_start: usize,
    field_start: usize,
    /// Fields ended by a delimiter so far.
    n: usize,
    line_no: u64,
    offset: u64,
}

impl<'a> Cursor<'a> {
    /// The line ending at `nl` (its `\n`, or the end of the chunk) without its `\r`, and its
    /// number and offset.
    #[inline]
    fn line(&self, nl: usize) -> (u64, u64, &'a [u8]) {
        let mut end = nl;
        if end > self.line_start && self.data[end - 1] == b'\r' {
            end -= 1;
        }
        let off = self.offset + self.line_start as u64;
        (self.line_no, off, &self.data[self.line_start..end])
    }

    /// Moves past the line ending at `nl`.
    #[inline]
    fn next_line(&mut self, nl: usize) {
        self.line_no += 1;
        self.line_start = nl + 1;
        self.field_start = nl + 1;
        self.n = 0;
    }
}

/// A record kind the block loop cuts: told of each delimiter and each line's end.
trait Cut<'a> {
    fn at(&self) -> &Cursor<'a>;
    /// A delimiter at `i` ends a field.
    fn field_end(&mut self, i: usize);
    /// Ends the record at `nl` (its `\n`, or the end of the chunk) and starts the next.
    fn finish(&mut self, nl: usize, sink: &mut impl Sink);
}

/// Decodes one line of a quote-free block as the general cut does: every field assigned,
/// then `emit_row` (blank lines skipped).
fn emit_line(layout: &CsvLayout, (line_no, off, line): (u64, u64, &[u8]), sink: &mut impl Sink) {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return;
    }
    let mut fields = RawFields::default();
    let mut n = 0;
    for v in line.split(|&b| b == layout.delimiter) {
        assign(layout, &mut fields, n, v);
        n += 1;
    }
    emit_row(&fields, n, layout.header.len(), (line_no, off, line), sink);
}

/// A row of a plain layout (`CsvLayout::plain`: a timestamp, a device id and a code, nothing
/// else), cut by remembering where its two delimiters lie. The general `Record` fills a
/// 144-byte table of every field a row might have, delimiter by delimiter, and clears it for
/// the next; a plain row needs three slices. A row that is not three fields, or that
/// `plain_alert` leaves to the general path, is cut again by `emit_line`.
struct PlainRecord<'l, 'a> {
    layout: &'l CsvLayout,
    at: Cursor<'a>,
    /// The first two delimiters of the row.
    cut: [usize; 2],
    /// The columns holding the timestamp, the device id and the code.
    ts: usize,
    id: usize,
    code: usize,
}

impl<'l, 'a> PlainRecord<'l, 'a> {
    fn new(layout: &'l CsvLayout, at: Cursor<'a>) -> Option<Self> {
        let column = |f: Field| layout.columns[f as usize].filter(|&c| c < 3);
        if !layout.plain {
            return None;
        }
        Some(PlainRecord {
            layout,
            at,
            cut: [0; 2],
            ts: column(Field::Timestamp)?,
            id: column(Field::Device)?,
            code: column(Field::Code)?,
        })
    }
}

impl<'a> Cut<'a> for PlainRecord<'_, 'a> {
    fn at(&self) -> &Cursor<'a> {
        &self.at
    }

    #[inline(always)]
    fn field_end(&mut self, i: usize) {
        if let Some(c) = self.cut.get_mut(self.at.n) {
            *c = i;
        }
        self.at.n += 1;
    }

    #[inline]
    fn finish(&mut self, nl: usize, sink: &mut impl Sink) {
        let line = self.at.line(nl);
        let event = if self.at.n == 2 {
            let (start, [a, b]) = (self.at.line_start, self.cut);
            let end = start + line.2.len();
            let data = self.at.data;
            // `a < b <= end`: a delimiter is never `\r`, so neither lies in the stripped tail.
            let fields = [&data[start..a], &data[a + 1..b], &data[b + 1..end]];
            plain_alert(fields[self.ts], fields[self.id], fields[self.code])
        } else {
            None
        };
        match event {
            Some(ev) => sink.event(&ev),
            None => emit_line(self.layout, line, sink),
        }
        self.at.next_line(nl);
    }
}

/// The record being cut, in any layout: every field it feeds so far.
struct Record<'l, 'a> {
    layout: &'l CsvLayout,
    at: Cursor<'a>,
    fields: RawFields<'a>,
}

impl<'a> Cut<'a> for Record<'_, 'a> {
    fn at(&self) -> &Cursor<'a> {
        &self.at
    }

    #[inline(always)]
    fn field_end(&mut self, i: usize) {
        let at = &mut self.at;
        assign(
            self.layout,
            &mut self.fields,
            at.n,
            &at.data[at.field_start..i],
        );
        at.n += 1;
        at.field_start = i + 1;
    }

    #[inline]
    fn finish(&mut self, nl: usize, sink: &mut impl Sink) {
        let line = self.at.line(nl);
        let n = self.at.n + 1;
        // A `\r` before the newline is not part of the last field (a delimiter is never `\r`,
        // so the last field starts at or before the line's end).
        let end = self.at.line_start + line.2.len();
        let last = &self.at.data[self.at.field_start..end];
        if !line.2.iter().all(|b| b.is_ascii_whitespace()) {
            assign(self.layout, &mut self.fields, n - 1, last);
            emit_row(&self.fields, n, self.layout.header.len(), line, sink);
        }
        // Cleared in place: `mem::take` of the 144-byte fields was a `memcpy` call per row
        // (3% of the reference job).
        self.fields = RawFields::default();
        self.at.next_line(nl);
    }
}

#[cfg(test)]
mod tests {
    use super::super::ColumnMap;
    use super::super::csv::{CsvScratch, decode, decode_general};
    use super::*;
    use crate::model::Event;
    use proptest::prelude::*;

    /// Everything a sink is told, offsets and raw bytes included.
    #[derive(Default, Debug, PartialEq)]
    struct Full {
        events: Vec<Event>,
        rejects: Vec<(u64, u64, String, Vec<u8>)>,
    }

    impl Sink for Full {
        fn event(&mut self, ev: &Event) {
            self.events.push(*ev);
        }
        fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]) {
            self.rejects.push((line, offset, reason, raw.to_vec()));
        }
    }

    /// What the general loop and `decode` (this path, handing over at a quote) make of a
    /// chunk.
    fn both(header: &str, body: &[u8]) -> (Full, Full) {
        let layout = CsvLayout::from_header(header.as_bytes(), &ColumnMap::default()).unwrap();
        let (mut a, mut b) = (Full::default(), Full::default());
        decode_general(&layout, body, 7, 100, &mut CsvScratch::default(), &mut a);
        decode(&layout, body, 7, 100, &mut CsvScratch::default(), &mut b);
        (a, b)
    }

    #[test]
    fn same_records_as_the_general_loop() {
        let body = b"2024-01-01T00:00:00Z,BC-33-AC-8C-01-73-36-E9,8F0A\r\n\
            \n   \r\n2024-01-02T00:00:00Z,00-0D-6F-49-1A-43-E2-D0,81B8,extra\n\
            2024-01-03T00:00:00Z,00-0D-6F-49-1A-43-E2-D0,ZZZZ\n\
            2024-01-03T00:00:00Z,00-0D-6F-49-1A-43-E2-D0,\r\n\
            ,,\n2024-01-04T01:02:03Z,00DB1234567890A0, 8F35 ";
        let (a, b) = both("timestamp,device_id,alert_code\n", body);
        assert_eq!(a.events.len(), 2);
        assert_eq!(a.rejects.len(), 4, "{:?}", a.rejects);
        assert_eq!(a, b);
    }

    #[test]
    fn plain_rows_are_a_time_an_id_and_a_code_alone() {
        let plain = |header: &str, map: &str| {
            let map: ColumnMap = map.parse().unwrap();
            CsvLayout::from_header(header.as_bytes(), &map)
                .unwrap()
                .plain
        };
        assert!(plain("timestamp,device_id,alert_code", ""));
        assert!(plain("alert_code;timestamp;device_id", ""));
        assert!(!plain("timestamp,device_id,alert_code,region", ""));
        assert!(!plain("timestamp,device_id,alert_code,message_id", ""));
        assert!(!plain("timestamp,device_id,payload", ""));
        // A column read as two fields is not plain.
        assert!(!plain("timestamp,device_id,x", "code=device_id"));
    }

    #[test]
    fn records_across_block_edges() {
        // Rows of every length around 64 bytes, so newlines and delimiters fall on every
        // position of a block, and a last row without a newline.
        let mut body = Vec::new();
        for pad in 0..70 {
            body.extend_from_slice(b"2024-01-01T00:00:00Z;00-DB-12-34-56-78-90-A0;81B8;");
            body.extend(std::iter::repeat_n(b'x', pad));
            body.push(b'\n');
        }
        body.extend_from_slice(b"2024-01-01T00:00:00Z;00-DB-12-34-56-78-90-A0;81B8;end");
        let (a, b) = both("timestamp;device_id;alert_code;note\n", &body);
        assert_eq!(a.events.len(), 71);
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn random_chunks_decode_alike(
            rows in proptest::collection::vec(
                (0usize..4, proptest::collection::vec(0usize..15, 0..6)), 0..40),
            quotes in any::<bool>(),
            tail in any::<bool>(),
            order in 0usize..6,
            semicolons in any::<bool>(),
        ) {
            // Rows built from good fields, damaged fields and separators in random order.
            // Quotes too: the fast path hands over to the general loop at the first block
            // holding one, in the middle of a record or of a quoted field spanning lines.
            const PIECES: [&[u8]; 15] = [
                b"2024-01-01T00:00:00Z", b"00-DB-12-34-56-78-90-A0", b"81B8", b",", b",",
                b"\r", b" ", b"8F35", b"2024-13-01T00:00:00Z", b"x", b"\t", b"00db1234567890a1",
                b"\"", b"\"8F35\"", b"\"a,\nb\"",
            ];
            // The three columns in any order, with either delimiter: a plain layout whatever
            // the order, so its rows take `PlainRecord`.
            const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
            let d = if semicolons { b';' } else { b',' };
            let swap = |p: &[u8]| -> Vec<u8> {
                p.iter().map(|&b| if b == b',' { d } else { b }).collect()
            };
            let row = |fields: [&[u8]; 3]| -> Vec<u8> {
                let o = ORDERS[order];
                [fields[o[0]], fields[o[1]], fields[o[2]]].join(&d)
            };
            let good = row([b"2024-02-01T10:00:00Z", b"00-DB-12-34-56-78-90-A0", b"8F35"]);
            let mut body = Vec::new();
            for (kind, extra) in &rows {
                match kind {
                    0 => body.extend_from_slice(&good),
                    1 => body.extend(row([b"2024-02-01T10:00:00Z", b"00db1234567890a1", b"81B8"])),
                    _ => {}
                }
                for &p in extra {
                    body.extend(swap(PIECES[if quotes { p } else { p % 12 }]));
                }
                body.push(b'\n');
            }
            if tail {
                body.extend_from_slice(&good);
            }
            let header = row([b"timestamp", b"device_id", b"alert_code"]);
            let header = String::from_utf8(header).unwrap() + "\n";
            let (a, b) = both(&header, &body);
            prop_assert_eq!(a, b);
        }
    }
}
