//! Dictionary-encoded column chunks of 32-bit integers and dates (the events' `alerts`, the
//! device table's `install_date`), written without a hash a row.
//!
//! parquet-rs dictionary-encodes an integer column by hashing every row's value into an
//! interner (1.4% of an export, for a column that is nearly always 1). These columns' values
//! lie close together (counts, days), so a value's key is found in a table indexed by its
//! distance from the smallest value: two passes over the values, no hashing. The keys are
//! given in the order values first come, as parquet-rs gives them, and the chunk carries the
//! minimum, maximum and null count parquet-rs records for it. Columns whose values are spread
//! wider than `MAX_SPREAD` go through parquet-rs as before.

use super::dictionary::keyed_chunk;
use super::pages::{Chunk, chunk_statistics, definition_levels, writable};
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type};
use arrow_schema::DataType;
use parquet::basic::Compression;
use parquet::errors::{ParquetError, Result};
use parquet::schema::types::ColumnDescPtr;

/// Values spread wider than this (largest minus smallest) are left to parquet-rs: the table
/// of keys would outgrow the cache.
pub const MAX_SPREAD: i64 = 1 << 16;

/// Whether `array` can be written here: a non-empty `Int32` or `Date32` array, compressed
/// with Snappy or not at all.
pub fn supported(array: &dyn Array, compression: Compression) -> bool {
    matches!(array.data_type(), DataType::Int32 | DataType::Date32) && writable(array, compression)
}

