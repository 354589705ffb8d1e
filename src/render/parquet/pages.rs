//! What the hand-written column chunks share (`dictionary`, `int_dictionary`, `int64`,
//! `plain_strings`): the codecs they write, page compression, V1 data pages, definition
//! levels, and the chunk's metadata and offset index for `append_column`.

use super::rle::{bitmap_levels, rle_run, varint};
use arrow_array::Array;
use arrow_buffer::NullBuffer;
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// An encoded column chunk: its bytes and the metadata `append_column` needs.
pub struct Chunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

/// Whether a hand-written encoder can write `array` with `compression`: it has rows, and
/// the codec is Snappy or none (those `compress` knows).
pub fn writable(array: &dyn Array, compression: Compression) -> bool {
    !array.is_empty() && matches!(compression, Compression::SNAPPY | Compression::UNCOMPRESSED)
}

/// A V1 data page of `rows` values in `encoding` (levels RLE), compressed into `buf` from
/// `raw` bytes.
pub fn data_page(buf: Bytes, rows: usize, encoding: Encoding, raw: usize) -> CompressedPage {
    CompressedPage::new(
        Page::DataPage {
            buf,
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        },
        raw,
    )
}

/// A hand-written integer chunk's statistics as parquet-rs records them: the minimum and
/// maximum of the values present (`None` when every value is null), the null count, and both
/// the old and the new minimum and maximum fields (their order the column's).
pub fn chunk_statistics<T>(
    range: Option<(T, T)>,
    null_count: u64,
    descr: &ColumnDescPtr,
) -> Statistics
where
    Statistics: From<ValueStatistics<T>>,
{
    let (min, max) = range.unzip();
    Statistics::from(
        ValueStatistics::new(min, max, None, Some(null_count), false)
            .with_backwards_compatible_min_max(descr.sort_order().is_signed()),
    )
}

/// A page's bytes compressed with the general compressor, and its uncompressed size.
///
/// Pages that Snappy would not shrink (bit-packed dictionary keys of many values: they are
/// close to random bits) are stored as one Snappy literal, which any reader decompresses like
/// any block: a sample of the page is compressed first, and when it shrinks by less than
/// `WORTH`, the whole page is not searched for matches it does not have. Such pages are
/// about a tenth of the events' bytes and gained under 0.5% from the search.
pub fn compress(raw: Vec<u8>, compression: Compression) -> Result<(Bytes, usize)> {
    let n = raw.len();
    let snappy = |raw: &[u8]| {
        snap::raw::Encoder::new()
            .compress_vec(raw)
            .map_err(|e| ParquetError::External(Box::new(e)))
    };
    match compression {
        Compression::UNCOMPRESSED => Ok((Bytes::from(raw), n)),
        Compression::SNAPPY if n >= 2 * SAMPLE => {
            let sample = snappy(&raw[..SAMPLE])?;
            if sample.len() * WORTH.1 > SAMPLE * WORTH.0 {
                return Ok((Bytes::from(snappy_literal(&raw)), n));
            }
            Ok((Bytes::from(snappy(&raw)?), n))
        }
        Compression::SNAPPY => Ok((Bytes::from(snappy(&raw)?), n)),
        c => Err(ParquetError::NYI(format!("{c} for hand-written chunks"))),
    }
}

/// Bytes of a page compressed to judge whether the rest is worth compressing.
const SAMPLE: usize = 4096;

/// A sample must shrink to at most this fraction of its size (`WORTH.0 / WORTH.1`, 98%) for
/// its page to be compressed.
const WORTH: (usize, usize) = (98, 100);

/// `raw` as a Snappy block of one literal: the length as a varint, the literal's tag (its
/// length less one in the bytes after it), the bytes as they are.
pub fn snappy_literal(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    varint(&mut out, raw.len() as u64);
    if let Some(last) = raw.len().checked_sub(1) {
        if last < 60 {
            out.push((last as u8) << 2);
        } else {
            // 60-63: the length less one follows in 1-4 bytes.
            let bytes = (usize::BITS - last.leading_zeros()).div_ceil(8) as usize;
            out.push(((59 + bytes) as u8) << 2);
            out.extend_from_slice(&(last as u32).to_le_bytes()[..bytes]);
        }
        out.extend_from_slice(raw);
    }
    out
}

