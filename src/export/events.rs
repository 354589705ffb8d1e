//! The events dataset: every accepted alert record as a row, written by a tap on the alert
//! fold (`analyze::alerts::Tap`), so it sees exactly the records `alerts` counts (filters and
//! duplicate detection applied, throttled counts honoured) with the device's attributes and
//! the firmware it ran at the alert's time.
//!
//! Memory stays bounded: each worker buffers rows per partition (day x region) in a compact
//! form (`event_rows`: 32 bytes a row) and writes a partition out as a file of one row group
//! when it reaches `row_group` rows, or, when the worker's rows pass `buffer_rows` in all,
//! its largest partition. What is left at the end is written by all cores.
//!
//! A partition's rows are held in blocks of `BLOCK` rows, and a worker keeps the blocks of
//! the partitions it wrote for the next ones: its row memory is faulted in once. A vector
//! per partition, grown by doubling and freed after each write, copied its rows a dozen
//! times and touched fresh pages at every growth: 28% of an export's user-space page faults,
//! which a virtual machine charges dearly for.

use super::event_rows::{Row, Rows, Run, Spare};
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
/// read the file's rows ten times over (4 MB a file, more than the cache holds).
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
        for piece in rows.pieces {
            let piece = piece.rows;
            let len = piece.len();
            // Each column's next `len` places, written below, one a row: a push a column
            // checked the capacity ten times a row.
            let ts = &mut c.ts.spare_capacity_mut()[..len];
            let devices = &mut c.devices.spare_capacity_mut()[..len];
            let codes = &mut c.codes.spare_capacity_mut()[..len];
            let types = &mut c.types.spare_capacity_mut()[..len];
            let gens = &mut c.gens.spare_capacity_mut()[..len];
            let models = &mut c.models.spare_capacity_mut()[..len];
            let firmwares = &mut c.firmwares.spare_capacity_mut()[..len];
            let counts = &mut c.counts.spare_capacity_mut()[..len];
            let sources = &mut c.sources.spare_capacity_mut()[..len];
            for (j, r) in piece.iter().enumerate() {
                prefetch(piece, j + PREFETCH_AHEAD);
                ts[j].write(r.ts.saturating_mul(1000));
                let has_device = r.has_device();
                devices[j].write(if has_device { r.device } else { 0 });
                device_nulls.append(has_device);
                let code = r.code();
                let slot = &mut recent[((code.0 ^ code.0 >> 8 ^ code.0 >> 16) & 255) as usize];
                let key = if slot.0 == code.0 {
                    slot.1
                } else {
                    let names = &mut c.code_names;
                    let key = *code_keys.entry(code).or_insert_with(|| {
                        names.push(code.to_string());
                        names.len() as i32 - 1
                    });
                    *slot = (code.0, key);
                    key
                };
                codes[j].write(key);
                types[j].write(r.device_type() as i32);
                gens[j].write(r.generation() as i32);
                let (has_model, has_firmware) = match r.known() {
                    true => (named_of(r.model).0, named_of(r.firmware).1),
                    false => (false, false),
                };
                models[j].write(if has_model { r.model as i32 } else { 0 });
                model_nulls.append(has_model);
                firmwares[j].write(if has_firmware { r.firmware as i32 } else { 0 });
                firmware_nulls.append(has_firmware);
                counts[j].write(r.count.min(i32::MAX as u32) as i32);
                sources[j].write(r.source.min(last_source) as i32);
            }
            // SAFETY: the loop wrote the `len` places after each column's length (one a row
            // of the piece, `len` rows), and `with_capacity(n)` made room for every piece's.
            unsafe {
                let grow = |v: usize| v + len;
                c.ts.set_len(grow(c.ts.len()));
                c.devices.set_len(grow(c.devices.len()));
                c.codes.set_len(grow(c.codes.len()));
                c.types.set_len(grow(c.types.len()));
                c.gens.set_len(grow(c.gens.len()));
                c.models.set_len(grow(c.models.len()));
                c.firmwares.set_len(grow(c.firmwares.len()));
                c.counts.set_len(grow(c.counts.len()));
                c.sources.set_len(grow(c.sources.len()));
            }
        }
        if rows.any_message() {
            c.message_ids = Some(
                rows.messages()
                    .map(|m| (m != 0).then_some(m as i64))
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
    spare: Spare,
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
        let info = match known {
            Some(packed) => DeviceInfo::unpack(packed),
            None => DeviceInfo::from_record(&ev.attrs),
        };
        let region = info.region;
        let device = ev.device.map(|d| d.0);
        let row = Row::new(
            ev.ts,
            device,
            code,
            ev.count,
            &info,
            known.is_some(),
            self.source,
        );
        let i = self.part(day, region);
        let rows = &mut self.parts[i].1;
        rows.push(row, ev.message_id, &mut self.spare);
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
    use crate::export::event_rows::Piece;

    /// One pass gathers what a pass a column gave: a row without a device is null there,
    /// a device the inventory lacks or a model or firmware without a name is null there,
    /// codes are keyed in the order they come, message ids are null when absent and the
    /// column is left out when no row has one, a source past the last is the last.
    #[test]
    fn columns_are_gathered_in_one_pass_as_each_column_would_be() {
        let info = |model: u16, firmware: u16| DeviceInfo {
            region: Region::North,
            device_type: DeviceType::ALL[2],
            generation: Generation::ALL[1],
            model,
            firmware,
            installed: None,
        };
        let mut rows = Vec::new();
        let mut message_ids = Vec::new();
        for i in 0..700i64 {
            rows.push(Row::new(
                1_704_067_200_000 + i,
                (i % 11 != 0).then_some(0x00DB_0000_0000_0000 + i as u64),
                AlertCode::device([0x8F35, 0x81B8, 0x8F0A][(i % 7 % 3) as usize]),
                1 + (i % 2) as u32,
                &info((i % 3) as u16, (i % 4) as u16),
                i % 13 != 0,
                (i % 4) as u32,
            ));
            message_ids.push(if i % 5 == 0 { 0 } else { 9_000 + i as u64 });
        }
        // Model 2 and firmware 3 have no name (empty); 0 is the empty name, as in the
        // inventory's lists.
        let named = |i: usize| (i == 1, i == 1 || i == 2);
        // Pieces of 300 rows, the middle one without message ids (a block that met none).
        let pieces: Vec<Piece<'_>> = rows
            .chunks(300)
            .zip(message_ids.chunks(300))
            .enumerate()
            .map(|(k, (rows, messages))| Piece {
                rows,
                messages: if k == 1 { &[] } else { messages },
            })
            .collect();
        let run = Run {
            pieces: &pieces,
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
            assert_eq!(devices[i], i % 11 != 0, "row {i}");
            if devices[i] {
                assert_eq!(c.devices[i], 0x00DB_0000_0000_0000 + i as u64);
            }
            assert_eq!(c.code_names[c.codes[i] as usize], r.code().to_string());
            assert_eq!(c.types[i], DeviceType::ALL[2] as i32);
            assert_eq!(c.gens[i], Generation::ALL[1] as i32);
            let (known, model, firmware) = (i % 13 != 0, i % 3, i % 4);
            assert_eq!(models[i], known && model == 1, "row {i}");
            assert_eq!(firmwares[i], known && (firmware == 1 || firmware == 2));
            if models[i] {
                assert_eq!(c.models[i], model as i32);
            }
            if firmwares[i] {
                assert_eq!(c.firmwares[i], firmware as i32);
            }
            assert_eq!(c.counts[i], 1 + (i % 2) as i32);
            let m = if i / 300 == 1 { 0 } else { message_ids[i] };
            assert_eq!(messages[i], (m != 0).then_some(m as i64), "row {i}");
            assert_eq!(c.sources[i], (i % 4).min(2) as i32);
        }
        assert_eq!(c.code_names, ["8F35", "81B8", "8F0A"]);
        // No message id anywhere: no column gathered (a null one is made whole).
        let none = [Piece {
            rows: &rows,
            messages: &[],
        }];
        let run = Run {
            pieces: &none,
            len: rows.len(),
        };
        assert!(Columns::gather(run, 2, named).message_ids.is_none());
    }
}
