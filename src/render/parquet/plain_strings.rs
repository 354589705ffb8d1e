//! PLAIN string column chunks (device ids, hub ids), written page by page from the Arrow
//! array, with the pages of ids compressed by `eui_snappy`.
//!
//! Device ids are the export's largest column by far (23 characters a row, 82% of an events
//! file), and they are unique enough that a dictionary does not pay. parquet-rs would copy
//! them into pages and hand each page to the general Snappy compressor; here ids given as
//! numbers go straight from the numbers to compressed pages (`eui_snappy::compress_ids`),
//! a text page whose values are all 23 bytes long (ids as `columns::device_ids` writes them)
//! to the id compressor, and any other page to the general one. Readers see PLAIN pages
//! compressed with Snappy either way.

use super::eui_snappy;
use super::pages::{Chunk, Written, compress, data_page, definition_levels, writable};
use crate::model::DeviceId;
use arrow_array::{Array, StringArray, UInt64Array};
use arrow_buffer::NullBuffer;
use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::PageWriter;
use parquet::errors::{ParquetError, Result};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

thread_local! {
    /// A page's bytes and their compressed form, kept from page to page: fresh buffers of
    /// a megabyte a page were faulted in (and zeroed) every time.
    static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// Whether `array` can be written here: a non-empty `Utf8` array or device ids as numbers
/// (`columns::device_numbers`), compressed with Snappy or not at all.
pub fn supported(array: &dyn Array, compression: Compression) -> bool {
    let any = array.as_any();
    (any.is::<StringArray>() || any.is::<UInt64Array>()) && writable(array, compression)
}

/// Encodes a `Utf8` array, or device ids given as numbers, as the column chunk `descr` in
/// PLAIN pages of at most `page_rows` rows and about `page_bytes` bytes (its nulls become
/// definition levels when the column is optional; a null in a required column is an error).
/// Ids as numbers make the pages and bytes their text would: each id's canonical text
/// (`AA-BB-CC-DD-EE-FF-GG-HH`) is written straight into the page, with no Arrow string
/// array between.
pub fn encode(
    array: &dyn Array,
    descr: ColumnDescPtr,
    compression: Compression,
    page_rows: usize,
    page_bytes: usize,
) -> Result<Chunk> {
    let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
    let pages = Pages {
        descr,
        compression,
        page_rows,
        page_bytes,
        nulls: nulls.clone(),
        rows: array.len(),
    };
    if let Some(ids) = array.as_any().downcast_ref::<UInt64Array>() {
        let values = ids.values();
        // The text's bytes up to a row (as for text: a length for every row, nulls too).
        let present = |start: usize, end: usize| match &nulls {
            Some(n) => end - start - n.slice(start, end - start).null_count(),
            None => end - start,
        };
        let nulls = nulls.as_ref();
        return pages.write(
            |start, end| ID_LEN * present(start, end) + 4 * (end - start),
            |raw, start, end, scratch| {
                let ids = (start..end)
                    .filter(|&i| nulls.is_none_or(|n| n.is_valid(i)))
                    .map(|i| values[i]);
                if compression == Compression::SNAPPY {
                    // Straight from the numbers to the compressed page.
                    let ids = Counted(ids, present(start, end));
                    let (c, raw_len) = eui_snappy::compress_ids(raw, ids, scratch);
                    return Ok((Bytes::copy_from_slice(c), raw_len));
                }
                ids.for_each(|id| raw.extend_from_slice(&id_record(id)));
                compress(std::mem::take(raw), compression)
            },
        );
    }
    let strings = array
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ParquetError::General("neither text nor device ids".into()))?;
    let offsets = strings.value_offsets();
    let values = strings.value_data();
    let nulls = pages.nulls.clone();
    pages.write(
        |start, end| (offsets[end] - offsets[start]) as usize + 4 * (end - start),
        |raw, start, end, scratch| {
            let values_start = raw.len();
            let mut ids = true;
            for i in start..end {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    continue;
                }
                let v = &values[offsets[i] as usize..offsets[i + 1] as usize];
                raw.extend_from_slice(&(v.len() as u32).to_le_bytes());
                raw.extend_from_slice(v);
                ids &= v.len() == ID_LEN;
            }
            if compression == Compression::SNAPPY && ids {
                // A page of nothing but 23-byte strings: the id compressor.
                let c = eui_snappy::compress(raw, values_start, scratch);
                return Ok((Bytes::copy_from_slice(c), raw.len()));
            }
            compress(std::mem::take(raw), compression)
        },
    )
}

