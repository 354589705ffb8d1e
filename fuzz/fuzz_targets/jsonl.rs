//! JSON lines, as the batch path decodes a source sniffed as JSON lines.
#![no_main]
mod common;

use fleetwatch::engine::scan::SourceMeta;
use fleetwatch::source::{Boundary, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let meta = SourceMeta {
        format: Format::JsonLines,
        csv: None,
    };
    common::check(&meta, Boundary::Line, data, 1, 0);
});
