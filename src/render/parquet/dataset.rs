//! A dataset directory written safely: every file goes under a hidden temporary name
//! (`.part-<run>-<n>.parquet.tmp`, which Spark, DuckDB and Hive skip) and is renamed into
//! place by `commit`, once the whole run has succeeded. A run killed half-way leaves only
//! hidden temporary files; a reader never sees a partial file.
//!
//! The run id (`RunId`) is a hash of what the run read and how: each input's path, size and
//! modification time, the inventory's, and the settings that change the rows (filters, time
//! zone, duplicate detection, grouping). A second export of other inputs has another id and
//! adds its files beside the first's; a re-run of the same inputs has the same id, and its
//! `commit` replaces that run's files: it renames its own into place, then removes any file of
//! the same run id it did not write (how many files a run writes depends on how the workers
//! shared the input), and temporary files a killed run of that id left behind.

use super::ParquetError;
use super::direct;
use super::part_file::{FileLayout, PartFile, encode_columns};
use arrow_array::RecordBatch;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The id of a run's files: 16 hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunId(pub String);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// FNV-1a over bytes, continued from `h`.
fn fnv(mut h: u64, b: &[u8]) -> u64 {
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl RunId {
    /// The id of a run over `inputs` (already expanded: files, or `None` for standard input)
    /// and `inventory`, under `settings` (any text that changes the rows written). Two hashes
    /// with different seeds make 128 bits, of which 64 are kept. Standard input has no
    /// identity: a run that reads it gets an id of its own (the time and process), and a
    /// re-run adds files.
    pub fn of(inputs: &[Option<PathBuf>], inventory: Option<&Path>, settings: &str) -> RunId {
        let mut text = String::new();
        let identity = |text: &mut String, p: &Path| {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            text.push_str(&abs.display().to_string());
            if let Ok(m) = std::fs::metadata(p) {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                text.push_str(&format!("\x1f{}\x1f{mtime}", m.len()));
            }
            text.push('\x1e');
        };
        for i in inputs {
            match i {
                Some(p) => identity(&mut text, p),
                None => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    text.push_str(&format!("<stdin {now} {}>", std::process::id()));
                }
            }
        }
        text.push_str("\x1dinventory:");
        if let Some(p) = inventory {
            identity(&mut text, p);
        }
        text.push_str("\x1dsettings:");
        text.push_str(settings);
        let a = fnv(0xcbf2_9ce4_8422_2325, text.as_bytes());
        let b = fnv(0x6c62_272e_07bb_0142, text.as_bytes());
        RunId(format!("{:016x}", a ^ b.rotate_left(29)))
    }
}

/// What a committed dataset holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetSummary {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Files of an earlier run with the same id that this one replaced or removed.
    pub replaced: u64,
}

struct Written {
    tmp: PathBuf,
    dest: PathBuf,
    rows: u64,
}

/// A dataset being written: its root directory, the run's id, and the files written so far
/// (still under their temporary names). Shared by the workers that write it.
pub struct Dataset {
    root: PathBuf,
    run: RunId,
    next: AtomicU64,
    written: Mutex<Vec<Written>>,
    /// The first error a worker met (workers cannot return one; the run checks it).
    failure: Mutex<Option<ParquetError>>,
}

