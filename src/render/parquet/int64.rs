//! Column chunks of 64-bit integers and times, written here: DELTA_BINARY_PACKED (the
//! events' times) or PLAIN (message ids), nulls as definition levels.
//!
//! parquet-rs's Arrow writer took 3.4% of an export for the `ts` column alone: it keeps the
//! minimum and maximum a batch of 1,024 values at a time, copies the values into its encoder,
//! and packs each delta with a loop of its own. Here the chunk is one data page: the minimum
//! and maximum read off the whole column, then the deltas of each block of 256 values packed
//! 64 at a time in a register. The layout is parquet-rs's (blocks of 4 miniblocks of 64
//! values), so any reader reads it as it reads theirs; the chunk keeps the statistics they
//! record. Message ids are PLAIN (they do not follow each other): written here too, every
//! column of an events file is hand-written, and the file can be written without parquet-rs's
//! file writer (`direct::write_file`).

use super::pages::{Chunk, chunk_statistics, definition_levels, one_page_chunk, writable};
use super::rle::varint;
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_schema::{DataType, TimeUnit};
use parquet::basic::{Compression, Encoding};
use parquet::errors::Result;
use parquet::schema::types::ColumnDescPtr;

/// Values a miniblock holds, and miniblocks a block (parquet-rs's layout for INT64).
const MINI: usize = 64;
const MINIS: usize = 4;
const BLOCK: usize = MINI * MINIS;

/// Whether `array` can be written here in `encoding`: a non-empty `Int64` or microsecond
/// `Timestamp` array, DELTA_BINARY_PACKED or PLAIN, compressed with Snappy or not at all.
pub fn supported(array: &dyn Array, compression: Compression, encoding: Encoding) -> bool {
    matches!(
        array.data_type(),
        DataType::Int64 | DataType::Timestamp(TimeUnit::Microsecond, _)
    ) && matches!(encoding, Encoding::DELTA_BINARY_PACKED | Encoding::PLAIN)
        && writable(array, compression)
}

/// The values of a `supported` array (a null's is any number).
fn values(array: &dyn Array) -> Option<&[i64]> {
    match array.data_type() {
        DataType::Int64 => array
            .as_primitive_opt::<Int64Type>()
            .map(|a| &a.values()[..]),
        DataType::Timestamp(TimeUnit::Microsecond, _) => array
            .as_primitive_opt::<TimestampMicrosecondType>()
            .map(|a| &a.values()[..]),
        _ => None,
    }
}

/// Encodes a `supported` array as the column chunk `descr` in `encoding`, in one data page,
/// with the chunk's minimum, maximum and null count when `statistics`. `None` when the array
/// is not `supported`, or has nulls its column cannot hold (parquet-rs writes it then).
pub fn encode(
    array: &dyn Array,
    descr: ColumnDescPtr,
    compression: Compression,
    statistics: bool,
    encoding: Encoding,
) -> Result<Option<Chunk>> {
    let Some(all) = values(array).filter(|_| supported(array, compression, encoding)) else {
        return Ok(None);
    };
    let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
    let optional = descr.max_def_level() > 0;
    if nulls.is_some() && !optional {
        return Ok(None);
    }
    let rows = all.len();
    // The values present: all of them, or those the null bitmap marks valid (none at all in
    // a column of nulls, which feeds without message ids have).
    let present: Vec<i64>;
    let values = match &nulls {
        Some(n) if n.null_count() == rows => &[][..],
        Some(n) => {
            present = n.valid_indices().map(|i| all[i]).collect();
            &present[..]
        }
        None => all,
    };
    let mut data = Vec::with_capacity(values.len() * 2 + 64);
    if optional {
        definition_levels(&mut data, rows, nulls.as_ref());
    }
    match encoding {
        Encoding::PLAIN => {
            data.reserve(values.len() * 8);
            for v in values {
                data.extend_from_slice(&v.to_le_bytes());
            }
        }
        _ => delta_binary_packed(&mut data, values),
    }
    let statistics = statistics.then(|| {
        let range = values
            .iter()
            .min()
            .copied()
            .zip(values.iter().max().copied());
        chunk_statistics(range, (rows - values.len()) as u64, &descr)
    });
    one_page_chunk(descr, compression, rows, None, data, encoding, statistics).map(Some)
}

