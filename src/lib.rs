//! fleetwatch: smart-meter fleet alert analytics, as a library. The `fleetwatch` binary
//! (`src/cli/`) is a thin command line over it; nothing here knows about arguments, exit
//! statuses or the terminal.
//!
//! # Layout
//!
//! Each module has one job; a module only imports those listed before it (lower layers never
//! import higher ones).
//!
//! - [`model`]: the domain nouns (device ids, alert codes, regions, types, generations, time,
//!   `Event`, `Reject`) and the small shared types (`Keyword` enums, `ConfigError`).
//! - [`catalogue`]: the embedded alert-code catalogue (names and categories).
//! - [`source`]: inputs as bytes: files, directories, stdin, gzip/zstd, format sniffing, chunks on
//!   record boundaries, memory-mapped files, the parallel reader, the receiver's log framing.
//! - [`decode`]: one decoder per format (DUIS XML, CSV, JSON lines) and the GBCS payloads; bytes
//!   in, `Event`s and `Reject`s out, without an allocation per record.
//! - [`inventory`]: the device table, the installed bases (denominators), the device filter.
//! - [`analyze`]: the alert fold (groups, splits, taps, the user's `Scope`) and every question
//!   asked of it: spikes, offenders, what-if, OTA campaigns, SMETS1 migration, trends, labels;
//!   typed results, no formatting. An analysis that needs to read the inputs again asks a
//!   `reader::Reader`.
//! - [`engine`]: the `Engine` a run answers its queries on: inputs, inventory, the shared filters,
//!   every read of the inputs on all cores (it implements `analyze::reader::Reader`).
//! - [`render`]: tables, CSV, JSON, charts, the HTML report, the quarantine file: any
//!   `io::Write` or file.
//! - [`export`]: the hand-off to a data lake: the events, daily table and device table as
//!   Hive-partitioned Parquet for Spark and DuckDB (the files through `render::parquet`).
//! - [`live`]: the live receiver (HTTP): durable log, live aggregates, dashboard.
//! - [`generate`]: the synthetic fleet generator and the truth it planted.

pub mod analyze;
pub mod catalogue;
pub mod decode;
pub mod engine;
#[cfg(feature = "parquet")]
pub mod export;
pub mod generate;
pub mod inventory;
pub mod live;
pub mod model;
pub mod render;
pub mod source;
