//! Files of one row group whose every column chunk was hand-written, written without
//! parquet-rs's file writer.
//!
//! Its `append_column` copies a chunk through an 8 KB stack buffer into the file's buffer and
//! that into the file: two copies of every byte of the export (400 MB on the reference job).
//! Here each chunk goes to the file from its own buffer in one write. The file is the one parquet-rs's writer makes of the same chunks: the magic, the
//! chunks, their offset indexes and the footer, the last two by parquet-rs's metadata writer,
//! the offsets moved from the chunk's to the file's as `append_column` moves them.

use super::pages::Chunk;
use parquet::errors::Result;
use parquet::file::metadata::page_index::PageIndexBuilder;
use parquet::file::metadata::{
    ColumnChunkMetaData, FileMetaData, ParquetMetaDataBuilder, ParquetMetaDataWriter,
    RowGroupMetaData,
};
use parquet::file::page_index::offset_index::OffsetIndexMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::TrackedWrite;
use parquet::schema::types::SchemaDescPtr;
use std::io::Write;
use std::sync::Arc;

/// Writes a file of one row group of `rows` rows, `chunks` its columns in the order of
/// `descr`, with the writer settings `props` (its version, `created_by` and key-value
/// metadata, the Arrow schema's among them).
pub fn write_file(
    file: std::fs::File,
    descr: &SchemaDescPtr,
    props: &WriterProperties,
    rows: usize,
    chunks: Vec<Chunk>,
) -> Result<()> {
    let mut failed = None;
    let mut out = TrackedWrite::new(Kept {
        file: &file,
        failed: &mut failed,
    });
    out.write_all(b"PAR1")?;
    let file_offset = out.bytes_written() as i64;
    let mut columns = Vec::with_capacity(chunks.len());
    let mut indexes = PageIndexBuilder::default();
    indexes.allocate_offset_indexes(1, chunks.len());
    let mut uncompressed = 0;
    for (i, Chunk { bytes, close }) in chunks.into_iter().enumerate() {
        let at = out.bytes_written() as i64;
        out.write_all(&bytes)?;
        let (column, index) = placed(close.metadata, close.offset_index, at)?;
        uncompressed += column.uncompressed_size();
        columns.push(column);
        if let Some(index) = index {
            indexes.put_offset_index(index, 0, i);
        }
    }
    let group = RowGroupMetaData::builder(descr.clone())
        .set_column_metadata(columns)
        .set_total_byte_size(uncompressed)
        .set_num_rows(rows as i64)
        .set_sorting_columns(props.sorting_columns().cloned())
        .set_ordinal(0)
        .set_file_offset(file_offset)
        .build()?;
    let file_metadata = FileMetaData::new(
        props.writer_version().as_num(),
        rows as i64,
        Some(props.created_by().to_string()),
        props.key_value_metadata().cloned(),
        descr.clone(),
        None,
    );
    let metadata = ParquetMetaDataBuilder::new(file_metadata)
        .set_row_groups(vec![group])
        .set_page_index(Some(Arc::new(indexes.build())))
        .build();
    // The writer flushes its buffer into `Kept` when it is dropped, at the end of `finish`:
    // an error there is kept, not lost.
    ParquetMetaDataWriter::new_with_tracked(out, &metadata)
        .with_preserve_page_index_locations(false)
        .finish()?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// A chunk's metadata and offset index with its pages' offsets moved from the chunk's
/// (starting at 0) to the file's (starting at `at`).
fn placed(
    chunk: ColumnChunkMetaData,
    index: Option<OffsetIndexMetaData>,
    at: i64,
) -> Result<(ColumnChunkMetaData, Option<OffsetIndexMetaData>)> {
    let (data, dictionary) = (chunk.data_page_offset(), chunk.dictionary_page_offset());
    let start = dictionary.unwrap_or(data);
    let moved = |offset: i64| offset - start + at;
    // Everything else as the encoder recorded it.
    let chunk = chunk
        .into_builder()
        .set_data_page_offset(moved(data))
        .set_dictionary_page_offset(dictionary.map(moved))
        .build()?;
    let index = index.map(|mut index| {
        for page in &mut index.page_locations {
            page.offset = moved(page.offset);
        }
        index
    });
    Ok((chunk, index))
}

/// The file, keeping the first write error: the metadata writer's buffer is flushed when
/// it is dropped, where an error would otherwise be lost.
struct Kept<'a> {
    file: &'a std::fs::File,
    failed: &'a mut Option<std::io::Error>,
}