impl Dataset {
    pub fn new(root: &Path, run: RunId) -> Dataset {
        Dataset {
            root: root.to_path_buf(),
            run,
            next: AtomicU64::new(0),
            written: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// Writes `batches` as one file `part-<run>-<n>.parquet` in the partition directory
    /// `dirs` (`["day=2024-01-01", "region=North"]`), a row group each, under its temporary
    /// name until `commit`.
    pub fn write(
        &self,
        dirs: &[String],
        batches: &[RecordBatch],
        props: &WriterProperties,
    ) -> Result<(), ParquetError> {
        let Some(first) = batches.first() else {
            return Ok(());
        };
        let layout = FileLayout::new(first.schema(), props)
            .map_err(|cause| ParquetError::parquet(&self.root, cause))?;
        self.write_with(dirs, batches, &layout)
    }

    /// `write` for a writer that writes many files of one layout (made once).
    pub fn write_with(
        &self,
        dirs: &[String],
        batches: &[RecordBatch],
        layout: &FileLayout,
    ) -> Result<(), ParquetError> {
        let [batch] = batches else {
            if batches.is_empty() {
                return Ok(());
            }
            let mut f = self.create(dirs, None, layout)?;
            for b in batches {
                f.write(b)?;
            }
            return self.close(f);
        };
        // One row group: when every column was hand-written, the file is written directly.
        let (tmp, dest) = self.place(dirs, None)?;
        let chunks =
            encode_columns(layout, batch).map_err(|cause| ParquetError::parquet(&tmp, cause))?;
        if chunks.iter().all(Option::is_some) {
            let chunks = chunks.into_iter().flatten().collect();
            let file = std::fs::File::create(&tmp).map_err(ParquetError::io(&tmp, "create"))?;
            direct::write_file(
                file,
                layout.descr(),
                layout.props(),
                batch.num_rows(),
                chunks,
            )
            .map_err(|cause| ParquetError::parquet(&tmp, cause))?;
            let rows = batch.num_rows() as u64;
            self.keep(Written { tmp, dest, rows });
            return Ok(());
        }
        let mut f = PartFile::open(tmp, dest, layout)?;
        f.write_chunks(batch, chunks)?;
        self.close(f)
    }

    /// Opens a file in the partition directory `dirs`: `name`, or `part-<run>-<n>.parquet`
    /// when `None`. It is written under a temporary name; `close` it, then `commit`.
    pub fn create(
        &self,
        dirs: &[String],
        name: Option<&str>,
        layout: &FileLayout,
    ) -> Result<PartFile, ParquetError> {
        let (tmp, dest) = self.place(dirs, name)?;
        PartFile::open(tmp, dest, layout)
    }

    /// The temporary and the final path of a new file in the partition directory `dirs`
    /// (made if missing): `name`, or the next `part-<run>-<n>.parquet`.
    fn place(
        &self,
        dirs: &[String],
        name: Option<&str>,
    ) -> Result<(PathBuf, PathBuf), ParquetError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                format!("part-{}-{n}.parquet", self.run)
            }
        };
        let mut dir = self.root.clone();
        dir.extend(dirs);
        std::fs::create_dir_all(&dir).map_err(ParquetError::io(&dir, "create the directory"))?;
        let dest = dir.join(&name);
        let tmp = dir.join(format!(".{name}.{}.tmp", self.run));
        Ok((tmp, dest))
    }

    /// Finishes a file (its footer written); it becomes visible at `commit`.
    pub fn close(&self, f: PartFile) -> Result<(), ParquetError> {
        let (tmp, dest, rows) = f.finish()?;
        self.keep(Written { tmp, dest, rows });
        Ok(())
    }

    /// Records a finished file, to be renamed into place at `commit`.
    fn keep(&self, file: Written) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.push(file);
    }

    /// Keeps the first error a worker met.
    pub fn fail(&self, e: ParquetError) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
    }

    /// Whether a worker has failed (workers then stop writing).
    pub fn failed(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    /// The first error a worker met, if any.
    pub fn take_failure(&self) -> Option<ParquetError> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }

    /// Renames every file into place, then removes the files of the same run id it did not
    /// write and that run's leftover temporary files. Returns what the dataset holds.
    pub fn commit(&self) -> Result<DatasetSummary, ParquetError> {
        if let Some(e) = self.take_failure() {
            self.abort();
            return Err(e);
        }
        let written = std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()));
        let mut s = DatasetSummary::default();
        let mut dests = std::collections::HashSet::new();
        for w in &written {
            if w.dest.exists() {
                s.replaced += 1;
            }
            std::fs::rename(&w.tmp, &w.dest)
                .map_err(ParquetError::io(&w.dest, "rename into place"))?;
            s.files += 1;
            s.rows += w.rows;
            s.bytes += std::fs::metadata(&w.dest).map(|m| m.len()).unwrap_or(0);
            dests.insert(w.dest.clone());
        }
        let mine = format!("part-{}-", self.run);
        let my_tmp = format!(".{}.tmp", self.run);
        let mut stale = Vec::new();
        collect_files(&self.root, &mut |p: &Path| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let old_part =
                name.starts_with(&mine) && name.ends_with(".parquet") && !dests.contains(p);
            let old_tmp = name.starts_with('.') && name.ends_with(&my_tmp);
            if old_part || old_tmp {
                stale.push((p.to_path_buf(), old_part));
            }
        })
        .map_err(ParquetError::io(&self.root, "list"))?;
        for (p, counted) in stale {
            std::fs::remove_file(&p).map_err(ParquetError::io(&p, "remove"))?;
            s.replaced += counted as u64;
        }
        Ok(s)
    }

    /// Removes the temporary files written so far (the run failed: nothing becomes visible).
    pub fn abort(&self) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        for w in written.drain(..) {
            let _ = std::fs::remove_file(&w.tmp);
        }
    }
}

