//! The events dataset: every accepted alert record as a row, written by a tap on the alert
//! fold (`analyze::alerts::Tap`), so it sees exactly the records `alerts` counts (filters and
//! duplicate detection applied, throttled counts honoured) with the device's attributes and
//! the firmware it ran at the alert's time.
//!
//! Memory stays bounded: each worker buffers rows per partition (day x region) in a compact
//! form (48 bytes a row) and writes a partition out as a file of one row group when it
//! reaches `row_group` rows, or, when the worker's rows pass `buffer_rows` in all, its
//! largest partition. What is left at the end is written by all cores.
//!
//! A partition's rows are held in blocks of `BLOCK` rows, and a worker keeps the blocks of
//! the partitions it wrote for the next ones: its row memory is faulted in once. A vector
//! per partition, grown by doubling and freed after each write, copied its rows a dozen
//! times and touched fresh pages at every growth: 28% of an export's user-space page faults,
//! which a virtual machine charges dearly for.

use crate::analyze::alerts::Tap;
use crate::inventory::DeviceInfo;
use crate::model::time::format_day;
use crate::model::{AlertCode, Day, DeviceType, Event, Generation, Region};
use crate::render::parquet::columns::{
    device_id_field, device_numbers_of, dictionary_of_keys, dictionary_type, dictionary_with_nulls,
    field, is_named, timestamp_micros, timestamp_type,
};
use crate::render::parquet::{Dataset, FileLayout, ParquetError, partition_dir, writer_properties};
use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow_buffer::{NullBuffer, NullBufferBuilder};
use arrow_schema::{DataType, Schema, SchemaRef};
use parquet::basic::Encoding;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One buffered row.
#[derive(Clone, Copy, Debug)]
struct Row {
    ts: i64,
    device: u64,
    message_id: u64,
    /// The device as a packed `DeviceInfo`: the inventory's, or what the record says of
    /// itself when the inventory lacks it.
    info: u64,
    code: AlertCode,
    count: u32,
    source: u32,
    /// Whether the record names a device (`device` is then meaningful).
    has_device: bool,
    /// Whether the inventory knows the device (the model and firmware are then meaningful).
    known: bool,
}

impl Row {
    #[inline]
    fn info(&self) -> DeviceInfo {
        DeviceInfo::unpack(self.info)
    }
}

/// Rows in a block.
const BLOCK: usize = 4096;

/// A partition's buffered rows: full blocks of `BLOCK` rows and the block filling.
#[derive(Default)]
struct Rows {
    full: Vec<Vec<Row>>,
    filling: Vec<Row>,
    len: usize,
}

impl Rows {
    /// Appends `row`, taking a new block from `spare` (or the allocator) when the one
    /// filling is full.
    #[inline]
    fn push(&mut self, row: Row, spare: &mut Vec<Vec<Row>>) {
        if self.filling.len() == self.filling.capacity() {
            let next = spare.pop().unwrap_or_else(|| Vec::with_capacity(BLOCK));
            let done = std::mem::replace(&mut self.filling, next);
            if !done.is_empty() {
                self.full.push(done);
            }
        }
        self.filling.push(row);
        self.len += 1;
    }

    fn blocks(&self) -> impl Iterator<Item = &[Row]> {
        self.full
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(self.filling.as_slice()))
    }

    /// Gives the blocks back to `spare`, emptied.
    fn recycle(self, spare: &mut Vec<Vec<Row>>) {
        let blocks = self.full.into_iter().chain(std::iter::once(self.filling));
        spare.extend(blocks.filter(|b| b.capacity() > 0).map(|mut b| {
            b.clear();
            b
        }));
    }

    /// Takes over `other`'s rows after these, its blocks as they are (a block not full
    /// before the last is fine: files are cut by rows).
    fn append(&mut self, other: Rows) {
        if !self.filling.is_empty() {
            self.full.push(std::mem::take(&mut self.filling));
        }
        self.full.extend(other.full);
        self.filling = other.filling;
        self.len += other.len;
    }

    /// Calls `f` with the rows in runs of `n` (the last may be shorter), each as the pieces
    /// of blocks it lies in. Not copied: the rows of a file longer than a block were copied
    /// into one slice first, 48 bytes a row. Stops when `f` returns false.
    fn runs(&self, n: usize, mut f: impl FnMut(Run<'_>) -> bool) {
        let n = n.max(1);
        let mut pieces: Vec<&[Row]> = Vec::new();
        let mut len = 0;
        for b in self.blocks() {
            let mut rest = b;
            while !rest.is_empty() {
                let take = rest.len().min(n - len);
                pieces.push(&rest[..take]);
                len += take;
                rest = &rest[take..];
                if len == n {
                    if !f(Run {
                        pieces: &pieces,
                        len,
                    }) {
                        return;
                    }
                    pieces.clear();
                    len = 0;
                }
            }
        }
        if len > 0 {
            f(Run {
                pieces: &pieces,
                len,
            });
        }
    }
}