/// Appends a V1 data page's definition levels for `valid` (`None`: every row present), with
/// their byte length first, as optional flat columns have them.
pub fn definition_levels(out: &mut Vec<u8>, rows: usize, valid: Option<&NullBuffer>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match valid {
        Some(n) => bitmap_levels(out, n.inner()),
        None => rle_run(out, 1, rows, 1),
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// A chunk of one data page of `rows` values in `encoding` (levels and values in `data`),
/// after a PLAIN dictionary page of `entries` values when `dictionary` is `Some((page,
/// entries))`, each compressed here, with the chunk's `statistics` if it keeps them.
pub fn one_page_chunk(
    descr: ColumnDescPtr,
    compression: Compression,
    rows: usize,
    dictionary: Option<(Vec<u8>, usize)>,
    data: Vec<u8>,
    encoding: Encoding,
    statistics: Option<Statistics>,
) -> Result<Chunk> {
    let mut sink = TrackedWrite::new(Vec::new());
    let (dict_spec, data_spec) = {
        let mut w = SerializedPageWriter::new(&mut sink);
        let dict_spec = match dictionary {
            Some((page, entries)) => {
                let (buf, raw) = compress(page, compression)?;
                Some(w.write_page(CompressedPage::new(
                    Page::DictionaryPage {
                        buf,
                        num_values: entries as u32,
                        encoding: Encoding::PLAIN,
                        is_sorted: false,
                    },
                    raw,
                ))?)
            }
            None => None,
        };
        let (buf, raw) = compress(data, compression)?;
        let data_spec = w.write_page(data_page(buf, rows, encoding, raw))?;
        w.close()?;
        (dict_spec, data_spec)
    };
    let mut encodings = vec![encoding, Encoding::RLE];
    if dict_spec.is_some() {
        encodings.push(Encoding::PLAIN);
    }
    Written {
        descr,
        compression,
        rows,
        encodings,
        dictionary: dict_spec,
        data_encoding: encoding,
        data: vec![(data_spec, 0)],
        statistics,
    }
    .into_chunk(Bytes::from(sink.into_inner()?))
}

/// The pages of a chunk as written, to describe it.
pub struct Written {
    pub descr: ColumnDescPtr,
    pub compression: Compression,
    pub rows: usize,
    /// The chunk's encodings (levels' included).
    pub encodings: Vec<Encoding>,
    pub dictionary: Option<PageWriteSpec>,
    /// The data pages' encoding (one for all of them).
    pub data_encoding: Encoding,
    /// Data pages: where each was written and its first row.
    pub data: Vec<(PageWriteSpec, usize)>,
    /// The chunk's statistics, for the columns that keep them.
    pub statistics: Option<Statistics>,
}

impl Written {
    /// The chunk's metadata (its statistics if given), page encoding stats and offset index,
    /// as parquet-rs records them.
    pub fn into_chunk(self, bytes: Bytes) -> Result<Chunk> {
        let Some(first) = self.data.first() else {
            return Err(ParquetError::General("a column chunk without pages".into()));
        };
        let mut stats = Vec::new();
        if self.dictionary.is_some() {
            stats.push(PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            });
        }
        stats.push(PageEncodingStats {
            page_type: PageType::DATA_PAGE,
            encoding: self.data_encoding,
            count: self.data.len() as i32,
        });
        let pages = self
            .dictionary
            .iter()
            .chain(self.data.iter().map(|(spec, _)| spec));
        let compressed: usize = pages.clone().map(|s| s.compressed_size).sum();
        let uncompressed: usize = pages.map(|s| s.uncompressed_size).sum();
        let mut metadata = ColumnChunkMetaData::builder(self.descr)
            .set_compression(self.compression)
            .set_encodings_mask(EncodingMask::new_from_encodings(self.encodings.iter()))
            .set_page_encoding_stats(stats)
            .set_total_compressed_size(compressed as i64)
            .set_total_uncompressed_size(uncompressed as i64)
            .set_num_values(self.rows as i64)
            .set_dictionary_page_offset(self.dictionary.as_ref().map(|d| d.offset as i64))
            .set_data_page_offset(first.0.offset as i64);
        if let Some(s) = self.statistics {
            metadata = metadata.set_statistics(s);
        }
        let metadata = metadata.build()?;
        let page_locations = self
            .data
            .iter()
            .map(|(spec, first_row)| PageLocation {
                offset: spec.offset as i64,
                compressed_page_size: spec.compressed_size as i32,
                first_row_index: *first_row as i64,
            })
            .collect();
        Ok(Chunk {
            close: ColumnCloseResult {
                bytes_written: bytes.len() as u64,
                rows_written: self.rows as u64,
                metadata,
                bloom_filter: None,
                column_index: None,
                // Every page's place, as parquet-rs records it for every column.
                offset_index: Some(OffsetIndexMetaData {
                    page_locations,
                    unencoded_byte_array_data_bytes: None,
                }),
            },
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompress(c: &[u8]) -> Vec<u8> {
        snap::raw::Decoder::new().decompress_vec(c).unwrap()
    }

    /// Bytes no compressor shrinks: a xorshift stream.
    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_literal_block_reads_back_at_every_tag_size() {
        // Around each tag form: inline (< 60), then 1, 2, 3 and 4 bytes of length.
        for n in [
            0,
            1,
            59,
            60,
            61,
            256,
            257,
            65_536,
            65_537,
            1 << 24,
            (1 << 24) + 1,
        ] {
            let raw = noise(n, n as u64 + 1);
            let block = snappy_literal(&raw);
            assert_eq!(decompress(&block), raw, "{n} bytes");
            assert!(
                block.len() <= n + 10,
                "{n} bytes: {} in the block",
                block.len()
            );
        }
    }

    #[test]
    fn only_pages_that_shrink_are_searched() {
        let random = noise(100_000, 7);
        let (c, raw) = compress(random.clone(), Compression::SNAPPY).unwrap();
        assert_eq!(raw, random.len());
        assert_eq!(c.as_ref(), snappy_literal(&random), "stored as one literal");
        assert_eq!(decompress(&c), random);

        // Keys of four values, two bits each: Snappy finds the repeats.
        let keys: Vec<u8> = (0..100_000u32)
            .map(|i| [0x1b, 0xe4][(i / 64 % 2) as usize])
            .collect();
        let (c, _) = compress(keys.clone(), Compression::SNAPPY).unwrap();
        assert!(c.len() < keys.len() / 10, "{} bytes", c.len());
        assert_eq!(decompress(&c), keys);

        // A short page is compressed without a sample.
        let short = noise(SAMPLE, 3);
        let (c, _) = compress(short.clone(), Compression::SNAPPY).unwrap();
        assert_eq!(decompress(&c), short);
    }
}
