//! Dictionary-encoded column chunks written straight from an Arrow dictionary's keys.
//!
//! parquet-rs's Arrow writer dictionary-encodes a `Dictionary(Int32, Utf8)` array by hashing
//! every row's string into an interner of its own, although the Arrow dictionary already
//! holds each value once: for the events' six dictionary columns that was 12% of an export's
//! CPU. Here the keys are written as they are: a dictionary page (PLAIN values) and one data
//! page (definition levels, then the RLE/bit-packed keys), compressed as the writer
//! properties say, spliced into the row group with `append_column`. A small dictionary
//! without nulls to skip is written whole, the keys in one pass (`encode_whole`); any other
//! is cut to the values used, renumbered through a small table in the Arrow dictionary's
//! order. Readers see what the Arrow writer would have written (for columns without
//! statistics), with the dictionary in the Arrow order rather than the order of first use,
//! and one data page per chunk instead of one per 20,000 rows.

use super::pages::{Chunk, definition_levels, one_page_chunk, writable};
use super::rle::{bit_width, rle_hybrid};
use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, StringArray};
use parquet::basic::{Compression, Encoding};
use parquet::errors::{ParquetError, Result};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescPtr;

/// Whether `array` can be written here: up to 65,536 string values indexed by 32-bit keys,
/// compressed with Snappy or not at all, dictionary values under `dict_limit` bytes
/// (parquet-rs falls back to plain pages above its dictionary page limit; such columns go
/// through it).
pub fn supported(array: &dyn Array, compression: Compression, dict_limit: usize) -> bool {
    let Some(d) = array.as_any().downcast_ref::<DictionaryArray<Int32Type>>() else {
        return false;
    };
    let Some(values) = d.values().as_any().downcast_ref::<StringArray>() else {
        return false;
    };
    writable(array, compression)
        && values.len() <= 1 << 16 // keys of 16 bits at most (see `bit_packed`)
        && values.value_data().len() + 4 * values.len() <= dict_limit
}

/// Encodes a `Dictionary(Int32, Utf8)` array as the column chunk `descr` (its nulls become
/// definition levels when the column is optional; a null in a required column is an error).
pub fn encode(array: &dyn Array, descr: ColumnDescPtr, compression: Compression) -> Result<Chunk> {
    let d = array
        .as_any()
        .downcast_ref::<DictionaryArray<Int32Type>>()
        .ok_or_else(|| ParquetError::General("not a Dictionary(Int32, Utf8) array".into()))?;
    let values = d
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ParquetError::General("dictionary values are not Utf8".into()))?;
    let nullable = descr.max_def_level() > 0;
    let rows = d.len();
    let nulls = d.logical_nulls();
    if !nullable && nulls.as_ref().is_some_and(|n| n.null_count() > 0) {
        return Err(ParquetError::General(format!(
            "column {} is required but has nulls",
            descr.name()
        )));
    }

    let keys = d.keys().values();
    let present = nulls.as_ref().filter(|n| n.null_count() > 0);
    if present.is_none() && is_small(values) {
        return encode_whole(keys, values, descr, compression);
    }
    // Renumber the keys: the values used, in the Arrow dictionary's order, get ids 0, 1, ...
    // (two passes over the keys, no hashing; a key out of range is an error). The keys of
    // rows not null are found a word of the null buffer at a time.
    let mut remap = vec![0u32; values.len()];
    let mut mark = |k: i32| -> Result<()> {
        *remap
            .get_mut(k as usize)
            .ok_or_else(|| ParquetError::General(format!("dictionary key {k} out of range")))? = 1;
        Ok(())
    };
    match present {
        None => keys.iter().try_for_each(|&k| mark(k))?,
        Some(n) => n.valid_indices().try_for_each(|i| mark(keys[i]))?,
    }
    let mut used: Vec<usize> = Vec::new();
    for (k, slot) in remap.iter_mut().enumerate() {
        if *slot == 1 {
            *slot = used.len() as u32;
            used.push(k);
        }
    }
    let mut ids: Vec<u32> = Vec::with_capacity(rows);
    match present {
        None => ids.extend(keys.iter().map(|&k| remap[k as usize])),
        Some(n) => ids.extend(n.valid_indices().map(|i| remap[keys[i] as usize])),
    }

    let dict = dictionary_page(used.iter().map(|&k| values.value(k)));
    let mut data = Vec::with_capacity(ids.len() / 2 + 16);
    // Definition levels: none for a required column, one run of 1s when nothing is null.
    if nullable {
        definition_levels(&mut data, rows, present);
    }
    keyed_chunk(
        descr,
        compression,
        rows,
        (dict, used.len()),
        data,
        &ids,
        None,
    )
}

/// Whether a dictionary is small enough to be written whole into every chunk: a few
/// hundred bytes a file, against two passes over the keys to leave out the values unused.
fn is_small(values: &StringArray) -> bool {
    values.len() <= 64 && values.value_data().len() <= 1024
}

