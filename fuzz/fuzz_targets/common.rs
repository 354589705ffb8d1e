//! Shared by the decoder targets: the batch path's chunking and decoding of one source's
//! bytes (`Chunker` then `engine::scan::decode_chunk`), run twice: once as one chunk and once
//! cut into tiny chunks. Both must say the same (a record's fate must not depend on where a
//! chunk ends, which in a real run depends on the thread count and the read size).
#![allow(dead_code)]

use fleetwatch::decode::Collect;
use fleetwatch::engine::scan::{SourceMeta, decode_in_chunks};
use fleetwatch::source::Boundary;

/// Decodes `data` (a source's records, after any header) with chunks of about `target` bytes.
pub fn decode_all(
    meta: &SourceMeta,
    boundary: Boundary,
    data: &[u8],
    first_line: u64,
    offset: u64,
    target: usize,
) -> Collect {
    decode_in_chunks(meta, boundary, data, (first_line, offset), target)
}

/// Runs both chunkings and checks that they agree: the same events (no record lost or invented
/// by where chunks end) and the same rejects (line, offset, reason and bytes).
pub fn check(meta: &SourceMeta, boundary: Boundary, data: &[u8], first_line: u64, offset: u64) {
    // One chunk: a target just past the input (a larger one only costs a bigger buffer).
    let whole = decode_all(meta, boundary, data, first_line, offset, data.len() + 1);
    let small = 1 + data.len() % 97;
    let cut = decode_all(meta, boundary, data, first_line, offset, small);
    assert_eq!(
        whole.events, cut.events,
        "events differ with {small}-byte chunks"
    );
    assert_eq!(
        whole.rejects, cut.rejects,
        "rejects differ with {small}-byte chunks"
    );
    assert_eq!(
        whole.rejected, cut.rejected,
        "rejected bytes differ with {small}-byte chunks"
    );
}