/// An iterator with its length told (`filter` forgets it).
struct Counted<I>(I, usize);

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    #[inline(always)]
    fn next(&mut self) -> Option<I::Item> {
        let v = self.0.next();
        self.1 = self.1.saturating_sub(v.is_some() as usize);
        v
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

/// Characters of a device id's text.
const ID_LEN: usize = 23;

/// A PLAIN record of a device id: its length (23, four bytes) and its canonical text.
#[inline(always)]
fn id_record(id: u64) -> [u8; 4 + ID_LEN] {
    let mut r = [0; 4 + ID_LEN];
    r[..4].copy_from_slice(&(ID_LEN as u32).to_le_bytes());
    r[4..].copy_from_slice(&DeviceId(id).to_bytes());
    r
}

/// A column chunk's rows to be written as PLAIN pages.
struct Pages {
    descr: ColumnDescPtr,
    compression: Compression,
    page_rows: usize,
    page_bytes: usize,
    nulls: Option<NullBuffer>,
    rows: usize,
}

impl Pages {
    /// Writes the pages: `bytes_to(start, end)` is the size of rows `start..end` in a page;
    /// `page(raw, start, end, scratch)` gets the page's definition levels in `raw` and
    /// returns the page's bytes with the rest (rows `start..end`, nulls skipped),
    /// compressed, and their uncompressed size; `raw` and `scratch` are kept for the next.
    fn write(
        self,
        bytes_to: impl Fn(usize, usize) -> usize,
        mut page: impl FnMut(&mut Vec<u8>, usize, usize, &mut Vec<u8>) -> Result<(Bytes, usize)>,
    ) -> Result<Chunk> {
        let Pages {
            descr,
            compression,
            page_rows,
            page_bytes,
            nulls,
            rows,
        } = self;
        let nullable = descr.max_def_level() > 0;
        if !nullable && nulls.is_some() {
            return Err(ParquetError::General(format!(
                "column {} is required but has nulls",
                descr.name()
            )));
        }
        // Room for the pages as ids compress (about 15 of 27 bytes), so the chunk is not
        // copied again and again as it grows.
        let mut sink = TrackedWrite::new(Vec::with_capacity(bytes_to(0, rows) * 3 / 5 + 4096));
        let mut data = Vec::new();
        SCRATCH.with_borrow_mut(|(raw, scratch)| -> Result<()> {
            let mut w = SerializedPageWriter::new(&mut sink);
            let mut start = 0;
            while start < rows {
                // Rows up to the row limit, or until the values pass the byte limit.
                let mut end = (start + page_rows.max(1)).min(rows);
                while end > start + 1 && bytes_to(start, end) > page_bytes.max(1) {
                    end = start + (end - start) / 2;
                }
                raw.clear();
                raw.reserve(bytes_to(start, end) + 16);
                if nullable {
                    let valid = nulls.as_ref().map(|n| n.slice(start, end - start));
                    definition_levels(raw, end - start, valid.as_ref());
                }
                let (buf, raw_len) = page(raw, start, end, scratch)?;
                let spec = w.write_page(data_page(buf, end - start, Encoding::PLAIN, raw_len))?;
                data.push((spec, start));
                start = end;
            }
            w.close()
        })?;
        Written {
            descr,
            compression,
            rows,
            encodings: vec![Encoding::PLAIN, Encoding::RLE],
            dictionary: None,
            data_encoding: Encoding::PLAIN,
            data,
            statistics: None,
        }
        .into_chunk(Bytes::from(sink.into_inner()?))
    }
}

#[cfg(test)]
mod tests {
    use crate::render::parquet::columns::{device_id_field, device_ids, device_numbers};
    use crate::render::parquet::{Dataset, RunId, writer_properties};
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::sync::Arc;

    /// Writes `cols` (named "device_id" and "hub") as one file with pages of 300 rows and
    /// returns its bytes.
    fn file_of(cols: Vec<(Field, ArrayRef)>, statistics: bool) -> Vec<u8> {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols.into_iter().unzip();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dataset::new(dir.path(), RunId("1d".into()));
        let names = ["device_id", "hub"];
        let no_stats: &[&str] = if statistics { &[] } else { &names };
        let props = writer_properties(&names, no_stats, 1 << 20)
            .into_builder()
            .set_data_page_row_count_limit(300)
            .build();
        d.write(&[], &[batch], &props).unwrap();
        d.commit().unwrap();
        std::fs::read(dir.path().join("part-1d-0.parquet")).unwrap()
    }

    /// Ids given as numbers make the same file, byte for byte, as the same ids given as
    /// text: the same pages, compressed the same way, the same schema (no trace of the
    /// numbers); and where no hand-written encoder takes them (statistics asked for), they
    /// are written as text all the same.
    #[test]
    fn ids_as_numbers_write_what_their_text_writes() {
        let ids: Vec<Option<u64>> = (0..2500u64)
            .map(|i| (i % 9 != 4).then_some(0x70B3_D500_0000_0000 | ((i * 0x9E37_79B9) >> 16)))
            .collect();
        let hubs: Vec<Option<u64>> = (0..2500u64).map(|i| Some(i * 0x0101_0101)).collect();
        for statistics in [false, true] {
            let as_text = file_of(
                vec![
                    (
                        Field::new("device_id", DataType::Utf8, true),
                        device_ids(ids.clone().into_iter()),
                    ),
                    (
                        Field::new("hub", DataType::Utf8, false),
                        device_ids(hubs.clone().into_iter()),
                    ),
                ],
                statistics,
            );
            let as_numbers = file_of(
                vec![
                    (
                        device_id_field("device_id", true),
                        device_numbers(ids.clone().into_iter()),
                    ),
                    (
                        device_id_field("hub", false),
                        device_numbers(hubs.clone().into_iter()),
                    ),
                ],
                statistics,
            );
            assert!(as_text == as_numbers, "statistics {statistics}");
            let r = SerializedFileReader::new(Bytes::from(as_numbers)).unwrap();
            let stats = r.metadata().row_group(0).column(0).statistics().is_some();
            assert_eq!(stats, statistics);
        }
    }

    /// A file with id columns (with and without nulls) and other strings, in pages of a few
    /// hundred rows, reads back (parquet-rs's reader) as written, page by page.
    #[test]
    fn string_columns_read_back_as_written_across_pages() {
        let n = 2500u64;
        let ids: Vec<Option<u64>> = (0..n)
            .map(|i| (i % 7 != 3).then_some(0x000D_6F00_0000_0000 | ((i * 0x9E37_79B9) >> 20)))
            .collect();
        let hubs: Vec<Option<u64>> = (0..n)
            .map(|i| Some(0xBC33_AC00_0000_0000 | (i / 10)))
            .collect();
        let notes: Vec<Option<String>> = (0..n)
            .map(|i| (i % 5 != 0).then(|| "é-".repeat((i % 13) as usize)))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("device_id", DataType::Utf8, true),
            Field::new("hub", DataType::Utf8, false),
            Field::new("note", DataType::Utf8, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            device_ids(ids.clone().into_iter()),
            device_ids(hubs.clone().into_iter()),
            Arc::new(StringArray::from(notes.clone())),
        ];
        let batch = RecordBatch::try_new(schema, cols).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dataset::new(dir.path(), RunId("0e".into()));
        let names = ["device_id", "hub", "note"];
        let props = writer_properties(&names, &names, 1 << 20)
            .into_builder()
            .set_data_page_row_count_limit(300)
            .build();
        d.write(&[], &[batch], &props).unwrap();
        d.commit().unwrap();

        let path = dir.path().join("part-0e-0.parquet");
        let meta = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let chunk = meta.metadata().row_group(0).column(0).clone();
        assert!(chunk.dictionary_page_offset().is_none());
        let pages = meta
            .get_row_group(0)
            .unwrap()
            .get_column_page_reader(0)
            .unwrap()
            .map(|p| p.unwrap().num_values())
            .collect::<Vec<_>>();
        assert_eq!(pages, [300, 300, 300, 300, 300, 300, 300, 300, 100]);
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .with_batch_size(1000);
        let text = |id: Option<u64>| id.map(|d| crate::model::DeviceId(d).to_string());
        let mut at = 0;
        for b in r.build().unwrap() {
            let b = b.unwrap();
            for i in 0..b.num_rows() {
                let get = |c: usize| {
                    let a = b.column(c).as_string::<i32>();
                    (!a.is_null(i)).then(|| a.value(i).to_string())
                };
                assert_eq!(get(0), text(ids[at + i]), "row {}", at + i);
                assert_eq!(get(1), text(hubs[at + i]));
                assert_eq!(get(2), notes[at + i]);
            }
            at += b.num_rows();
        }
        assert_eq!(at, n as usize);
    }
}