/// A chunk without nulls of a small dictionary (`is_small`): every value in the dictionary
/// page and the keys written as they are (an Arrow dictionary's keys are valid indices),
/// in one pass.
fn encode_whole(
    keys: &[i32],
    values: &StringArray,
    descr: ColumnDescPtr,
    compression: Compression,
) -> Result<Chunk> {
    let rows = keys.len();
    let dict = dictionary_page(values.iter().map(Option::unwrap_or_default));
    // SAFETY: `i32` and `u32` have the same size and alignment, and every bit pattern is a
    // `u32`; the keys are valid indices, so none is negative.
    let ids: &[u32] = unsafe { std::slice::from_raw_parts(keys.as_ptr().cast::<u32>(), rows) };
    let mut data = Vec::with_capacity(rows / 2 + 16);
    if descr.max_def_level() > 0 {
        definition_levels(&mut data, rows, None);
    }
    keyed_chunk(
        descr,
        compression,
        rows,
        (dict, values.len()),
        data,
        ids,
        None,
    )
}

/// The chunk of a dictionary page (`dictionary`: the page and its entries) and one data page
/// of `rows` rows: `data` (the definition levels, if any) then `keys`, RLE/bit-packed at the
/// dictionary's width, with the chunk's `statistics` if it keeps them.
pub(super) fn keyed_chunk(
    descr: ColumnDescPtr,
    compression: Compression,
    rows: usize,
    dictionary: (Vec<u8>, usize),
    mut data: Vec<u8>,
    keys: &[u32],
    statistics: Option<Statistics>,
) -> Result<Chunk> {
    let width = bit_width(dictionary.1.saturating_sub(1) as u32);
    data.push(width);
    rle_hybrid(&mut data, keys, width);
    let encoding = Encoding::RLE_DICTIONARY;
    one_page_chunk(
        descr,
        compression,
        rows,
        Some(dictionary),
        data,
        encoding,
        statistics,
    )
}

/// PLAIN dictionary page values: each string's length and bytes.
fn dictionary_page<'a>(values: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut dict = Vec::new();
    for v in values {
        dict.extend_from_slice(&(v.len() as u32).to_le_bytes());
        dict.extend_from_slice(v.as_bytes());
    }
    dict
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with dictionary columns written here reads back (with parquet-rs's reader) as
    /// the strings written: nulls, unused and repeated values, one-value dictionaries.
    #[test]
    fn dictionary_columns_read_back_as_written() {
        use crate::render::parquet::{Dataset, RunId, writer_properties};
        use arrow_array::cast::AsArray;
        use arrow_array::{ArrayRef, Int32Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use std::sync::Arc;

        let dict = |keys: Vec<Option<i32>>, values: &[&str]| -> ArrayRef {
            Arc::new(
                DictionaryArray::<Int32Type>::try_new(
                    Int32Array::from(keys),
                    Arc::new(StringArray::from(values.to_vec())),
                )
                .unwrap(),
            )
        };
        let n = 5000;
        let codes: Vec<Option<i32>> = (0..n).map(|i| Some((i * 7 % 11) as i32)).collect();
        let models: Vec<Option<i32>> = (0..n)
            .map(|i| (i % 9 != 0).then_some((i / 100 % 3) as i32 * 2))
            .collect();
        let source: Vec<Option<i32>> = vec![Some(1); n];
        let names: Vec<String> = (0..12).map(|i| format!("code-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let t = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![
            Field::new("code", t.clone(), false),
            Field::new("model", t.clone(), true),
            Field::new("source", t, false),
            Field::new("n", DataType::Int32, false),
        ]));
        let cols = vec![
            dict(codes.clone(), &names),
            dict(models.clone(), &["m0", "unused", "m2", "x", "m4"]),
            dict(source, &["a.csv", "b.csv"]),
            Arc::new(Int32Array::from((0..n as i32).collect::<Vec<_>>())) as ArrayRef,
        ];
        let batch = RecordBatch::try_new(schema, cols).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dataset::new(dir.path(), RunId("0d".into()));
        let props = writer_properties(&[], &["code", "model", "source"], 1 << 20);
        d.write(&[], &[batch.clone(), batch], &props).unwrap();
        d.commit().unwrap();

        let f = std::fs::File::open(dir.path().join("part-0d-0.parquet")).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        let meta = r.metadata().clone();
        assert_eq!(meta.num_row_groups(), 2);
        for c in meta.row_group(0).columns().iter().take(3) {
            assert!(c.dictionary_page_offset().is_some());
            assert_eq!(c.compression(), Compression::SNAPPY);
        }
        let mut rows = 0;
        for b in r.build().unwrap() {
            let b = b.unwrap();
            let text = |c: usize, i: usize| string_at(b.column(c).as_ref(), i);
            for i in 0..b.num_rows() {
                let at = (rows + i) % n;
                assert_eq!(text(0, i), codes[at].map(|k| names[k as usize].to_string()));
                assert_eq!(text(1, i), models[at].map(|k| format!("m{k}")));
                assert_eq!(text(2, i).as_deref(), Some("b.csv"));
                assert_eq!(
                    b.column(3)
                        .as_primitive::<arrow_array::types::Int32Type>()
                        .value(i),
                    at as i32
                );
            }
            rows += b.num_rows();
        }
        assert_eq!(rows, 2 * n);
    }

    /// The string at `i` of a string or dictionary-of-strings array (`None`: null).
    fn string_at(a: &dyn Array, i: usize) -> Option<String> {
        use arrow_array::cast::AsArray;
        if a.is_null(i) {
            return None;
        }
        match a.as_dictionary_opt::<Int32Type>() {
            Some(d) => {
                let k = d.keys().value(i) as usize;
                Some(d.values().as_string::<i32>().value(k).to_string())
            }
            None => Some(a.as_string::<i32>().value(i).to_string()),
        }
    }
}