/// A file's rows: pieces of blocks, in order.
#[derive(Clone, Copy)]
struct Run<'a> {
    pieces: &'a [&'a [Row]],
    len: usize,
}

impl<'a> Run<'a> {
    fn iter(&self) -> RunIter<'a> {
        RunIter {
            rest: self.pieces,
            piece: [].iter(),
            left: self.len,
        }
    }
}

/// The rows of a `Run`, with their number known (the column builders size their buffers by
/// it).
#[derive(Clone)]
struct RunIter<'a> {
    rest: &'a [&'a [Row]],
    piece: std::slice::Iter<'a, Row>,
    left: usize,
}

impl<'a> Iterator for RunIter<'a> {
    type Item = &'a Row;

    #[inline]
    fn next(&mut self) -> Option<&'a Row> {
        loop {
            if let Some(r) = self.piece.next() {
                self.left -= 1;
                return Some(r);
            }
            let (first, rest) = self.rest.split_first()?;
            self.piece = first.iter();
            self.rest = rest;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RunIter<'_> {}

/// What every worker's tap shares: the dataset, the names behind the compact values, how
/// big a file gets.
pub struct EventSink {
    pub dataset: Dataset,
    models: Vec<String>,
    firmwares: Vec<String>,
    sources: Vec<String>,
    layout: FileLayout,
    /// A column of null message ids as long as a file can be, sliced for each file without
    /// one (made afresh, it was a file's rows zeroed again, 8 bytes a row).
    no_message_ids: ArrayRef,
    row_group: usize,
    buffer_rows: usize,
}

/// The events' columns (`day` and `region` are the partition directories), as batches have
/// them: the device ids as numbers, text in the file (`columns::device_id_field`).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("ts", timestamp_type(), false),
        device_id_field("device_id", true),
        field("alert_code", dictionary_type(), false),
        field("device_type", dictionary_type(), false),
        field("generation", dictionary_type(), false),
        field("model", dictionary_type(), true),
        field("firmware_version", dictionary_type(), true),
        field("alerts", DataType::Int32, false),
        field("message_id", DataType::Int64, true),
        field("source", dictionary_type(), false),
    ]))
}

/// The events' writer settings. Timestamps arrive in order within a partition (mostly):
/// DELTA_BINARY_PACKED stores their differences in a few bits each, and Snappy then has a
/// third of the bytes to compress (the column is 4x smaller than plain with Snappy).
fn props(row_group: usize) -> WriterProperties {
    let p = writer_properties(
        &["ts", "device_id", "message_id"],
        &[
            "device_id",
            "alert_code",
            "device_type",
            "generation",
            "model",
            "firmware_version",
            "source",
        ],
        row_group,
    );
    p.into_builder()
        .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
        .build()
}

impl EventSink {
    /// `models` and `firmwares` are the inventory's names (after any firmware history was
    /// installed); `sources` the inputs' names.
    pub fn new(
        dataset: Dataset,
        models: Vec<String>,
        firmwares: Vec<String>,
        sources: Vec<String>,
        row_group: usize,
        buffer_rows: usize,
    ) -> Result<EventSink, ParquetError> {
        let layout = FileLayout::new(schema(), &props(row_group))
            .map_err(|cause| ParquetError::parquet(dataset.root(), cause))?;
        Ok(EventSink {
            dataset,
            models,
            firmwares,
            sources,
            layout,
            no_message_ids: Arc::new(Int64Array::new_null(row_group.clamp(1, 1 << 20))),
            row_group: row_group.max(1),
            buffer_rows: buffer_rows.max(row_group),
        })
    }

    /// Writes rows of one partition as files of at most `row_group` rows.
    fn write(&self, (day, region): (Day, Region), rows: &Rows) {
        if rows.len == 0 || self.dataset.failed() {
            return;
        }
        let dirs = [
            partition_dir("day", &format_day(day)),
            partition_dir("region", region.name()),
        ];
        rows.runs(self.row_group, |part| {
            let r = self
                .batch(part)
                .and_then(|b| self.dataset.write_with(&dirs, &[b], &self.layout));
            if let Err(e) = r {
                self.dataset.fail(e);
                return false;
            }
            true
        });
    }

