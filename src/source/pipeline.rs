//! The parallel engine: one reader thread cuts sources into chunks, worker threads fold them.
//!
//! The reader opens each source in turn, lets the caller inspect its head (sniff the format,
//! read a CSV header) and then streams chunks into a bounded channel, so memory stays at a
//! few chunks per worker whatever the input size. Buffers come back through a second channel
//! and are reused. Each worker owns its state (a fold); the caller merges the states at the
//! end, so no lock is taken per record.

use crate::source::mapped::{MIN_MAPPED, Mapped};
use crate::source::{Boundary, Chunk, ChunkData, Chunker, Input, open_input};
use crossbeam_channel::{bounded, unbounded};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the caller decided about one source after looking at its head.
pub struct Plan<M> {
    pub boundary: Boundary,
    /// Lines and bytes the caller consumed (a header), so positions stay exact.
    pub first_line: u64,
    pub offset: u64,
    pub meta: M,
}

/// A source that failed as a whole (cannot open, unreadable header, I/O error mid-way).
#[derive(Debug, Clone)]
pub struct SourceError {
    pub source: String,
    pub message: String,
}

/// Shared progress counters, read by the progress display.
#[derive(Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub chunks: AtomicU64,
}

/// Number of worker threads: all cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Runs `work` over every chunk of every input on `threads` workers.
///
/// `plan` is called on the reader thread with each opened stream; it may consume a header
/// and returns how to cut the rest, or an error message to skip the source.
pub fn run<M, S, P, I, W>(
    inputs: &[Input],
    threads: usize,
    progress: Option<Arc<Progress>>,
    plan: P,
    init: I,
    work: W,
) -> (Vec<S>, Vec<SourceError>)
where
    M: Send + Sync + 'static,
    S: Send,
    P: Fn(usize, &Input, &mut dyn BufRead) -> Result<Option<Plan<M>>, String> + Send,
    I: Fn() -> S + Sync,
    W: Fn(&mut S, &M, &Chunk) + Sync,
{
    let threads = threads.max(1);
    let (job_tx, job_rx) = bounded::<(Arc<M>, Chunk)>(threads * 2);
    let (buf_tx, buf_rx) = unbounded::<Vec<u8>>();
    let mut errors = Vec::new();
    let states = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut errors = Vec::new();
            for (i, input) in inputs.iter().enumerate() {
                if let Err(message) = feed(i, input, &plan, &job_tx, &buf_rx, progress.as_deref()) {
                    errors.push(SourceError {
                        source: input.name(),
                        message,
                    });
                }
            }
            errors
        });
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let job_rx = job_rx.clone();
                let buf_tx = buf_tx.clone();
                let (init, work) = (&init, &work);
                scope.spawn(move || {
                    let mut state = init();
                    for (meta, chunk) in job_rx {
                        work(&mut state, &meta, &chunk);
                        match chunk.data {
                            ChunkData::Owned(buf) => {
                                let _ = buf_tx.send(buf);
                            }
                            ChunkData::Mapped(map, a, b) => map.release(a, b),
                        }
                    }
                    state
                })
            })
            .collect();
        drop(job_rx);
        errors = reader.join().expect("reader thread panicked");
        workers
            .into_iter()
            .map(|w| w.join().expect("worker thread panicked"))
            .collect::<Vec<S>>()
    });
    (states, errors)
}

fn feed<M, P>(
    index: usize,
    input: &Input,
    plan: &P,
    jobs: &crossbeam_channel::Sender<(Arc<M>, Chunk)>,
    buffers: &crossbeam_channel::Receiver<Vec<u8>>,
    progress: Option<&Progress>,
) -> Result<(), String>
where
    P: Fn(usize, &Input, &mut dyn BufRead) -> Result<Option<Plan<M>>, String>,
{
    if let Some(map) = map_plain(input) {
        return feed_mapped(index, input, map, plan, jobs, progress);
    }
    let mut opened = open_input(input).map_err(|e| format!("{e:#}"))?;
    let Some(plan) = plan(index, input, &mut opened.reader)? else {
        return Ok(());
    };
    let meta = Arc::new(plan.meta);
    let mut chunker = Chunker::new(
        opened.reader,
        plan.boundary,
        index,
        plan.first_line,
        plan.offset,
    );
    loop {
        let buf = buffers.try_recv().unwrap_or_default();
        match chunker.next_chunk(buf) {
            Ok(Some(chunk)) => {
                if let Some(p) = progress {
                    p.bytes
                        .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
                    p.chunks.fetch_add(1, Ordering::Relaxed);
                }
                if jobs.send((meta.clone(), chunk)).is_err() {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
}

/// A large uncompressed file, mapped; `None` for stdin, small or compressed files and logs.
fn map_plain(input: &Input) -> Option<Mapped> {
    let Input::File(path) = input else {
        return None;
    };
    // Only a regular file is opened here: a FIFO can be opened (and read) once.
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() < MIN_MAPPED {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() < MIN_MAPPED {
        return None;
    }
    let map = Mapped::open(&file)?;
    let head = &map.bytes()[..4.min(map.bytes().len())];
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(crate::source::segment::LOG_MAGIC);
    (!compressed).then_some(map)
}

/// `feed` for a mapped file: chunks are ranges of the mapping, nothing is copied.
fn feed_mapped<M, P>(
    index: usize,
    input: &Input,
    map: Mapped,
    plan: &P,
    jobs: &crossbeam_channel::Sender<(Arc<M>, Chunk)>,
    progress: Option<&Progress>,
) -> Result<(), String>
where
    P: Fn(usize, &Input, &mut dyn BufRead) -> Result<Option<Plan<M>>, String>,
{
    let mut head = std::io::Cursor::new(map.bytes());
    let Some(plan) = plan(index, input, &mut head)? else {
        return Ok(());
    };
    let meta = Arc::new(plan.meta);
    let map = Arc::new(map);
    crate::source::mapped_cut::chunks(
        &map,
        index,
        plan.boundary,
        (plan.offset as usize, plan.first_line),
        (4 << 20, 64 << 20),
        |chunk| {
            if let Some(p) = progress {
                p.bytes
                    .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
                p.chunks.fetch_add(1, Ordering::Relaxed);
            }
            jobs.send((meta.clone(), chunk)).is_ok()
        },
    );
    Ok(())
}
