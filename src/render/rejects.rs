//! The quarantine file: one JSON object per rejected record, in input order.
//!
//! Fields: `source` (file name or `<stdin>`), `line` (1-based), `offset` (byte offset in the
//! decompressed stream), `reason`, and `raw` (the record's bytes as text, lossily decoded, at
//! most 4 KiB). JSON lines so that raw bytes with commas, quotes or newlines survive. The
//! records are merged from memory and the run's temporary files as they are written (see
//! [`Rejects`]), so writing a million rejects takes no more memory than writing three.

use crate::model::{Reject, Rejects};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct Row<'a> {
    source: &'a str,
    line: u64,
    offset: u64,
    reason: &'a str,
    raw: std::borrow::Cow<'a, str>,
}

pub fn write_rejects(
    w: &mut impl Write,
    rejects: &Rejects,
    source_names: &[String],
) -> io::Result<()> {
    rejects.try_for_each(|r| write_reject(w, r, source_names))
}

fn write_reject(w: &mut impl Write, r: &Reject, source_names: &[String]) -> io::Result<()> {
    let row = Row {
        source: source_names
            .get(r.source)
            .map(String::as_str)
            .unwrap_or("?"),
        line: r.line,
        offset: r.offset,
        reason: &r.reason,
        raw: String::from_utf8_lossy(&r.raw),
    };
    serde_json::to_writer(&mut *w, &row)?;
    w.write_all(b"\n")
}