/// Encodes an `Int32` or `Date32` array as the column chunk `descr`: a dictionary page of
/// the distinct values (PLAIN) and one data page of keys, with the chunk's minimum, maximum
/// and null count when `statistics`. `None` when its values are spread wider than
/// `MAX_SPREAD`.
pub fn encode(
    array: &dyn Array,
    descr: ColumnDescPtr,
    compression: Compression,
    statistics: bool,
) -> Result<Option<Chunk>> {
    let values: &[i32] = match array.data_type() {
        DataType::Int32 => array
            .as_primitive_opt::<Int32Type>()
            .map(|a| &a.values()[..]),
        DataType::Date32 => array
            .as_primitive_opt::<Date32Type>()
            .map(|a| &a.values()[..]),
        _ => None,
    }
    .ok_or_else(|| {
        ParquetError::General(format!("{} is not a 32-bit integer", array.data_type()))
    })?;
    let rows = values.len();
    let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
    let nullable = descr.max_def_level() > 0;
    if !nullable && nulls.is_some() {
        return Err(ParquetError::General(format!(
            "column {} is required but has nulls",
            descr.name()
        )));
    }
    // The values present: all of them, or those the null buffer marks (found a word of
    // bits at a time, not tested a row at a time).
    let span = |r: Option<(i32, i32)>, v: i32| match r {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    };
    let range = match &nulls {
        None => values
            .iter()
            .min()
            .zip(values.iter().max())
            .map(|(&a, &b)| (a, b)),
        Some(n) => n.valid_indices().map(|i| values[i]).fold(None, span),
    };
    let (min, max) = range.unwrap_or((0, 0));
    if max as i64 - min as i64 >= MAX_SPREAD {
        return Ok(None);
    }
    // Each value's key by its distance from the smallest, given as values first come.
    let mut key_of = vec![u32::MAX; (max as i64 - min as i64) as usize + 1];
    let mut dict: Vec<u8> = Vec::new();
    let mut entries = 0u32;
    let mut keys: Vec<u32> = Vec::with_capacity(rows);
    let mut key = |v: i32| {
        let slot = &mut key_of[v.wrapping_sub(min) as u32 as usize];
        if *slot == u32::MAX {
            *slot = entries;
            entries += 1;
            dict.extend_from_slice(&v.to_le_bytes());
        }
        keys.push(*slot);
    };
    match &nulls {
        None => values.iter().for_each(|&v| key(v)),
        Some(n) => n.valid_indices().for_each(|i| key(values[i])),
    }
    let mut data = Vec::with_capacity(keys.len() / 2 + 16);
    if nullable {
        definition_levels(&mut data, rows, nulls.as_ref());
    }
    let null_count = nulls.as_ref().map_or(0, |n| n.null_count()) as u64;
    let statistics = statistics.then(|| chunk_statistics(range, null_count, &descr));
    let dictionary = (dict, entries as usize);
    keyed_chunk(
        descr,
        compression,
        rows,
        dictionary,
        data,
        &keys,
        statistics,
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use crate::render::parquet::{Dataset, RunId, writer_properties};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Int32Type};
    use arrow_array::{ArrayRef, Date32Array, Int32Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    use parquet::file::statistics::Statistics;
    use std::sync::Arc;

    /// A column chunk's encodings and statistics, as read.
    type ChunkMeta = (Vec<Encoding>, Option<Statistics>);

    /// Writes the columns as one file and reads it back with parquet-rs: the values, the
    /// encodings and the chunk statistics of each column.
    fn round_trip(cols: Vec<(&str, ArrayRef)>) -> (RecordBatch, Vec<ChunkMeta>) {
        let fields: Vec<Field> = cols
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let arrays: Vec<ArrayRef> = cols.into_iter().map(|(_, a)| a).collect();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dataset::new(dir.path(), RunId("1e".into()));
        d.write(&[], &[batch], &writer_properties(&[], &[], 1 << 20))
            .unwrap();
        d.commit().unwrap();
        let f = std::fs::File::open(dir.path().join("part-1e-0.parquet")).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        let chunks = r
            .metadata()
            .row_group(0)
            .columns()
            .iter()
            .map(|c| (c.encodings().collect(), c.statistics().cloned()))
            .collect();
        let mut batches = r.with_batch_size(1 << 16).build().unwrap();
        let b = batches.next().unwrap().unwrap();
        assert!(batches.next().is_none(), "one batch");
        (b, chunks)
    }

    /// Values read back as written (nulls, negatives, repeats), dictionary-encoded, with
    /// the minimum, maximum and null count of the values present; values spread too wide
    /// are written by parquet-rs, to the same values.
    #[test]
    fn integers_and_dates_read_back_with_their_statistics() {
        let counts: Vec<Option<i32>> = (0..3000)
            .map(|i| (i % 17 != 0).then_some(if i % 5 == 0 { -3 + i % 7 } else { 1 }))
            .collect();
        let days: Vec<Option<i32>> = (0..3000).map(|i| Some(19_000 + i % 400)).collect();
        let wide: Vec<Option<i32>> = (0..3000).map(|i| Some(i * 1000)).collect();
        let nothing: Vec<Option<i32>> = vec![None; 3000];
        let (b, chunks) = round_trip(vec![
            ("count", Arc::new(Int32Array::from(counts.clone()))),
            ("day", Arc::new(Date32Array::from(days.clone()))),
            ("wide", Arc::new(Int32Array::from(wide.clone()))),
            ("nothing", Arc::new(Int32Array::from(nothing.clone()))),
        ]);
        let ints = |c: usize| -> Vec<Option<i32>> {
            b.column(c).as_primitive::<Int32Type>().iter().collect()
        };
        assert_eq!(ints(0), counts);
        let read_days: Vec<Option<i32>> = b.column(1).as_primitive::<Date32Type>().iter().collect();
        assert_eq!(read_days, days);
        assert_eq!(b.column(1).data_type(), &DataType::Date32);
        assert_eq!(ints(2), wide);
        assert_eq!(ints(3), nothing);
        let stats = |c: usize| match &chunks[c].1 {
            Some(Statistics::Int32(s)) => (
                s.min_opt().copied(),
                s.max_opt().copied(),
                s.null_count_opt(),
            ),
            other => panic!("column {c}: {other:?}"),
        };
        let present: Vec<i32> = counts.iter().flatten().copied().collect();
        let nulls = counts.iter().filter(|c| c.is_none()).count() as u64;
        assert_eq!(
            stats(0),
            (
                present.iter().min().copied(),
                present.iter().max().copied(),
                Some(nulls)
            )
        );
        assert_eq!(stats(1), (Some(19_000), Some(19_399), Some(0)));
        assert_eq!(stats(2), (Some(0), Some(2_999_000), Some(0)));
        assert_eq!(stats(3), (None, None, Some(3000)));
        for (c, (encodings, _)) in chunks.iter().enumerate() {
            assert!(
                encodings.contains(&Encoding::RLE_DICTIONARY),
                "column {c}: {encodings:?}"
            );
        }
    }

    /// The hand-written chunk's dictionary gives keys in the order values first come, and
    /// a column spread too wide is left to parquet-rs.
    #[test]
    fn keys_follow_first_use_and_wide_columns_are_left_alone() {
        let descr = |name: &str| {
            let schema = parquet::arrow::ArrowSchemaConverter::new()
                .convert(&Schema::new(vec![Field::new(name, DataType::Int32, false)]))
                .unwrap();
            schema.column(0)
        };
        let a = Int32Array::from(vec![7, 5, 7, 9, 5]);
        let chunk = super::encode(
            &a,
            descr("n"),
            parquet::basic::Compression::UNCOMPRESSED,
            true,
        )
        .unwrap()
        .expect("close values are taken");
        // The chunk's first page is the dictionary: a page header, then 7, 5, 9 as PLAIN.
        let bytes = chunk.bytes.to_vec();
        let plain: Vec<u8> = [7i32, 5, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(
            bytes.windows(plain.len()).any(|w| w == plain),
            "dictionary in first-use order"
        );
        let wide = Int32Array::from(vec![0, super::MAX_SPREAD as i32]);
        let taken = super::encode(&wide, descr("n"), parquet::basic::Compression::SNAPPY, true);
        assert!(taken.unwrap().is_none());
    }
}