    fn batch(&self, rows: Run<'_>) -> Result<RecordBatch, ParquetError> {
        let arrow = |cause| ParquetError::Arrow {
            what: "the events",
            cause,
        };
        let last_source = self.sources.len().saturating_sub(1) as u32;
        let c = Columns::gather(rows, last_source, |i| {
            (is_named(&self.models, i), is_named(&self.firmwares, i))
        });
        let code_names: Vec<&str> = c.code_names.iter().map(String::as_str).collect();
        let types: Vec<&str> = DeviceType::ALL.iter().map(|t| t.name()).collect();
        let gens: Vec<&str> = Generation::ALL.iter().map(|t| t.name()).collect();
        let models: Vec<&str> = self.models.iter().map(String::as_str).collect();
        let firmwares: Vec<&str> = self.firmwares.iter().map(String::as_str).collect();
        let sources: Vec<&str> = self.sources.iter().map(String::as_str).collect();
        let cols: Vec<ArrayRef> = vec![
            timestamp_micros(c.ts),
            device_numbers_of(c.devices, c.device_nulls),
            dictionary_of_keys(c.codes, &code_names).map_err(arrow)?,
            dictionary_of_keys(c.types, &types).map_err(arrow)?,
            dictionary_of_keys(c.gens, &gens).map_err(arrow)?,
            dictionary_with_nulls(c.models, c.model_nulls, &models).map_err(arrow)?,
            dictionary_with_nulls(c.firmwares, c.firmware_nulls, &firmwares).map_err(arrow)?,
            Arc::new(Int32Array::from(c.counts)),
            // Message ids: none at all in CSV and most JSON feeds (a null column made whole).
            match c.message_ids {
                Some(ids) => Arc::new(Int64Array::from(ids)),
                None if rows.len <= self.no_message_ids.len() => {
                    self.no_message_ids.slice(0, rows.len)
                }
                None => Arc::new(Int64Array::new_null(rows.len)),
            },
            dictionary_of_keys(c.sources, &sources).map_err(arrow)?,
        ];
        RecordBatch::try_new(self.layout.schema().clone(), cols).map_err(arrow)
    }
}

/// A file's columns, gathered from its rows in one pass: each column a pass of its own
/// read the file's 48-byte rows ten times over (6 MB a file, more than the cache holds).
struct Columns {
    ts: Vec<i64>,
    devices: Vec<u64>,
    device_nulls: Option<NullBuffer>,
    codes: Vec<i32>,
    /// The codes' names, in the order their keys were given.
    code_names: Vec<String>,
    types: Vec<i32>,
    gens: Vec<i32>,
    models: Vec<i32>,
    model_nulls: Option<NullBuffer>,
    firmwares: Vec<i32>,
    firmware_nulls: Option<NullBuffer>,
    counts: Vec<i32>,
    /// `None` when no row has a message id.
    message_ids: Option<Vec<Option<i64>>>,
    sources: Vec<i32>,
}

