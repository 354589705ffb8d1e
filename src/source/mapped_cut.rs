//! The mapped-file cutter: a memory-mapped file cut into chunks on record boundaries, as
//! `Chunker` cuts streams, each chunk a range of the mapping (nothing is copied).

use super::chunk::{Boundary, Chunk, ChunkData, OVERSIZED_HEAD};
use super::mapped::Mapped;
use std::sync::Arc;

/// Cuts `map[start..]` into chunks on record boundaries, as `Chunker` does for streams, and
/// hands each to `send` (which returns false to stop). `(start, first_line)` is where the
/// records begin (after a header); `(target, max_record)` the chunk size and longest record.
pub fn chunks(
    map: &Arc<Mapped>,
    source: usize,
    boundary: Boundary,
    (start, first_line): (usize, u64),
    (target, max_record): (usize, usize),
    mut send: impl FnMut(Chunk) -> bool,
) {
    let data = map.bytes();
    let len = data.len();
    let (mut pos, mut line) = (start, first_line);
    while pos < len {
        let cut_within = |limit: usize| -> Option<usize> {
            let end = (pos + limit).min(len);
            if end == len {
                Some(len - pos)
            } else {
                // As `Chunker` cuts: never at the window's very end.
                boundary.last_inner_cut(&data[pos..end]).filter(|&c| c > 0)
            }
        };
        // A CSV window without a quote: one pass gives both the cut (its last line end, as
        // for plain lines) and the lines before it; else the cut looks for quotes first.
        let plain = match (boundary, (pos + target).min(len)) {
            (Boundary::CsvRecord, end) if end < len => {
                let (lines, quote) = newlines_and_quote(&data[pos..end]);
                (!quote)
                    .then(|| Boundary::Line.last_inner_cut(&data[pos..end]))
                    .flatten()
                    .filter(|&c| c > 0)
                    .map(|cut| (cut, lines - count_newlines(&data[pos + cut..end])))
            }
            _ => None,
        };
        let chunk = match plain
            .map(|(cut, _)| cut)
            .or_else(|| cut_within(target))
            .or_else(|| cut_within(max_record))
        {
            Some(cut) => {
                let end = pos + cut;
                let c = Chunk {
                    source,
                    data: ChunkData::Mapped(map.clone(), pos, end),
                    first_line: line,
                    offset: pos as u64,
                    oversized: false,
                    cut_short: None,
                    followed: end < len,
                };
                line += match plain {
                    Some((_, lines)) => lines,
                    None => count_newlines(&data[pos..end]),
                };
                pos = end;
                c
            }
            None => {
                // A record longer than the limit: its head for the quarantine, skip the rest.
                let next = boundary
                    .next_start(&data[pos + 1..])
                    .map_or(len, |i| pos + 1 + i);
                let c = Chunk {
                    source,
                    data: ChunkData::Owned(data[pos..pos + OVERSIZED_HEAD].to_vec()),
                    first_line: line,
                    offset: pos as u64,
                    oversized: true,
                    cut_short: None,
                    followed: next < len,
                };
                line += count_newlines(&data[pos..next]);
                pos = next;
                c
            }
        };
        if !send(chunk) {
            return;
        }
    }
}

/// The `\n` bytes in `data`. `memchr_iter(..).count()` stops at every match: 20 million
/// stops in the reference job's 1 GB, on the reader thread that hands out the chunks. This
/// compares 16 bytes at a time and adds the matches up in byte lanes.
pub fn count_newlines(data: &[u8]) -> u64 {
    scan::<false>(data).0
}

/// The `\n` bytes in `data`, and whether it holds a `"`: in one pass, where a `memchr` for
/// the quote and then the count read a CSV window of 4 MiB twice (5% of the reference job's
/// CPU, on the reader thread).
fn newlines_and_quote(data: &[u8]) -> (u64, bool) {
    scan::<true>(data)
}