/// Appends `values` in the DELTA_BINARY_PACKED encoding: the header (block size, miniblocks
/// a block, the number of values, the first value), then each block of `BLOCK` deltas: its
/// smallest delta, each miniblock's bit width, and the miniblocks, each delta less the
/// smallest packed least significant bit first. A last miniblock not full is padded with
/// zeros; the widths of miniblocks past the last value are 0 and their bytes absent.
pub fn delta_binary_packed(out: &mut Vec<u8>, values: &[i64]) {
    varint(out, BLOCK as u64);
    varint(out, MINIS as u64);
    varint(out, values.len() as u64);
    varint(out, zigzag(values.first().copied().unwrap_or(0)));
    let mut deltas = [0i64; BLOCK];
    let mut start = 1;
    while start < values.len() {
        let end = (start + BLOCK).min(values.len());
        for (d, i) in deltas.iter_mut().zip(start..end) {
            *d = values[i].wrapping_sub(values[i - 1]);
        }
        write_block(out, &deltas[..end - start]);
        start = end;
    }
}

/// One block of deltas (at most `BLOCK`).
fn write_block(out: &mut Vec<u8>, deltas: &[i64]) {
    let min = deltas.iter().copied().min().unwrap_or(0);
    varint(out, zigzag(min));
    let widths_at = out.len();
    out.extend_from_slice(&[0; MINIS]);
    for (m, mini) in deltas.chunks(MINI).enumerate() {
        let mut packed = [0u64; MINI];
        let mut any = 0u64;
        for (p, &d) in packed.iter_mut().zip(mini.iter()) {
            *p = d.wrapping_sub(min) as u64;
            any |= *p;
        }
        let width = 64 - any.leading_zeros();
        out[widths_at + m] = width as u8;
        pack(out, &packed, width);
    }
}

