//! The receiver's durable log: segments of framed records, one accepted POST body each.
//!
//! The framing is `source::segment`'s. A
//! request is acknowledged only after its record is written and the file is synced; many
//! requests share one sync (group commit). Recovery reads every record back: a record cut
//! short or failing its CRC at the end of the last segment is a torn write from a crash; it is
//! cut off, counted and reported. The batch commands read segments directly (`Unframe`).

use super::error::LiveError;
use crate::source::segment::{HEADER, LOG_MAGIC, frame_header, record_at, segment_name, segments};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    pub records: u64,
    pub bytes: u64,
    /// Torn records cut from the tail, and their bytes.
    pub torn: u64,
    pub torn_bytes: u64,
}

/// Reads every record of every segment, calling `f` with each; cuts a torn tail off the last
/// segment. A bad record elsewhere is an error (the log is damaged, not torn).
pub fn recover(dir: &Path, mut f: impl FnMut(&[u8])) -> Result<Recovered, LiveError> {
    let segs = segments(dir).map_err(LiveError::io(dir, "list"))?;
    let mut out = Recovered::default();
    for (k, (_, path)) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        let data = std::fs::read(path).map_err(LiveError::io(path, "read"))?;
        if data.len() < LOG_MAGIC.len() || &data[..4] != LOG_MAGIC {
            if last && data.len() < LOG_MAGIC.len() {
                std::fs::write(path, LOG_MAGIC).map_err(LiveError::io(path, "write"))?;
                continue;
            }
            return Err(LiveError::NotASegment {
                path: path.display().to_string(),
            });
        }
        let mut pos = LOG_MAGIC.len();
        while pos < data.len() {
            match record_at(&data, pos) {
                Some((body, next)) => {
                    f(body);
                    out.records += 1;
                    out.bytes += body.len() as u64;
                    pos = next;
                }
                None if last => {
                    out.torn += 1;
                    out.torn_bytes += (data.len() - pos) as u64;
                    let cut = || -> io::Result<()> {
                        let file = OpenOptions::new().write(true).open(path)?;
                        file.set_len(pos as u64)?;
                        file.sync_all()
                    };
                    cut().map_err(LiveError::io(path, "cut the torn tail of"))?;
                    break;
                }
                None => {
                    return Err(LiveError::Damaged {
                        path: path.display().to_string(),
                        offset: pos as u64,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// How the writer syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// One sync per batch of whatever is waiting (group commit).
    Group,
    /// One sync per record (for comparison).
    EachRecord,
}

/// A record waiting to be written, and who to tell.
pub struct Pending {
    pub body: Vec<u8>,
    pub done: tokio::sync::oneshot::Sender<io::Result<()>>,
}

/// Shared figures the writer keeps.
#[derive(Default)]
pub struct WriterStats {
    pub bytes: AtomicU64,
    pub records: AtomicU64,
    pub syncs: AtomicU64,
    pub segments: AtomicU64,
    /// Sync latency histogram: counts of syncs at or under each bound (microseconds).
    pub sync_us: [AtomicU64; SYNC_BUCKETS.len()],
    pub sync_us_sum: AtomicU64,
}

pub const SYNC_BUCKETS: [u64; 10] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    100_000,
    u64::MAX,
];

/// The appending side: a thread that writes and syncs in batches.
pub struct Writer {
    dir: PathBuf,
    file: File,
    segment: u64,
    size: u64,
    segment_bytes: u64,
    sync: SyncMode,
    stats: Arc<WriterStats>,
}

impl Writer {
    /// Opens the log for appending (after `recover`): the last segment, or a new one.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        sync: SyncMode,
        stats: Arc<WriterStats>,
    ) -> Result<Writer, LiveError> {
        std::fs::create_dir_all(dir).map_err(LiveError::io(dir, "create"))?;
        let segs = segments(dir).map_err(LiveError::io(dir, "list"))?;
        let total: u64 = segs
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        stats.bytes.store(total, Ordering::Relaxed);
        stats.segments.store(segs.len() as u64, Ordering::Relaxed);
        let (segment, path) = match segs.last() {
            Some((n, p)) => (*n, p.clone()),
            None => (1, dir.join(segment_name(1))),
        };
        let mut w = Writer {
            dir: dir.to_path_buf(),
            file: open_segment(&path).map_err(LiveError::io(&path, "open"))?,
            segment,
            size: 0,
            segment_bytes,
            sync,
            stats,
        };
        w.size = w
            .file
            .seek(io::SeekFrom::End(0))
            .map_err(LiveError::io(&path, "seek in"))?;
        if segs.is_empty() {
            w.stats.segments.store(1, Ordering::Relaxed);
            w.stats.bytes.fetch_add(w.size, Ordering::Relaxed);
        }
        Ok(w)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        self.segment += 1;
        self.file = open_segment(&self.dir.join(segment_name(self.segment)))?;
        self.size = LOG_MAGIC.len() as u64;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(self.size, Ordering::Relaxed);
        // The new file's directory entry must be durable too.
        File::open(&self.dir)?.sync_all()
    }

    fn append(&mut self, body: &[u8]) -> io::Result<()> {
        if self.size > LOG_MAGIC.len() as u64
            && self.size + (HEADER + body.len()) as u64 > self.segment_bytes
        {
            self.rotate()?;
        }
        self.file.write_all(&frame_header(body))?;
        self.file.write_all(body)?;
        let n = (HEADER + body.len()) as u64;
        self.size += n;
        self.stats.bytes.fetch_add(n, Ordering::Relaxed);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let t0 = Instant::now();
        self.file.sync_data()?;
        let us = t0.elapsed().as_micros() as u64;
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.stats.sync_us_sum.fetch_add(us, Ordering::Relaxed);
        let b = SYNC_BUCKETS
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(SYNC_BUCKETS.len() - 1);
        self.stats.sync_us[b].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Runs until the channel closes: takes what is waiting (up to 4 MiB), writes it, syncs
    /// once, then acknowledges every request in the batch.
    pub fn run(mut self, rx: crossbeam_channel::Receiver<Pending>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut bytes = batch[0].body.len();
            while bytes < 4 << 20 {
                match rx.recv_timeout(Duration::from_micros(0)) {
                    Ok(p) => {
                        bytes += p.body.len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            let mut result = Ok(());
            for p in &batch {
                result = result.and_then(|_| self.append(&p.body));
                if self.sync == SyncMode::EachRecord {
                    result = result.and_then(|_| self.sync());
                }
            }
            if self.sync == SyncMode::Group {
                result = result.and_then(|_| self.sync());
            }
            for p in batch {
                let r = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = p.done.send(r);
            }
        }
        let _ = self.file.sync_all();
    }
}

fn open_segment(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    if f.metadata()?.len() == 0 {
        f.write_all(LOG_MAGIC)?;
        f.sync_all()?;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::segment::Unframe;
    use std::io::Read;

    fn write_records(dir: &Path, bodies: &[&[u8]]) {
        let stats = Arc::new(WriterStats::default());
        let w = Writer::open(dir, 1 << 20, SyncMode::Group, stats).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(16);
        let t = std::thread::spawn(move || w.run(rx));
        let mut waits = Vec::new();
        for b in bodies {
            let (done, wait) = tokio::sync::oneshot::channel();
            tx.send(Pending {
                body: b.to_vec(),
                done,
            })
            .unwrap();
            waits.push(wait);
        }
        drop(tx);
        t.join().unwrap();
        for w in waits {
            w.blocking_recv().unwrap().unwrap();
        }
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"<a/>", b"<b/>", b"<c/>"]);
        let seg = &segments(dir.path()).unwrap()[0].1;
        // The batch view: the records, each with a newline.
        let mut s = String::new();
        Unframe::new(&std::fs::read(seg).unwrap()[4..])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "<a/>\n<b/>\n<c/>\n");
        // A crash mid-write: half a record at the end.
        let mut f = OpenOptions::new().append(true).open(seg).unwrap();
        f.write_all(&[20, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut seen = Vec::new();
        let r = recover(dir.path(), |b| seen.push(b.to_vec())).unwrap();
        assert_eq!((r.records, r.torn, r.torn_bytes), (3, 1, 6));
        assert_eq!(
            seen,
            vec![b"<a/>".to_vec(), b"<b/>".to_vec(), b"<c/>".to_vec()]
        );
        // Cut: a second recovery finds nothing torn, and appending continues after it.
        assert_eq!(recover(dir.path(), |_| {}).unwrap().torn, 0);
        write_records(dir.path(), &[b"<d/>"]);
        assert_eq!(recover(dir.path(), |_| {}).unwrap().records, 4);
    }

    #[test]
    fn corrupt_checksum_at_the_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"<a/>", b"<b/>"]);
        let seg = segments(dir.path()).unwrap()[0].1.clone();
        let mut data = std::fs::read(&seg).unwrap();
        let n = data.len();
        data[n - 1] ^= 0xFF;
        std::fs::write(&seg, &data).unwrap();
        let r = recover(dir.path(), |_| {}).unwrap();
        assert_eq!((r.records, r.torn), (1, 1));
    }
}
