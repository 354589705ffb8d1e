//! The receiver's durable log: segments of framed records, one accepted POST body each.
//!
//! The framing is `source::segment`'s. A request is acknowledged only after its record is
//! written and the file is synced; many requests share one sync (group commit). A write or
//! sync that fails (a full disk) is cut back off the segment before anything else is written,
//! so the log never holds a partial record followed by acknowledged ones; the requests of that
//! batch are answered "not stored" and the writer tries again with the next.
//!
//! Recovery reads every record back. Bytes that hold no record are skipped up to the next
//! whole record (resync), counted and reported; a stretch running to the end of the last
//! segment is a torn write from a crash (never acknowledged) and is cut off. The batch commands
//! read segments directly (`Unframe`) with the same resync.

use super::error::LiveError;
use crate::source::segment::{
    Damage, HEADER, Item, LOG_MAGIC, frame_header, items, segment_name, segments,
};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    pub records: u64,
    pub bytes: u64,
    /// Torn records cut from the tail, and their bytes.
    pub torn: u64,
    pub torn_bytes: u64,
    /// Damaged stretches elsewhere (left in place, skipped), and where: (segment, damage).
    pub damaged: Vec<(PathBuf, Damage)>,
}

impl Recovered {
    pub fn damaged_bytes(&self) -> u64 {
        self.damaged.iter().map(|(_, d)| d.bytes).sum()
    }
}

