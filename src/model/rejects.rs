//! The rejected records of a run, in bounded memory.
//!
//! A bad feed can reject every record it holds (a 134 KB gzip of bad rows is a million
//! rejects), so rejects cannot simply be kept in a `Vec`: past [`MEMORY_LIMIT`] bytes the
//! records held are sorted and written to an anonymous temporary file (a *run*), and the
//! quarantine file is later written by merging the runs in (source, line, offset) order. Each
//! worker keeps its own `Rejects`; merging two only moves their runs, so memory stays at about
//! [`MEMORY_LIMIT`] per worker whatever the input.
//!
//! Runs are read back with positioned reads (`read_at`), so a clone shares the files and
//! neither disturbs the other.

use super::Reject;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes of rejects held in memory before they are written to a run.
pub const MEMORY_LIMIT: usize = 8 << 20;

/// Bytes a reject holds besides its reason and raw bytes (the struct and the `Vec` slot).
const OVERHEAD: usize = std::mem::size_of::<Reject>() + 16;

/// A run's fixed head per record: source, line, offset, reason length, raw length.
const HEAD: usize = 4 + 8 + 8 + 4 + 4;

/// Rejected records: the newest in memory, the rest in sorted runs on disk.
#[derive(Clone, Debug, Default)]
pub struct Rejects {
    held: Vec<Reject>,
    held_bytes: usize,
    runs: Vec<Run>,
    /// Records in the runs.
    spilled: u64,
    /// Memory limit; 0 means [`MEMORY_LIMIT`] (so `Default` is the usual store).
    limit: usize,
    /// Why a run could not be written (the records then stay in memory).
    spill_error: Option<String>,
}

#[derive(Clone, Debug)]
struct Run {
    file: Arc<File>,
    len: u64,
}

impl Rejects {
    pub fn new() -> Rejects {
        Rejects::default()
    }

    /// A store that writes a run whenever it holds more than `bytes` (tests use a few bytes).
    pub fn with_limit(bytes: usize) -> Rejects {
        Rejects {
            limit: bytes.max(1),
            ..Rejects::default()
        }
    }

    fn limit(&self) -> usize {
        if self.limit == 0 {
            MEMORY_LIMIT
        } else {
            self.limit
        }
    }