impl Columns {
    /// `named(i)`: whether the model and the firmware numbered `i` have names (a row's are
    /// null otherwise, or when the inventory does not know its device); a source past
    /// `last_source` is taken as that one.
    fn gather(rows: Run<'_>, last_source: u32, named: impl Fn(usize) -> (bool, bool)) -> Columns {
        let n = rows.len;
        let mut c = Columns {
            ts: Vec::with_capacity(n),
            devices: Vec::with_capacity(n),
            device_nulls: None,
            codes: Vec::with_capacity(n),
            code_names: Vec::new(),
            types: Vec::with_capacity(n),
            gens: Vec::with_capacity(n),
            models: Vec::with_capacity(n),
            model_nulls: None,
            firmwares: Vec::with_capacity(n),
            firmware_nulls: None,
            counts: Vec::with_capacity(n),
            message_ids: None,
            sources: Vec::with_capacity(n),
        };
        // Null bitmaps are made only once a null comes (`NullBufferBuilder` is lazy).
        let mut device_nulls = NullBufferBuilder::new(n);
        let mut model_nulls = NullBufferBuilder::new(n);
        let mut firmware_nulls = NullBufferBuilder::new(n);
        // Codes: a small dictionary of the codes in these rows. A code's key is found in a
        // small direct-mapped table first (a row's code, hashed, was 2% of an export).
        let mut code_keys: FxHashMap<AlertCode, i32> = FxHashMap::default();
        let mut recent = [(u32::MAX, 0i32); 256];
        // Whether the models and firmwares numbered below 256 are named, looked up once.
        let mut named_small = [(false, false); 256];
        for (i, slot) in named_small.iter_mut().enumerate() {
            *slot = named(i);
        }
        let named_of = |i: u16| match named_small.get(i as usize) {
            Some(&k) => k,
            None => named(i as usize),
        };
        let mut any_message = false;
        for piece in rows.pieces {
            for (j, r) in piece.iter().enumerate() {
                prefetch(piece, j + PREFETCH_AHEAD);
                c.ts.push(r.ts.saturating_mul(1000));
                c.devices.push(if r.has_device { r.device } else { 0 });
                device_nulls.append(r.has_device);
                let code = r.code.0;
                let slot = &mut recent[((code ^ code >> 8 ^ code >> 16) & 255) as usize];
                let key = if slot.0 == code {
                    slot.1
                } else {
                    let names = &mut c.code_names;
                    let key = *code_keys.entry(r.code).or_insert_with(|| {
                        names.push(r.code.to_string());
                        names.len() as i32 - 1
                    });
                    *slot = (code, key);
                    key
                };
                c.codes.push(key);
                let info = r.info();
                c.types.push(info.device_type as i32);
                c.gens.push(info.generation as i32);
                let (has_model, has_firmware) = match r.known {
                    true => (named_of(info.model).0, named_of(info.firmware).1),
                    false => (false, false),
                };
                c.models.push(if has_model { info.model as i32 } else { 0 });
                model_nulls.append(has_model);
                c.firmwares.push(if has_firmware {
                    info.firmware as i32
                } else {
                    0
                });
                firmware_nulls.append(has_firmware);
                c.counts.push(r.count.min(i32::MAX as u32) as i32);
                any_message |= r.message_id != 0;
                c.sources.push(r.source.min(last_source) as i32);
            }
        }
        if any_message {
            c.message_ids = Some(
                rows.iter()
                    .map(|r| (r.message_id != 0).then_some(r.message_id as i64))
                    .collect(),
            );
        }
        c.device_nulls = device_nulls.finish();
        c.model_nulls = model_nulls.finish();
        c.firmware_nulls = firmware_nulls.finish();
        c
    }
}

/// Rows ahead of the one being gathered that are asked for early: a file's rows are read
/// from memory the cache no longer holds, and the first load of each row stalled.
const PREFETCH_AHEAD: usize = 32;

/// Asks the processor to bring `rows[i]` into the cache (nothing when `i` is past the end).
#[inline(always)]
fn prefetch(rows: &[Row], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = rows.get(i) {
        // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (r as *const Row).cast::<i8>(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, i);
}

/// One worker's tap: rows buffered per partition.
pub struct EventTap {
    sink: Arc<EventSink>,
    /// Each partition's rows, in the order first seen (written-out ones stay, emptied).
    parts: Vec<((Day, Region), Rows)>,
    /// Where a partition is in `parts`.
    index: FxHashMap<(Day, Region), u32>,
    /// By region, the day its rows came from last and that partition's place: records come
    /// mostly in time order, so nearly every row finds its partition here. Hashing the key
    /// for every row, into a table of a few hundred partitions, was a tenth of the tap's time.
    latest: [(Day, u32); 16],
    buffered: usize,
    source: u32,
    /// Emptied blocks, for the next partitions.
    spare: Vec<Vec<Row>>,
}

impl EventTap {
    pub fn new(sink: Arc<EventSink>) -> EventTap {
        EventTap {
            sink,
            parts: Vec::new(),
            index: FxHashMap::default(),
            latest: [(Day::MIN, u32::MAX); 16],
            buffered: 0,
            source: 0,
            spare: Vec::new(),
        }
    }

    /// The place in `parts` of the partition `(day, region)`, added if new.
    #[inline]
    fn part(&mut self, day: Day, region: Region) -> usize {
        let latest = &mut self.latest[region as usize & 15];
        if latest.0 == day && latest.1 != u32::MAX {
            return latest.1 as usize;
        }
        let parts = &mut self.parts;
        let i = *self.index.entry((day, region)).or_insert_with(|| {
            parts.push(((day, region), Rows::default()));
            (parts.len() - 1) as u32
        });
        *latest = (day, i);
        i as usize
    }

    /// Writes the largest partition (to keep the worker under its row budget).
    fn spill(&mut self) {
        if let Some(i) = (0..self.parts.len()).max_by_key(|&i| self.parts[i].1.len) {
            self.write_part(i);
        }
    }

    /// Writes the rows of the partition at `i` in `parts`, and keeps their blocks.
    fn write_part(&mut self, i: usize) {
        let (key, rows) = &mut self.parts[i];
        let (key, rows) = (*key, std::mem::take(rows));
        self.buffered -= rows.len;
        self.sink.write(key, &rows);
        rows.recycle(&mut self.spare);
    }

    /// Writes every partition still buffered, on `threads` threads.
    pub fn finish(self, threads: usize) {
        let sink = &self.sink;
        let mut parts: Vec<((Day, Region), Rows)> =
            self.parts.into_iter().filter(|(_, r)| r.len > 0).collect();
        parts.sort_by_key(|(k, _)| *k);
        let threads = threads.clamp(1, parts.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((k, rows)) = parts.get(i) else { break };
                        sink.write(*k, rows);
                    }
                });
            }
        });
    }
}