/// `MINI` values of `width` bits, least significant bit first: `8 * width` bytes.
fn pack(out: &mut Vec<u8>, values: &[u64; MINI], width: u32) {
    if width == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &v in values {
        acc |= (v as u128) << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    // 64 values fill whole words: nothing is left over.
    debug_assert_eq!(bits, 0);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use crate::render::parquet::columns::{timestamp_micros, timestamp_type};
    use crate::render::parquet::{Dataset, RunId, writer_properties};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    use parquet::file::properties::WriterProperties;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    use parquet::schema::types::ColumnPath;
    use std::sync::Arc;

    fn props() -> WriterProperties {
        writer_properties(&["ts", "n"], &[], 1 << 20)
            .into_builder()
            .set_column_encoding(ColumnPath::from("ts"), Encoding::DELTA_BINARY_PACKED)
            .set_column_encoding(ColumnPath::from("n"), Encoding::DELTA_BINARY_PACKED)
            .build()
    }

    /// A column chunk's statistics and its number of pages.
    type ChunkFacts = (Option<Statistics>, usize);

    /// Writes `ts` (as times) and `n` (as integers, nullable) and reads them back with
    /// parquet-rs, with each chunk's statistics and page count.
    fn round_trip(values: &[i64]) -> (Vec<i64>, Vec<i64>, Vec<ChunkFacts>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", timestamp_type(), false),
            Field::new("n", DataType::Int64, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            timestamp_micros(values.to_vec()),
            Arc::new(Int64Array::from(values.to_vec())),
        ];
        let batch = RecordBatch::try_new(schema, cols).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dataset::new(dir.path(), RunId("de".into()));
        d.write(&[], &[batch], &props()).unwrap();
        d.commit().unwrap();
        let path = dir.path().join("part-de-0.parquet");
        let file = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let group = file.get_row_group(0).unwrap();
        let chunks = (0..2)
            .map(|i| {
                let c = group.metadata().column(i);
                assert!(c.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED));
                let pages = group.get_column_page_reader(i).unwrap().count();
                (c.statistics().cloned(), pages)
            })
            .collect();
        let r =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let (mut ts, mut n) = (Vec::new(), Vec::new());
        for b in r.with_batch_size(1 << 16).build().unwrap() {
            let b = b.unwrap();
            ts.extend(
                b.column(0)
                    .as_primitive::<TimestampMicrosecondType>()
                    .values(),
            );
            n.extend(b.column(1).as_primitive::<Int64Type>().values());
        }
        (ts, n, chunks)
    }

    /// Times in order with the odd step back, as the events' are, read back as written,
    /// in one page, with their minimum and maximum.
    #[test]
    fn times_read_back_with_their_statistics() {
        let values: Vec<i64> = (0..50_000i64)
            .map(|i| {
                1_704_067_200_000_000 + i * 2_700_000 + if i % 97 == 0 { -9_000_000 } else { 0 }
            })
            .collect();
        let (ts, n, chunks) = round_trip(&values);
        assert_eq!(ts, values);
        assert_eq!(n, values);
        let (min, max) = (values.iter().min().copied(), values.iter().max().copied());
        for (stats, pages) in chunks {
            match stats {
                Some(Statistics::Int64(s)) => {
                    assert_eq!((s.min_opt().copied(), s.max_opt().copied()), (min, max));
                    assert_eq!(s.null_count_opt(), Some(0));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(pages, 1, "one page a chunk");
        }
    }

    /// Message ids: PLAIN, some or all null, read back with their nulls and statistics.
    #[test]
    fn plain_integers_with_nulls_read_back_with_their_statistics() {
        let some: Vec<Option<i64>> = (0..30_000i64)
            .map(|i| (i % 3 != 0).then_some(i * 7 - 1_000))
            .collect();
        let none: Vec<Option<i64>> = vec![None; 1_000];
        for values in [some, none] {
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
            let col: ArrayRef = Arc::new(Int64Array::from(values.clone()));
            let batch = RecordBatch::try_new(schema, vec![col]).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let d = Dataset::new(dir.path(), RunId("pl".into()));
            d.write(&[], &[batch], &writer_properties(&["id"], &[], 1 << 20))
                .unwrap();
            d.commit().unwrap();
            let path = dir.path().join("part-pl-0.parquet");
            let file = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            let c = file.metadata().row_group(0).column(0).clone();
            assert_eq!(
                c.encodings().collect::<Vec<_>>(),
                [Encoding::PLAIN, Encoding::RLE]
            );
            let present: Vec<i64> = values.iter().flatten().copied().collect();
            match c.statistics() {
                Some(Statistics::Int64(s)) => {
                    let range = present
                        .iter()
                        .min()
                        .copied()
                        .zip(present.iter().max().copied());
                    assert_eq!(s.min_opt().copied().zip(s.max_opt().copied()), range);
                    assert_eq!(
                        s.null_count_opt(),
                        Some((values.len() - present.len()) as u64)
                    );
                }
                other => panic!("{other:?}"),
            }
            let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                .unwrap();
            let mut got = Vec::new();
            for b in r.build().unwrap() {
                let b = b.unwrap();
                got.extend(b.column(0).as_primitive::<Int64Type>().iter());
            }
            assert_eq!(got, values);
        }
    }

    proptest::proptest! {
        /// Any values, extremes and wrapping deltas included, of any count across blocks
        /// and miniblocks, read back as written.
        #[test]
        fn any_values_round_trip(
            raw in proptest::collection::vec(proptest::prelude::any::<i64>(), 1..700),
            small in proptest::bool::ANY,
        ) {
            // Small steps too: narrow bit widths, not only the full 64.
            let values: Vec<i64> = if small {
                raw.iter().map(|v| v % 1000).collect()
            } else {
                raw
            };
            let (ts, n, _) = round_trip(&values);
            proptest::prop_assert_eq!(&ts, &values);
            proptest::prop_assert_eq!(&n, &values);
        }
    }
}