/// `count_newlines`, also looking for a `"` when `QUOTE`.
#[inline(always)]
fn scan<const QUOTE: bool>(data: &[u8]) -> (u64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut total = 0u64;
        let mut quote = false;
        let mut blocks = data.chunks_exact(16);
        // SAFETY: SSE2 is part of every x86_64 target; each load reads one 16-byte block.
        unsafe {
            let nl = _mm_set1_epi8(b'\n' as i8);
            let qt = _mm_set1_epi8(b'"' as i8);
            let zero = _mm_setzero_si128();
            let mut quotes = zero;
            loop {
                // Each byte lane counts at most 255 matches before it is summed.
                let mut acc = zero;
                let mut n = 0;
                for b in blocks.by_ref().take(255) {
                    let v = _mm_loadu_si128(b.as_ptr() as *const __m128i);
                    acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(v, nl));
                    if QUOTE {
                        quotes = _mm_or_si128(quotes, _mm_cmpeq_epi8(v, qt));
                    }
                    n += 1;
                }
                let sums = _mm_sad_epu8(acc, zero);
                total += (_mm_cvtsi128_si64(sums) + _mm_extract_epi16(sums, 4) as i64) as u64;
                if n < 255 {
                    break;
                }
            }
            if QUOTE {
                quote = _mm_movemask_epi8(quotes) != 0 || blocks.remainder().contains(&b'"');
            }
        }
        let rest = memchr::memchr_iter(b'\n', blocks.remainder()).count() as u64;
        (total + rest, quote)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let lines = memchr::memchr_iter(b'\n', data).count() as u64;
        (lines, QUOTE && data.contains(&b'"'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Chunker;
    use std::fs::File;

    #[test]
    fn counts_newlines_like_memchr() {
        // Lengths around the 16-byte blocks and the 255-block sums, newlines anywhere.
        let mut data = Vec::new();
        let mut x = 12345u64;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            data.push(if x >> 60 < 5 {
                b'\n'
            } else {
                b'a' + (x >> 59) as u8 % 20
            });
        }
        data.extend(std::iter::repeat_n(b'\n', 5000));
        for (a, b) in [
            (0, 0),
            (0, 15),
            (3, 40),
            (0, 4080),
            (1, 4097),
            (7, 9000),
            (0, 15_000),
        ] {
            let want = memchr::memchr_iter(b'\n', &data[a..b]).count() as u64;
            assert_eq!(count_newlines(&data[a..b]), want, "{a}..{b}");
            assert_eq!(newlines_and_quote(&data[a..b]), (want, false), "{a}..{b}");
            // A quote anywhere: in a 16-byte block, a late block, or the remainder.
            for q in [a, (a + b) / 2, b.saturating_sub(1)] {
                if q < b {
                    let mut d = data[a..b].to_vec();
                    d[q - a] = b'"';
                    let want = memchr::memchr_iter(b'\n', &d).count() as u64;
                    assert_eq!(
                        newlines_and_quote(&d),
                        (want, true),
                        "{a}..{b} quote at {q}"
                    );
                }
            }
        }
    }

    /// CSV records: windows with and without quotes (quoted fields holding line breaks in
    /// some stretches) are cut as the stream chunker cuts them, with the same line numbers.
    #[test]
    fn csv_chunks_as_the_stream_chunker() {
        let mut data = Vec::new();
        for i in 0..3000 {
            if i % 400 < 5 {
                data.extend(format!("2024-01-01T00:00:00Z,\"dev\n{i}\",81B8\n").into_bytes());
            } else {
                data.extend(format!("2024-01-01T00:00:00Z,dev{i},81B8\n").into_bytes());
            }
        }
        data.extend(b"  \n\n");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, &data).unwrap();
        let map = Arc::new(Mapped::open(&File::open(&p).unwrap()).unwrap());
        for target in [300, 700, 4096] {
            let mut mapped = Vec::new();
            chunks(&map, 0, Boundary::CsvRecord, (0, 1), (target, 8192), |c| {
                mapped.push((c.data.to_vec(), c.first_line, c.offset, c.oversized));
                true
            });
            let mut streamed = Vec::new();
            let mut ch =
                Chunker::new(&data[..], Boundary::CsvRecord, 0, 1, 0).with_sizes(target, 8192);
            while let Some(c) = ch.next_chunk(Vec::new()).unwrap() {
                streamed.push((c.data.to_vec(), c.first_line, c.offset, c.oversized));
            }
            assert!(mapped.len() > 10);
            assert_eq!(mapped, streamed, "target {target}");
        }
    }

    /// The mapped cutter gives the same chunks as the stream chunker: same bytes, lines,
    /// offsets, and the same handling of a record over the limit.
    #[test]
    fn same_chunks_as_the_stream_chunker() {
        let mut data: Vec<u8> = (0..5000)
            .flat_map(|i| format!("2024-01-01T00:00:00Z,dev{i},81B8\n").into_bytes())
            .collect();
        data.extend(std::iter::repeat_n(b'x', 3000)); // a record longer than the limit
        data.extend(b"\nlast,row,without newline");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, &data).unwrap();
        let map = Arc::new(Mapped::open(&File::open(&p).unwrap()).unwrap());
        let mut mapped = Vec::new();
        chunks(&map, 0, Boundary::Line, (0, 1), (700, 2048), |c| {
            mapped.push((c.data.to_vec(), c.first_line, c.offset, c.oversized));
            true
        });
        let mut streamed = Vec::new();
        let mut ch = Chunker::new(&data[..], Boundary::Line, 0, 1, 0).with_sizes(700, 2048);
        while let Some(c) = ch.next_chunk(Vec::new()).unwrap() {
            streamed.push((c.data.to_vec(), c.first_line, c.offset, c.oversized));
        }
        assert!(mapped.iter().any(|c| c.3), "the long record is oversized");
        assert_eq!(mapped.len(), streamed.len());
        for (m, s) in mapped.iter().zip(&streamed) {
            assert_eq!((m.1, m.2, m.3), (s.1, s.2, s.3));
            assert_eq!(m.0, s.0);
        }
        map.release(0, map.bytes().len());
        assert_eq!(
            &map.bytes()[..10],
            &data[..10],
            "released pages read back from the file"
        );
    }
}
