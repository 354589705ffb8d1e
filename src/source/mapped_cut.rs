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
        let chunk = match cut_within(target).or_else(|| cut_within(max_record)) {
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
                line += memchr::memchr_iter(b'\n', &data[pos..end]).count() as u64;
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
                line += memchr::memchr_iter(b'\n', &data[pos..next]).count() as u64;
                pos = next;
                c
            }
        };
        if !send(chunk) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Chunker;
    use std::fs::File;

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