impl Write for Kept<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(e) = self.failed {
            return Err(std::io::Error::new(e.kind(), e.to_string()));
        }
        let r = self.file.write(buf);
        if let Err(e) = &r
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            *self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        r
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::parquet::columns::{
        device_id_field, device_numbers_of, dictionary_of_keys, dictionary_type, field,
        timestamp_micros, timestamp_type,
    };
    use crate::render::parquet::{Dataset, FileLayout, RunId, writer_properties};
    use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::basic::Encoding;
    use parquet::file::metadata::PageIndexPolicy;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::schema::types::ColumnPath;

    /// A batch of the columns the events have, every one of a hand-written kind.
    fn events_like(rows: usize) -> (RecordBatch, WriterProperties) {
        let schema = Arc::new(Schema::new(vec![
            field("ts", timestamp_type(), false),
            device_id_field("device_id", true),
            field("code", dictionary_type(), false),
            field("n", DataType::Int32, false),
            field("message_id", DataType::Int64, true),
        ]));
        let r = rows as i64;
        let cols: Vec<ArrayRef> = vec![
            timestamp_micros((0..r).map(|i| 1_704_067_200_000_000 + i * 999).collect()),
            device_numbers_of(
                (0..r as u64)
                    .map(|i| 0x0012_4B00_0000_0000 | (i * 7919))
                    .collect(),
                None,
            ),
            dictionary_of_keys(
                (0..rows).map(|i| (i % 3) as i32).collect(),
                &["81B8", "8F84", "8F0A"],
            )
            .unwrap(),
            Arc::new(Int32Array::from(
                (0..r).map(|i| (i % 5) as i32).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                (0..r)
                    .map(|i| (i % 4 != 0).then_some(i << 20))
                    .collect::<Vec<_>>(),
            )),
        ];
        let props = writer_properties(
            &["ts", "device_id", "message_id"],
            &["device_id", "code"],
            1 << 20,
        )
        .into_builder()
        .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
        .build();
        (RecordBatch::try_new(schema, cols).unwrap(), props)
    }

    /// The file written here is, byte for byte, the one parquet-rs's file writer makes of the
    /// same chunks, and parquet-rs reads it back, offset indexes and all.
    #[test]
    fn the_file_is_the_one_parquet_rs_writes() {
        let (batch, props) = events_like(50_000);
        let layout = FileLayout::new(batch.schema(), &props).unwrap();
        let chunks = crate::render::parquet::part_file::encode_columns(&layout, &batch).unwrap();
        assert!(
            chunks.iter().all(Option::is_some),
            "every column hand-written: written here"
        );
        let dir = tempfile::tempdir().unwrap();
        let direct = Dataset::new(&dir.path().join("direct"), RunId("d1".into()));
        direct
            .write_with(&[], std::slice::from_ref(&batch), &layout)
            .unwrap();
        direct.commit().unwrap();
        let by_parquet_rs = Dataset::new(&dir.path().join("parquet-rs"), RunId("d1".into()));
        let mut f = by_parquet_rs.create(&[], None, &layout).unwrap();
        f.write(&batch).unwrap();
        by_parquet_rs.close(f).unwrap();
        by_parquet_rs.commit().unwrap();
        let read = |d: &str| std::fs::read(dir.path().join(d).join("part-d1-0.parquet")).unwrap();
        let (mine, theirs) = (read("direct"), read("parquet-rs"));
        assert_eq!(mine.len(), theirs.len());
        assert!(mine == theirs, "the files differ");

        let path = dir.path().join("direct/part-d1-0.parquet");
        let file = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(file.metadata().file_metadata().num_rows(), 50_000);
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required);
        let r = ParquetRecordBatchReaderBuilder::try_new_with_options(
            std::fs::File::open(&path).unwrap(),
            options,
        )
        .unwrap();
        let index = r.metadata().page_index().expect("offset indexes");
        for column in 0..5 {
            let pages = index
                .offset_index(0, column)
                .expect("an offset index")
                .page_locations();
            assert!(!pages.is_empty(), "column {column}");
        }
        let mut rows = 0;
        for b in r.with_batch_size(1 << 16).build().unwrap() {
            let b = b.unwrap();
            assert_eq!(
                b.column(4).as_ref(),
                batch.column(4).slice(rows, b.num_rows()).as_ref()
            );
            rows += b.num_rows();
        }
        assert_eq!(rows, 50_000);
    }

    /// A write that fails (a full disk) is an error, the footer's too (written when the
    /// metadata writer's buffer is dropped).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_is_an_error() {
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return; // no /dev/full here
        };
        let (batch, props) = events_like(10);
        let layout = FileLayout::new(batch.schema(), &props).unwrap();
        let chunks = crate::render::parquet::part_file::encode_columns(&layout, &batch)
            .unwrap()
            .into_iter()
            .map(Option::unwrap)
            .collect();
        let descr = parquet::schema::types::SchemaDescriptor::new(layout.parquet().clone());
        let r = write_file(full, &Arc::new(descr), &props, 10, chunks);
        assert!(r.is_err(), "{r:?}");
    }
}
