//! Apache Parquet output for the data-lake hand-off: Hive-partitioned datasets
//! (`DIR/day=2024-01-01/region=North/part-<run>-<n>.parquet`) that DuckDB, Spark, Trino and
//! ClickHouse read as they are.
//!
//! - `dataset`: where files go, written under hidden temporary names and renamed into place
//!   only when the whole run has succeeded (a reader never sees a partial file), and the run id
//!   that makes a re-run of the same inputs replace its own files instead of adding more.
//! - `part_file`: one file's making: its layout, its columns encoded (by the hand-written
//!   encoders below where they take a column), parquet-rs's file writer for the rest;
//!   `direct`: a file whose every column was hand-written, written without it.
//! - `table`: an `alerts` report as a dataset, partitioned by day (and region).
//! - `inventory`: the device table.
//! - `columns`: Arrow arrays built from fleetwatch's compact values. Device ids travel in
//!   batches as numbers (`columns::device_id_field`) and are text in the files
//!   (`part_file::file_schema`).
//! - `dictionary`: string dictionary columns written from their Arrow keys as they are;
//!   `int_dictionary`: integer and date columns dictionary-encoded without hashing;
//!   `int64`: 64-bit integers and times, DELTA_BINARY_PACKED or PLAIN.
//! - `plain_strings`, `eui_snappy`: plain string columns (device ids), ids compressed by a
//!   Snappy compressor that knows their layout.
//! - `pages`: what those hand-written column chunks share; `rle`: the RLE/bit-packing hybrid
//!   encoding of their keys and definition levels.
//!
//! Conventions every file follows: partition columns are left out of the files (the Hive
//! convention); integers are signed (Spark reads unsigned 64-bit integers as decimals); times
//! are `TIMESTAMP(MICROS, UTC)`; low-cardinality strings are Arrow dictionaries and
//! dictionary-encoded in the file; pages are compressed with Snappy.

pub mod columns;
pub mod dataset;
pub mod dictionary;
pub mod direct;
pub mod eui_snappy;
pub mod int64;
pub mod int_dictionary;
pub mod inventory;
pub mod pages;
pub mod part_file;
pub mod plain_strings;
pub mod rle;
pub mod table;

pub use dataset::{Dataset, DatasetSummary, RunId};
pub use part_file::{FileLayout, PartFile};

use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Why a Parquet dataset could not be written. Each names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// The I/O error is part of the message (not a chained source, which would print twice).
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        path: String,
        action: &'static str,
        cause: std::io::Error,
    },
    #[error("{path}: cannot write Parquet: {cause}")]
    Parquet {
        path: String,
        cause: parquet::errors::ParquetError,
    },
    #[error("cannot build the columns of {what}: {cause}")]
    Arrow {
        what: &'static str,
        cause: arrow_schema::ArrowError,
    },
}

impl ParquetError {
    pub(crate) fn parquet(
        path: &std::path::Path,
        cause: parquet::errors::ParquetError,
    ) -> ParquetError {
        ParquetError::Parquet {
            path: path.display().to_string(),
            cause,
        }
    }

    pub(crate) fn io(
        path: &std::path::Path,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> ParquetError {
        let path = path.display().to_string();
        move |cause| ParquetError::Io {
            path,
            action,
            cause,
        }
    }
}

/// Writer settings: Snappy, dictionary encoding except for the columns named in `plain`
/// (high-cardinality ones: times, device ids, message ids, where a dictionary only costs time),
/// statistics per column chunk (what readers prune row groups by) except for the columns in
/// `no_stats` (strings, whose minimum and maximum cost a comparison per value to keep; their
/// readers filter on partitions, times and the dictionaries instead).
pub fn writer_properties(plain: &[&str], no_stats: &[&str], row_group: usize) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(row_group.max(1)))
        .set_created_by(format!("fleetwatch {}", env!("CARGO_PKG_VERSION")));
    for c in plain {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    for c in no_stats {
        b = b.set_column_statistics_enabled(ColumnPath::from(*c), EnabledStatistics::None);
    }
    b.build()
}

/// A Hive partition directory name, `key=value`, with the characters Hive and Spark escape
/// written as `%XX` (so a value holding `/` or `=` stays one directory level).
pub fn partition_dir(key: &str, value: &str) -> String {
    let mut s = String::with_capacity(key.len() + value.len() + 1);
    s.push_str(key);
    s.push('=');
    for c in value.chars() {
        if c.is_control() || "\"#%'*/:=?\\\u{7f}{[]^".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                s.push_str(&format!("%{b:02X}"));
            }
        } else {
            s.push(c);
        }
    }
    if value.is_empty() {
        // Hive's name for a missing partition value.
        s.push_str("__HIVE_DEFAULT_PARTITION__");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_escaped_as_hive_does() {
        assert_eq!(partition_dir("region", "North"), "region=North");
        assert_eq!(partition_dir("region", "4G North"), "region=4G North");
        assert_eq!(partition_dir("model", "A/B=1"), "model=A%2FB%3D1");
        assert_eq!(
            partition_dir("region", ""),
            "region=__HIVE_DEFAULT_PARTITION__"
        );
    }
}
