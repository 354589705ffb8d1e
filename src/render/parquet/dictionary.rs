//! Dictionary-encoded column chunks written straight from an Arrow dictionary's keys.
//!
//! parquet-rs's Arrow writer dictionary-encodes a `Dictionary(Int32, Utf8)` array by hashing
//! every row's string into an interner of its own, although the Arrow dictionary already
//! holds each value once: for the events' six dictionary columns that was 12% of an export's
//! CPU. Here the keys are renumbered through a small table (the values used, in the Arrow
//! dictionary's order) and written as they are: a dictionary page (PLAIN values) and one
//! data page (definition levels, then the RLE/bit-packed keys), compressed as the writer
//! properties say, spliced into the row group with `append_column`. Readers see what the
//! Arrow writer would have written (for columns without statistics), with the dictionary in
//! the Arrow order rather than the order of first use, and one data page per chunk instead
//! of one per 20,000 rows.

use super::pages::{Chunk, Written, compress, definition_levels};
use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, StringArray};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::errors::{ParquetError, Result};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Values a bit-packed run holds at most (63 groups of 8: the run's header stays one byte,
/// as parquet-rs and parquet-mr write it).
const MAX_PACKED: usize = 63 * 8;

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
    !array.is_empty()
        && values.len() <= 1 << 16 // keys of 16 bits at most (see `bit_packed`)
        && matches!(compression, Compression::SNAPPY | Compression::UNCOMPRESSED)
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

    // Renumber the keys: the values used, in the Arrow dictionary's order, get ids 0, 1, ...
    // (two passes over the keys, no hashing; a key out of range is an error).
    let keys = d.keys().values();
    let present = nulls.as_ref().filter(|n| n.null_count() > 0);
    let mut remap = vec![0u32; values.len()];
    for (i, &k) in keys.iter().enumerate() {
        if present.is_some_and(|n| n.is_null(i)) {
            continue;
        }
        *remap
            .get_mut(k as usize)
            .ok_or_else(|| ParquetError::General(format!("dictionary key {k} out of range")))? = 1;
    }
    let mut used: Vec<usize> = Vec::new();
    for (k, slot) in remap.iter_mut().enumerate() {
        if *slot == 1 {
            *slot = used.len() as u32;
            used.push(k);
        }
    }
    let mut ids: Vec<u32> = Vec::with_capacity(rows);
    // Definition levels: none for a required column, one run of 1s when nothing is null.
    let mut levels: Option<Vec<u32>> = None;
    match present {
        None => ids.extend(keys.iter().map(|&k| remap[k as usize])),
        Some(n) => {
            let mut l = Vec::with_capacity(rows);
            for (i, &k) in keys.iter().enumerate() {
                let valid = n.is_valid(i);
                l.push(valid as u32);
                if valid {
                    ids.push(remap[k as usize]);
                }
            }
            levels = Some(l);
        }
    }

    let mut dict = Vec::new();
    for &k in &used {
        let v = values.value(k).as_bytes();
        dict.extend_from_slice(&(v.len() as u32).to_le_bytes());
        dict.extend_from_slice(v);
    }
    let mut data = Vec::with_capacity(ids.len() / 2 + 16);
    if nullable {
        definition_levels(&mut data, rows, levels.as_deref());
    }
    let width = bit_width(used.len().saturating_sub(1) as u32);
    data.push(width);
    rle_hybrid(&mut data, &ids, width);

    let mut sink = TrackedWrite::new(Vec::new());
    let (dict_spec, data_spec) = {
        let mut w = SerializedPageWriter::new(&mut sink);
        let (buf, raw) = compress(dict, compression)?;
        let dict_spec = w.write_page(CompressedPage::new(
            Page::DictionaryPage {
                buf,
                num_values: used.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            },
            raw,
        ))?;
        let (buf, raw) = compress(data, compression)?;
        let data_spec = w.write_page(CompressedPage::new(
            Page::DataPage {
                buf,
                num_values: rows as u32,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            raw,
        ))?;
        w.close()?;
        (dict_spec, data_spec)
    };
    Written {
        descr,
        compression,
        rows,
        encodings: vec![Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY],
        dictionary: Some(dict_spec),
        data: vec![(data_spec, Encoding::RLE_DICTIONARY, 0)],
    }
    .into_chunk(Bytes::from(sink.into_inner()?))
}

/// Bits needed for values up to `max`.
fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `values` (each below 2^`width`) in Parquet's RLE/bit-packing hybrid encoding:
/// runs of equal values as RLE runs, the rest bit-packed in groups of 8 (the last group
/// padded with zeros; the page's value count says where the values end).
pub fn rle_hybrid(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let n = values.len();
    let mut pending = 0; // first value not yet written (to be bit-packed)
    let mut i = 0;
    // Groups of 8 from `pending` on: a group of equal values starts an RLE run, which goes
    // on as far as the value repeats (runs that do not start on a group are bit-packed).
    while i + 8 <= n {
        let v = values[i];
        if values[i..i + 8].iter().fold(0, |a, &x| a | (x ^ v)) != 0 {
            i += 8;
            continue;
        }
        let mut j = i + 8;
        while j < n && values[j] == v {
            j += 1;
        }
        bit_packed(out, &values[pending..i], width);
        rle_run(out, v, j - i, width);
        pending = j;
        i = j;
    }
    bit_packed(out, &values[pending..], width);
}

/// An RLE run: `count` times `value`.
pub fn rle_run(out: &mut Vec<u8>, value: u32, count: usize, width: u8) {
    varint(out, (count as u64) << 1);
    out.extend_from_slice(&value.to_le_bytes()[..(width as usize).div_ceil(8)]);
}

/// Bit-packed runs of at most `MAX_PACKED` values, least significant bit first.
fn bit_packed(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let w = width as usize;
    for run in values.chunks(MAX_PACKED) {
        let groups = run.len().div_ceil(8);
        varint(out, ((groups as u64) << 1) | 1);
        out.reserve(groups * w);
        let mut group = [0u32; 8];
        for g in run.chunks(8) {
            group[..g.len()].copy_from_slice(g);
            group[g.len()..].fill(0);
            if w <= 8 {
                // A group of 8 values of up to 8 bits is at most 64 bits: one word.
                let mut acc = 0u64;
                for (k, &x) in group.iter().enumerate() {
                    acc |= (x as u64) << (k * w);
                }
                out.extend_from_slice(&acc.to_le_bytes()[..w]);
            } else {
                let mut acc = 0u128;
                for (k, &x) in group.iter().enumerate() {
                    acc |= (x as u128) << (k * w);
                }
                out.extend_from_slice(&acc.to_le_bytes()[..w]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the hybrid encoding (the reference for the tests).
    fn decode(mut b: &[u8], width: u8, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let varint = |b: &mut &[u8]| {
            let mut v = 0u64;
            let mut s = 0;
            loop {
                let x = b[0];
                *b = &b[1..];
                v |= ((x & 0x7f) as u64) << s;
                s += 7;
                if x < 0x80 {
                    return v;
                }
            }
        };
        while out.len() < n {
            let h = varint(&mut b);
            if h & 1 == 1 {
                let count = (h >> 1) as usize * 8;
                let bytes = count * width as usize / 8;
                let mut acc = 0u64;
                let mut bits = 0;
                let mut it = b[..bytes].iter();
                for _ in 0..count {
                    while bits < width as u32 {
                        acc |= (*it.next().unwrap() as u64) << bits;
                        bits += 8;
                    }
                    out.push((acc & ((1u64 << width) - 1)) as u32);
                    acc >>= width;
                    bits -= width as u32;
                }
                b = &b[bytes..];
            } else {
                let count = (h >> 1) as usize;
                let bytes = (width as usize).div_ceil(8);
                let mut v = [0u8; 4];
                v[..bytes].copy_from_slice(&b[..bytes]);
                b = &b[bytes..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(v), count));
            }
        }
        assert!(b.is_empty(), "trailing bytes");
        out.truncate(n);
        out
    }

    #[test]
    fn hybrid_runs_round_trip() {
        let mut cases: Vec<(Vec<u32>, u8)> = vec![
            (vec![], 1),
            (vec![0; 20], 0),
            (vec![1, 0, 1, 1, 0], 1),
            ((0..1000).map(|i| (i * 7919 % 13) as u32).collect(), 4),
            ((0..3000).map(|i| (i / 37 % 5) as u32).collect(), 3),
            ((0..600).map(|i| (i % 300) as u32).collect(), 9),
            ((0..77).map(|i| (i * 851) as u32).collect(), 16),
        ];
        let mut mixed: Vec<u32> = (0..13).collect();
        mixed.extend([5; 11]);
        mixed.extend([1, 2, 3]);
        mixed.extend([7; 8]);
        cases.push((mixed, 4));
        for (values, width) in cases {
            let mut out = Vec::new();
            rle_hybrid(&mut out, &values, width);
            assert_eq!(decode(&out, width, values.len()), values, "width {width}");
        }
        // A long run is one RLE run: a header and the value.
        let mut out = Vec::new();
        rle_hybrid(&mut out, &[3; 1000], 2);
        assert_eq!(out, [0xd0, 0x0f, 3]);
    }

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

    #[test]
    fn bit_widths() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
    }
}
