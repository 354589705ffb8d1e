//! Sources: files, directories (walked recursively) and stdin, decompressed and cut into chunks.
//!
//! Compression (gzip, including multi-member files, and zstd) and format (DUIS XML, JSON lines,
//! CSV) are sniffed from the first bytes, never trusted from the file name. A reader thread cuts
//! each source into chunks that end on a record boundary, so workers can decode chunks in
//! parallel; each chunk knows its first line and byte offset, so rejects name their position.

mod chunk;
mod error;
pub mod mapped;
pub mod mapped_cut;
pub mod named;
mod open;
pub mod pipeline;
pub mod segment;

pub use chunk::{
    Boundary, Chunk, ChunkData, Chunker, MAX_QUOTED_LINES, QuotedEnd, is_root_name, quoted_end,
    root_end_at,
};
pub use error::InputError;
pub use open::{
    Format, Input, MAX_HEADER, Opened, expand_inputs, open_input, read_header, sniff_format,
};