impl Tap for EventTap {
    fn alert(&mut self, ev: &Event, code: AlertCode, known: Option<u64>, day: Day) {
        let info = known.unwrap_or_else(|| DeviceInfo::from_record(&ev.attrs).pack());
        let region = DeviceInfo::unpack(info).region;
        let row = Row {
            ts: ev.ts,
            device: ev.device.map(|d| d.0).unwrap_or(0),
            message_id: ev.message_id,
            info,
            code,
            count: ev.count,
            source: self.source,
            has_device: ev.device.is_some(),
            known: known.is_some(),
        };
        let i = self.part(day, region);
        let rows = &mut self.parts[i].1;
        rows.push(row, &mut self.spare);
        self.buffered += 1;
        if rows.len >= self.sink.row_group {
            self.write_part(i);
        } else if self.buffered >= self.sink.buffer_rows {
            self.spill();
        }
    }

    fn set_source(&mut self, source: usize) {
        self.source = source as u32;
    }

    /// Takes over the other worker's buffered rows (written at `finish`, by all cores).
    fn merge_from(&mut self, other: Box<dyn Tap>) {
        let Ok(other) = other.into_any().downcast::<EventTap>() else {
            return;
        };
        for ((day, region), rows) in other.parts {
            if rows.len > 0 {
                self.buffered += rows.len;
                let i = self.part(day, region);
                self.parts[i].1.append(rows);
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64) -> Row {
        Row {
            ts,
            device: 0,
            message_id: 0,
            info: 0,
            code: AlertCode::device(0x8F35),
            count: 1,
            source: 0,
            has_device: false,
            known: false,
        }
    }

    fn filled(from: i64, n: i64, spare: &mut Vec<Vec<Row>>) -> Rows {
        let mut r = Rows::default();
        (from..from + n).for_each(|t| r.push(row(t), spare));
        r
    }

    /// Runs of any length over blocks (full, partial in the middle after a merge, the last
    /// filling) give every row once, in order, each run `n` long but the last.
    #[test]
    fn runs_cut_the_rows_in_order_across_blocks() {
        let mut spare = Vec::new();
        let mut rows = filled(0, 2 * BLOCK as i64 + 100, &mut spare);
        rows.append(filled(20_000, 7, &mut spare));
        rows.append(filled(30_000, BLOCK as i64 + 3, &mut spare));
        let want: Vec<i64> = (0..2 * BLOCK as i64 + 100)
            .chain(20_000..20_007)
            .chain(30_000..30_000 + BLOCK as i64 + 3)
            .collect();
        assert_eq!(rows.len, want.len());
        for n in [
            1,
            5,
            100,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK,
            10 * BLOCK,
        ] {
            let mut got = Vec::new();
            let mut lens = Vec::new();
            rows.runs(n, |run| {
                lens.push(run.len);
                // The rows' number is told exactly all the way.
                let mut it = run.iter();
                let mut seen = 0;
                assert_eq!(it.len(), run.len);
                while let Some(r) = it.next() {
                    got.push(r.ts);
                    seen += 1;
                    assert_eq!(it.len(), run.len - seen);
                }
                assert_eq!(seen, run.len);
                true
            });
            assert_eq!(got, want, "runs of {n}");
            let (last, whole) = lens.split_last().unwrap();
            assert!(
                whole.iter().all(|&l| l == n) && *last <= n,
                "runs of {n}: {lens:?}"
            );
        }
        // A run stops when asked to.
        let mut calls = 0;
        rows.runs(10, |_| {
            calls += 1;
            calls < 3
        });
        assert_eq!(calls, 3);
    }

    /// One pass gathers what a pass a column gave: a row without a device is null there,
    /// a device the inventory lacks or a model or firmware without a name is null there,
    /// codes are keyed in the order they come, message ids are null when absent and the
    /// column is left out when no row has one, a source past the last is the last.
    #[test]
    fn columns_are_gathered_in_one_pass_as_each_column_would_be() {
        let info = |model: u16, firmware: u16| {
            DeviceInfo {
                region: Region::North,
                device_type: DeviceType::ALL[2],
                generation: Generation::ALL[1],
                model,
                firmware,
                installed: None,
            }
            .pack()
        };
        let mut rows = Vec::new();
        for i in 0..700i64 {
            rows.push(Row {
                ts: 1_704_067_200_000 + i,
                device: 0x00DB_0000_0000_0000 + i as u64,
                message_id: if i % 5 == 0 { 0 } else { 9_000 + i as u64 },
                info: info((i % 3) as u16, (i % 4) as u16),
                code: AlertCode::device([0x8F35, 0x81B8, 0x8F0A][(i % 7 % 3) as usize]),
                count: 1 + (i % 2) as u32,
                source: (i % 4) as u32,
                has_device: i % 11 != 0,
                known: i % 13 != 0,
            });
        }
        // Model 2 and firmware 3 have no name (empty); 0 is the empty name, as in the
        // inventory's lists.
        let named = |i: usize| (i == 1, i == 1 || i == 2);
        let blocks: Vec<&[Row]> = rows.chunks(300).collect();
        let run = Run {
            pieces: &blocks,
            len: rows.len(),
        };
        let c = Columns::gather(run, 2, named);
        let nulls = |n: &Option<NullBuffer>| -> Vec<bool> {
            (0..rows.len())
                .map(|i| n.as_ref().is_none_or(|n| n.is_valid(i)))
                .collect()
        };
        let (devices, models, firmwares) = (
            nulls(&c.device_nulls),
            nulls(&c.model_nulls),
            nulls(&c.firmware_nulls),
        );
        let messages = c.message_ids.as_ref().expect("some rows have message ids");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(c.ts[i], r.ts * 1000);
            assert_eq!(devices[i], r.has_device, "row {i}");
            if r.has_device {
                assert_eq!(c.devices[i], r.device);
            }
            assert_eq!(c.code_names[c.codes[i] as usize], r.code.to_string());
            assert_eq!(c.types[i], DeviceType::ALL[2] as i32);
            assert_eq!(c.gens[i], Generation::ALL[1] as i32);
            let (model, firmware) = (r.info().model, r.info().firmware);
            assert_eq!(models[i], r.known && model == 1, "row {i}");
            assert_eq!(firmwares[i], r.known && (firmware == 1 || firmware == 2));
            if models[i] {
                assert_eq!(c.models[i], model as i32);
            }
            if firmwares[i] {
                assert_eq!(c.firmwares[i], firmware as i32);
            }
            assert_eq!(c.counts[i], r.count as i32);
            assert_eq!(
                messages[i],
                (r.message_id != 0).then_some(r.message_id as i64)
            );
            assert_eq!(c.sources[i], r.source.min(2) as i32);
        }
        assert_eq!(c.code_names, ["8F35", "81B8", "8F0A"]);
        // No message id anywhere: no column gathered (a null one is made whole).
        for r in &mut rows {
            r.message_id = 0;
        }
        let blocks: Vec<&[Row]> = vec![&rows];
        let run = Run {
            pieces: &blocks,
            len: rows.len(),
        };
        assert!(Columns::gather(run, 2, named).message_ids.is_none());
    }

    /// Blocks written out are used again: a worker's row memory does not grow with the
    /// partitions it has written.
    #[test]
    fn written_blocks_are_used_again() {
        let mut spare = Vec::new();
        let first = filled(0, 3 * BLOCK as i64, &mut spare);
        first.recycle(&mut spare);
        assert_eq!(spare.len(), 3);
        let at: Vec<*const Row> = spare.iter().map(|b| b.as_ptr()).collect();
        let second = filled(0, 2 * BLOCK as i64 + 1, &mut spare);
        assert_eq!(spare.len(), 0);
        let used: Vec<*const Row> = second.blocks().map(|b| b.as_ptr()).collect();
        assert!(used.iter().all(|p| at.contains(p)));
    }
}