    pub fn len(&self) -> u64 {
        self.held.len() as u64 + self.spilled
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records written to temporary files so far.
    pub fn spilled(&self) -> u64 {
        self.spilled
    }

    /// Why records could not be written to a temporary file, if that happened (they were kept
    /// in memory instead: nothing is lost, but memory grew).
    pub fn spill_error(&self) -> Option<&str> {
        self.spill_error.as_deref()
    }

    pub fn push(&mut self, r: Reject) {
        self.held_bytes += OVERHEAD + r.reason.len() + r.raw.len();
        self.held.push(r);
        if self.held_bytes > self.limit() && self.spill_error.is_none() {
            self.spill();
        }
    }

    /// Takes in another store's records (a worker's, at the end of a read).
    pub fn append(&mut self, mut other: Rejects) {
        self.spilled += other.spilled;
        self.runs.append(&mut other.runs);
        if self.spill_error.is_none() {
            self.spill_error = other.spill_error.take();
        }
        for r in other.held {
            self.push(r);
        }
    }

    /// Writes the records held to a sorted run on disk.
    fn spill(&mut self) {
        sort(&mut self.held);
        match write_run(&self.held) {
            Ok(run) => {
                self.spilled += self.held.len() as u64;
                self.runs.push(run);
                self.held.clear();
                self.held.shrink_to(1024);
                self.held_bytes = 0;
            }
            Err(e) => {
                self.spill_error = Some(format!("cannot write rejects to a temporary file: {e}"))
            }
        }
    }

    /// Calls `f` on every record in (source, line, offset) order, stopping at its first error.
    pub fn try_for_each(&self, mut f: impl FnMut(&Reject) -> io::Result<()>) -> io::Result<()> {
        let mut held: Vec<&Reject> = self.held.iter().collect();
        held.sort_by_key(|r| key(r));
        let mut readers: Vec<RunReader> = self.runs.iter().map(RunReader::new).collect();
        // The heads of every run and of the records held, smallest first.
        let mut heads: BinaryHeap<Reverse<(Key, usize)>> = BinaryHeap::new();
        let mut current: Vec<Option<Reject>> = Vec::with_capacity(readers.len());
        for (i, rd) in readers.iter_mut().enumerate() {
            let r = rd.next()?;
            if let Some(r) = &r {
                heads.push(Reverse((key(r), i)));
            }
            current.push(r);
        }
        let held_slot = readers.len();
        let mut next_held = 0;
        if let Some(r) = held.first() {
            heads.push(Reverse((key(r), held_slot)));
        }
        while let Some(Reverse((_, i))) = heads.pop() {
            if i == held_slot {
                f(held[next_held])?;
                next_held += 1;
                if let Some(r) = held.get(next_held) {
                    heads.push(Reverse((key(r), held_slot)));
                }
            } else {
                if let Some(r) = &current[i] {
                    f(r)?;
                }
                current[i] = readers[i].next()?;
                if let Some(r) = &current[i] {
                    heads.push(Reverse((key(r), i)));
                }
            }
        }
        Ok(())
    }

    /// The first `n` records in order.
    pub fn first(&self, n: usize) -> Vec<Reject> {
        let mut out = Vec::with_capacity(n);
        let _ = self.try_for_each(|r| {
            if out.len() == n {
                return Err(io::ErrorKind::Interrupted.into());
            }
            out.push(r.clone());
            Ok(())
        });
        out
    }

    /// Every record in order, in memory (for tests and small side inputs).
    pub fn to_vec(&self) -> io::Result<Vec<Reject>> {
        let mut out = Vec::new();
        self.try_for_each(|r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }
}

impl Extend<Reject> for Rejects {
    fn extend<I: IntoIterator<Item = Reject>>(&mut self, iter: I) {
        for r in iter {
            self.push(r);
        }
    }
}

impl From<Vec<Reject>> for Rejects {
    fn from(v: Vec<Reject>) -> Rejects {
        let mut out = Rejects::new();
        out.extend(v);
        out
    }
}

/// The order of the quarantine file: source, line, byte offset.
type Key = (usize, u64, u64);

fn key(r: &Reject) -> Key {
    (r.source, r.line, r.offset)
}

fn sort(v: &mut [Reject]) {
    v.sort_by_key(key);
}

fn write_run(records: &[Reject]) -> io::Result<Run> {
    let file = tempfile::tempfile()?;
    let mut w = BufWriter::new(&file);
    let mut len = 0u64;
    for r in records {
        w.write_all(&(r.source as u32).to_le_bytes())?;
        w.write_all(&r.line.to_le_bytes())?;
        w.write_all(&r.offset.to_le_bytes())?;
        w.write_all(&(r.reason.len() as u32).to_le_bytes())?;
        w.write_all(&(r.raw.len() as u32).to_le_bytes())?;
        w.write_all(r.reason.as_bytes())?;
        w.write_all(&r.raw)?;
        len += (HEAD + r.reason.len() + r.raw.len()) as u64;
    }
    w.flush()?;
    drop(w);
    Ok(Run {
        file: Arc::new(file),
        len,
    })
}

/// Reads a run from its start with positioned reads, through a buffer.
struct RunReader<'a> {
    run: &'a Run,
    pos: u64,
    buf: Vec<u8>,
    at: usize,
}

impl<'a> RunReader<'a> {
    fn new(run: &'a Run) -> RunReader<'a> {
        RunReader {
            run,
            pos: 0,
            buf: Vec::new(),
            at: 0,
        }
    }

    fn next(&mut self) -> io::Result<Option<Reject>> {
        let mut head = [0u8; HEAD];
        if !self.read_exact(&mut head)? {
            return Ok(None);
        }
        let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap());
        let mut reason = vec![0u8; u32_at(20) as usize];
        let mut raw = vec![0u8; u32_at(24) as usize];
        if !self.read_exact(&mut reason)? || !self.read_exact(&mut raw)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a reject run ends inside a record",
            ));
        }
        Ok(Some(Reject {
            source: u32_at(0) as usize,
            line: u64_at(4),
            offset: u64_at(12),
            reason: String::from_utf8(reason)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            raw,
        }))
    }

    /// Fills `out`; false at the end of the run (before any byte of `out`).
    fn read_exact(&mut self, out: &mut [u8]) -> io::Result<bool> {
        let mut done = 0;
        while done < out.len() {
            if self.at == self.buf.len() {
                if self.pos >= self.run.len {
                    if done == 0 {
                        return Ok(false);
                    }
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let want = (self.run.len - self.pos).min(64 << 10) as usize;
                self.buf.resize(want, 0);
                let n = self.run.file.read_at(&mut self.buf, self.pos)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.buf.truncate(n);
                self.pos += n as u64;
                self.at = 0;
            }
            let n = (out.len() - done).min(self.buf.len() - self.at);
            out[done..done + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            done += n;
            self.at += n;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rej(source: usize, line: u64) -> Reject {
        Reject {
            source,
            line,
            offset: line * 10,
            reason: format!("bad {line}"),
            raw: vec![b'x'; (line % 7) as usize],
        }
    }

    #[test]
    fn records_come_back_in_order_from_memory_and_runs() {
        // A limit of one byte: every push writes a run.
        for limit in [1, 200, 1 << 20] {
            let mut a = Rejects::with_limit(limit);
            let mut b = Rejects::with_limit(limit);
            // Two workers, each seeing chunks in input order, interleaved between them.
            for line in (1..=400u64).rev() {
                let r = rej((line % 3) as usize, line);
                if line % 2 == 0 { a.push(r) } else { b.push(r) }
            }
            a.append(b);
            assert_eq!(a.len(), 400);
            let all = a.to_vec().unwrap();
            let mut want: Vec<Reject> = (1..=400u64).map(|l| rej((l % 3) as usize, l)).collect();
            want.sort_by_key(key);
            assert_eq!(all, want, "limit {limit}");
            if limit == 1 {
                assert!(a.spilled() >= 399, "{}", a.spilled());
            } else if limit == 1 << 20 {
                assert_eq!(a.spilled(), 0);
            }
            assert_eq!(a.first(3), want[..3].to_vec());
        }
    }

    #[test]
    fn memory_stays_near_the_limit() {
        let mut r = Rejects::with_limit(64 << 10);
        for line in 0..100_000u64 {
            r.push(Reject {
                source: 0,
                line,
                offset: 0,
                reason: "invalid alert code `ZZZZ`".into(),
                raw: vec![b'a'; 200],
            });
            assert!(r.held_bytes <= (64 << 10) + OVERHEAD + 256);
        }
        assert_eq!(r.len(), 100_000);
        assert!(r.spilled() > 99_000);
        let mut n = 0u64;
        let mut last = None;
        r.try_for_each(|x| {
            assert!(last < Some(x.line) || last.is_none());
            last = Some(x.line);
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 100_000);
    }

    #[test]
    fn a_clone_reads_the_same_records() {
        let mut r = Rejects::with_limit(1);
        r.extend((1..50).map(|l| rej(0, l)));
        let c = r.clone();
        assert_eq!(c.to_vec().unwrap(), r.to_vec().unwrap());
    }
}
