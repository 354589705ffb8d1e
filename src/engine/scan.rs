//! Glue from inputs to folds: sniff each source, pick its decoder, run the workers.

use crate::decode::csv::{CsvLayout, CsvScratch};
use crate::decode::jsonl::JsonScratch;
use crate::decode::{ColumnMap, Sink, duis, jsonl};
use crate::source::pipeline::{self, Plan, Progress, SourceError};
use crate::source::{Boundary, Chunk, Format, Input, sniff_format};
use std::io::BufRead;
use std::sync::Arc;

/// How one source is decoded.
pub struct SourceMeta {
    pub format: Format,
    pub csv: Option<CsvLayout>,
}

/// Options shared by every command that reads alert inputs.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub columns: ColumnMap,
    pub threads: usize,
    /// The redelivery window for duplicate detection, in days (`AlertQuery::dedup_window`;
    /// `None`: the query's own).
    pub dedup_window: Option<crate::model::Day>,
}

/// Per-worker scratch space for the decoders.
#[derive(Default)]
pub struct Scratch {
    csv: CsvScratch,
    json: JsonScratch,
}

/// Looks at a source's head: format, and for CSV the header row.
pub fn plan_source(
    input: &Input,
    r: &mut dyn BufRead,
    columns: &ColumnMap,
) -> Result<Option<Plan<SourceMeta>>, String> {
    let head = r.fill_buf().map_err(|e| format!("read error: {e}"))?;
    if head.is_empty() {
        return Ok(None);
    }
    let mut offset = 0u64;
    if head.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
        offset = 3;
    }
    let head = r.fill_buf().map_err(|e| format!("read error: {e}"))?;
    let format = sniff_format(head);
    match format {
        Format::Csv => {
            let mut header = Vec::new();
            crate::source::read_header(r, &mut header)?;
            let layout = CsvLayout::from_header(&header, columns)
                .map_err(|e| format!("{}: line 1: {e}", input.name()))?;
            Ok(Some(Plan {
                boundary: Boundary::CsvRecord,
                first_line: 2,
                offset: offset + header.len() as u64,
                meta: SourceMeta {
                    format,
                    csv: Some(layout),
                },
            }))
        }
        Format::JsonLines => Ok(Some(Plan {
            boundary: Boundary::Line,
            first_line: 1,
            offset,
            meta: SourceMeta { format, csv: None },
        })),
        Format::DuisXml => Ok(Some(Plan {
            boundary: Boundary::XmlDocument,
            first_line: 1,
            offset,
            meta: SourceMeta { format, csv: None },
        })),
    }
}

/// Decodes one chunk into a sink.
pub fn decode_chunk(meta: &SourceMeta, chunk: &Chunk, scratch: &mut Scratch, sink: &mut impl Sink) {
    if chunk.oversized {
        sink.reject(
            chunk.first_line,
            chunk.offset,
            "record longer than 64 MiB (only its first 512 bytes are kept here)".into(),
            &chunk.data,
        );
        return;
    }
    if let Some(why) = &chunk.cut_short {
        sink.reject(chunk.first_line, chunk.offset, why.clone(), &chunk.data);
        return;
    }
    match meta.format {
        Format::Csv => {
            let layout = meta.csv.as_ref().expect("CSV sources have a layout");
            crate::decode::csv::decode(
                layout,
                &chunk.data,
                chunk.first_line,
                chunk.offset,
                &mut scratch.csv,
                sink,
            )
        }
        Format::JsonLines => jsonl::decode(
            &chunk.data,
            chunk.first_line,
            chunk.offset,
            &mut scratch.json,
            sink,
        ),
        Format::DuisXml if chunk.followed => {
            duis::decode_followed(&chunk.data, chunk.first_line, chunk.offset, sink)
        }
        Format::DuisXml => duis::decode(&chunk.data, chunk.first_line, chunk.offset, sink),
    }
}

/// Decodes a source held in memory (its records, after any header) as the batch path does, cut
/// into chunks of about `target` bytes. The fuzz targets and `tests/chunking.rs` compare tiny
/// chunks with one: a record's fate must not depend on where chunks end.
pub fn decode_in_chunks(
    meta: &SourceMeta,
    boundary: Boundary,
    data: &[u8],
    (first_line, offset): (u64, u64),
    target: usize,
) -> crate::decode::Collect {
    let mut chunker = crate::source::Chunker::new(data, boundary, 0, first_line, offset)
        .with_sizes(target, 1 << 20);
    let mut scratch = Scratch::default();
    let mut sink = crate::decode::Collect::default();
    let mut buf = Vec::new();
    // A `&[u8]` reader never fails, so neither can the chunker.
    while let Ok(Some(chunk)) = chunker.next_chunk(std::mem::take(&mut buf)) {
        decode_chunk(meta, &chunk, &mut scratch, &mut sink);
        if let crate::source::ChunkData::Owned(v) = chunk.data {
            buf = v;
        }
    }
    sink
}

/// A sink that also needs to know which source a chunk came from.
pub trait SourceSink: Sink + Send {
    fn set_source(&mut self, source: usize);
}

impl SourceSink for crate::analyze::alerts::AlertFold<'_> {
    fn set_source(&mut self, source: usize) {
        crate::analyze::alerts::AlertFold::set_source(self, source);
    }
}

impl SourceSink for crate::analyze::alerts::Folds<'_> {
    fn set_source(&mut self, source: usize) {
        for f in &mut self.0 {
            f.set_source(source);
        }
    }
}

/// Reads every input with all workers, folding into one sink per worker.
pub fn scan<S: SourceSink>(
    inputs: &[Input],
    opts: &ReadOptions,
    progress: Option<Arc<Progress>>,
    init: impl Fn() -> S + Sync,
) -> (Vec<S>, Vec<SourceError>) {
    let columns = opts.columns.clone();
    let threads = if opts.threads == 0 {
        pipeline::default_threads()
    } else {
        opts.threads
    };
    let (states, errors) = pipeline::run(
        inputs,
        threads,
        progress,
        move |_, input, r| plan_source(input, r, &columns),
        || (init(), Scratch::default()),
        |(sink, scratch): &mut (S, Scratch), meta: &SourceMeta, chunk: &Chunk| {
            sink.set_source(chunk.source);
            decode_chunk(meta, chunk, scratch, sink);
        },
    );
    (states.into_iter().map(|s| s.0).collect(), errors)
}