/// Reads every record of every segment, calling `f` with each; skips damaged stretches (every
/// whole record after one is still read) and cuts a torn tail off the last segment.
pub fn recover(dir: &Path, mut f: impl FnMut(&[u8])) -> Result<Recovered, LiveError> {
    let segs = segments(dir).map_err(LiveError::io(dir, "list"))?;
    let mut out = Recovered::default();
    for (k, (_, path)) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        let data = std::fs::read(path).map_err(LiveError::io(path, "read"))?;
        if data.len() < LOG_MAGIC.len() && LOG_MAGIC.starts_with(&data) {
            // A segment whose creation the disk cut short: nothing was ever in it.
            if last {
                std::fs::write(path, LOG_MAGIC).map_err(LiveError::io(path, "write"))?;
            }
            continue;
        }
        if &data[..4] != LOG_MAGIC {
            return Err(LiveError::NotASegment {
                path: path.display().to_string(),
            });
        }
        for item in items(&data) {
            match item {
                Item::Record(body) => {
                    f(body);
                    out.records += 1;
                    out.bytes += body.len() as u64;
                }
                Item::Damaged(d) if last && d.at_end => {
                    out.torn += 1;
                    out.torn_bytes += d.bytes;
                    let cut = || -> io::Result<()> {
                        let file = OpenOptions::new().write(true).open(path)?;
                        file.set_len(d.offset)?;
                        file.sync_all()
                    };
                    cut().map_err(LiveError::io(path, "cut the torn tail of"))?;
                }
                Item::Damaged(d) => out.damaged.push((path.clone(), d)),
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
    /// The last write failed for want of space (cleared by the next write that succeeds).
    pub disk_full: AtomicBool,
    /// Batches whose write or sync failed (cut back off the log, answered "not stored").
    pub write_failures: AtomicU64,
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

/// Appends a Prometheus histogram of microsecond timings counted per `SYNC_BUCKETS` bound
/// (`counts[i]`: timings at or under bound i, not cumulative) and their sum, in seconds.
pub fn prometheus_histogram(
    m: &mut String,
    name: &str,
    help: &str,
    counts: &[AtomicU64; SYNC_BUCKETS.len()],
    sum_us: &AtomicU64,
) {
    use std::fmt::Write as _;
    let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cum = 0;
    for (count, b) in counts.iter().zip(SYNC_BUCKETS) {
        cum += count.load(Ordering::Relaxed);
        let le = if b == u64::MAX {
            "+Inf".to_string()
        } else {
            format!("{}", b as f64 / 1e6)
        };
        let _ = writeln!(m, "{name}_bucket{{le=\"{le}\"}} {cum}");
    }
    let sum = sum_us.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(m, "{name}_sum {sum}\n{name}_count {cum}");
}

/// Whether an I/O error means the file system has no room (or the quota is spent).
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The appending side: a thread that writes and syncs in batches.
pub struct Writer {
    dir: PathBuf,
    file: File,
    segment: u64,
    /// The segment's length up to its last record known good (written and synced).
    size: u64,
    /// A failed batch could not be cut back yet: bytes past `size` may be on disk.
    dirty: bool,
    segment_bytes: u64,
    sync: SyncMode,
    stats: Arc<WriterStats>,
    /// Tests: fail like a full disk once a segment would pass this length (after writing what
    /// fits, as a real full disk does).
    #[cfg(test)]
    space_limit: Option<u64>,
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
            dirty: false,
            segment_bytes,
            sync,
            stats,
            #[cfg(test)]
            space_limit: None,
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

    /// Seals the segment and starts the next. If the new segment cannot be made whole (no
    /// room for its magic), it is removed and writing stays in the current one.
    fn rotate(&mut self) -> io::Result<()> {
        let path = self.dir.join(segment_name(self.segment + 1));
        let file = match open_segment(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        // The new file's directory entry must be durable too.
        File::open(&self.dir)?.sync_all()?;
        self.file = file;
        self.segment += 1;
        self.size = LOG_MAGIC.len() as u64;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(self.size, Ordering::Relaxed);
        Ok(())
    }

    /// Appends one record; `written` counts the bytes that reached the file.
    fn append(&mut self, body: &[u8], written: &mut u64) -> io::Result<()> {
        let header = frame_header(body);
        for part in [&header[..], body] {
            #[cfg(test)]
            if let Some(limit) = self.space_limit {
                let room = limit.saturating_sub(self.size + *written) as usize;
                if part.len() > room {
                    self.file.write_all(&part[..room])?;
                    *written += room as u64;
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
            }
            self.file.write_all(part)?;
            *written += part.len() as u64;
        }
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

    /// Cuts the segment back to its last good length (what a failed batch left past it).
    fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.size)?;
        self.file.sync_all()?;
        self.dirty = false;
        Ok(())
    }

    /// Writes a batch and syncs it: all of it is durable, or none of it is in the log.
    fn write_batch(&mut self, bodies: &[&[u8]]) -> io::Result<()> {
        if self.dirty {
            self.cut_back()?;
        }
        let total: u64 = bodies.iter().map(|b| (HEADER + b.len()) as u64).sum();
        if self.size > LOG_MAGIC.len() as u64 && self.size + total > self.segment_bytes {
            // If the next segment cannot be started, this one grows past its size instead.
            let _ = self.rotate();
        }
        let mut written = 0u64;
        let mut result = Ok(());
        for body in bodies {
            result = self.append(body, &mut written);
            if result.is_ok() && self.sync == SyncMode::EachRecord {
                result = self.sync();
            }
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() && self.sync == SyncMode::Group {
            result = self.sync();
        }
        match result {
            Ok(()) => {
                self.size += written;
                self.stats.bytes.fetch_add(written, Ordering::Relaxed);
                self.stats
                    .records
                    .fetch_add(bodies.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Nothing after a partial record: cut the batch off before anything else.
                self.dirty = true;
                if let Err(cut) = self.cut_back() {
                    eprintln!(
                        "error: log segment {}: cannot cut a failed write back off ({cut}); will retry before the next write",
                        self.segment
                    );
                }
                Err(e)
            }
        }
    }

    /// Runs until the channel closes: takes what is waiting (up to 4 MiB), writes it, syncs
    /// once, then acknowledges every request in the batch (or tells each it was not stored).
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
            let bodies: Vec<&[u8]> = batch.iter().map(|p| &p.body[..]).collect();
            let result = self.write_batch(&bodies);
            let full = result.as_ref().err().is_some_and(is_disk_full);
            self.stats.disk_full.store(full, Ordering::Relaxed);
            if result.is_err() {
                self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
            }
            for p in batch {
                let r = match &result {
                    Ok(()) => Ok(()),
                    Err(e) if full => {
                        Err(io::Error::new(io::ErrorKind::StorageFull, e.to_string()))
                    }
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = p.done.send(r);
            }
        }
        let _ = self.file.sync_all();
    }
}

/// Opens a segment for appending, writing its magic if it is new (or was cut short).
fn open_segment(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len < LOG_MAGIC.len() as u64 {
        f.set_len(0)?;
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

    fn pending(body: &[u8]) -> (Pending, tokio::sync::oneshot::Receiver<io::Result<()>>) {
        let (done, wait) = tokio::sync::oneshot::channel();
        (
            Pending {
                body: body.to_vec(),
                done,
            },
            wait,
        )
    }

    #[test]
    fn a_full_disk_leaves_no_partial_record_and_nothing_unsynced_is_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(WriterStats::default());
        let mut w = Writer::open(dir.path(), 1 << 20, SyncMode::Group, stats.clone()).unwrap();
        // Room for the magic and one 12-byte record, and half of the next.
        w.space_limit = Some(4 + 20 + 10);
        w.write_batch(&[b"<a>one</a>

"])
            .unwrap();
        let e = w
            .write_batch(&[b"<b>two</b>

"])
            .unwrap_err();
        assert!(is_disk_full(&e), "{e}");
        let seg = segments(dir.path()).unwrap()[0].1.clone();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), 24, "cut back");
        // Space returns: the next write goes right after the last good record.
        w.space_limit = None;
        w.write_batch(&[b"<c>three</c>", b"<d/>"]).unwrap();
        let mut seen = Vec::new();
        let r = recover(dir.path(), |b| seen.push(b.to_vec())).unwrap();
        assert_eq!((r.records, r.torn, r.damaged.len()), (3, 0, 0));
        assert_eq!(seen[1], b"<c>three</c>");
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 24 + 20 + 12);
        // Through the writer thread: the failed batch is told "disk full", and each of its
        // requests learns it was not stored.
        let mut w = Writer::open(dir.path(), 1 << 20, SyncMode::Group, stats.clone()).unwrap();
        w.space_limit = Some(60);
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (p, wait) = pending(b"<e>this one does not fit</e>");
        tx.send(p).unwrap();
        drop(tx);
        w.run(rx);
        let r = wait.blocking_recv().unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert!(stats.disk_full.load(Ordering::Relaxed));
        assert_eq!(recover(dir.path(), |_| {}).unwrap().records, 3);
    }

    #[test]
    fn a_full_disk_at_a_segment_boundary_keeps_writing_in_the_current_segment() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(WriterStats::default());
        let mut w = Writer::open(dir.path(), 30, SyncMode::Group, stats).unwrap();
        w.write_batch(&[b"<a>one</a>\n"]).unwrap();
        // The next segment cannot be created: a file in its place that is a directory.
        std::fs::create_dir(dir.path().join(segment_name(2))).unwrap();
        w.write_batch(&[b"<b>two</b>"]).unwrap();
        std::fs::remove_dir(dir.path().join(segment_name(2))).unwrap();
        w.write_batch(&[b"<c/>"]).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
        let r = recover(dir.path(), |_| {}).unwrap();
        assert_eq!((r.records, r.damaged.len()), (3, 0));
    }

    #[test]
    fn damage_in_the_middle_is_skipped_and_records_after_it_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"<a/>", b"<b/>", b"<c/>"]);
        let seg = segments(dir.path()).unwrap()[0].1.clone();
        let mut data = std::fs::read(&seg).unwrap();
        // The second record's length claims 4 GiB: nothing is allocated for it.
        let second = 4 + HEADER + 4;
        data[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&seg, &data).unwrap();
        let mut seen = Vec::new();
        let r = recover(dir.path(), |b| seen.push(b.to_vec())).unwrap();
        assert_eq!(seen, vec![b"<a/>".to_vec(), b"<c/>".to_vec()]);
        assert_eq!(r.torn, 0);
        assert_eq!(r.damaged.len(), 1);
        assert_eq!(
            (r.damaged[0].1.offset, r.damaged[0].1.bytes),
            (second as u64, 12)
        );
        // Left in place (evidence), not cut: the file is unchanged.
        assert_eq!(std::fs::read(&seg).unwrap(), data);
    }
}