/// Calls `f` on every file under `dir` (none when `dir` does not exist).
fn collect_files(dir: &Path, f: &mut dyn FnMut(&Path)) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            collect_files(&e.path(), f)?;
        } else if t.is_file() {
            f(&e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from((0..n).collect::<Vec<_>>()));
        RecordBatch::try_from_iter([("x", a)]).unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        collect_files(dir, &mut |p| {
            out.push(p.strip_prefix(dir).unwrap().display().to_string())
        })
        .unwrap();
        out.sort();
        out
    }

    #[test]
    fn files_appear_on_commit_and_a_rerun_replaces_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let props = super::super::writer_properties(&[], &[], 1024);
        let run = RunId("00aa".into());
        let d = Dataset::new(dir.path(), run.clone());
        d.write(&["day=2024-01-01".into()], &[batch(3)], &props)
            .unwrap();
        d.write(&["day=2024-01-01".into()], &[batch(2)], &props)
            .unwrap();
        // Before the commit only hidden temporary files exist.
        assert!(files(dir.path()).iter().all(|f| f.contains("/.part-")));
        let s = d.commit().unwrap();
        assert_eq!((s.files, s.rows, s.replaced), (2, 5, 0));
        assert_eq!(
            files(dir.path()),
            [
                "day=2024-01-01/part-00aa-0.parquet",
                "day=2024-01-01/part-00aa-1.parquet"
            ]
        );
        // Another run adds its files; a re-run of the first writes one file and replaces both.
        let other = Dataset::new(dir.path(), RunId("00bb".into()));
        other
            .write(&["day=2024-01-01".into()], &[batch(1)], &props)
            .unwrap();
        other.commit().unwrap();
        let again = Dataset::new(dir.path(), run);
        again
            .write(&["day=2024-01-01".into()], &[batch(5)], &props)
            .unwrap();
        let s = again.commit().unwrap();
        assert_eq!((s.files, s.rows, s.replaced), (1, 5, 2));
        assert_eq!(
            files(dir.path()),
            [
                "day=2024-01-01/part-00aa-0.parquet",
                "day=2024-01-01/part-00bb-0.parquet"
            ]
        );
    }

    #[test]
    fn an_aborted_run_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let props = super::super::writer_properties(&[], &[], 1024);
        let d = Dataset::new(dir.path(), RunId("01".into()));
        d.write(&["a=1".into()], &[batch(3)], &props).unwrap();
        d.abort();
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn run_ids_follow_the_inputs_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "x\n").unwrap();
        let id = |s: &str| RunId::of(&[Some(p.clone())], None, s);
        assert_eq!(id("x"), id("x"));
        assert_ne!(id("x"), id("y"));
        let before = id("x");
        std::fs::write(&p, "x\ny\n").unwrap();
        assert_ne!(id("x"), before, "a changed input is another run");
        assert_eq!(id("x").0.len(), 16);
    }
}
