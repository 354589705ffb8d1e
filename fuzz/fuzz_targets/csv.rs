//! CSV: the header row (read with the batch path's bounded `read_header`, then
//! `CsvLayout::from_header`), then the records.
#![no_main]
mod common;

use fleetwatch::decode::ColumnMap;
use fleetwatch::decode::csv::CsvLayout;
use fleetwatch::engine::scan::SourceMeta;
use fleetwatch::source::{Boundary, Format, read_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    let mut header = Vec::new();
    if read_header(&mut r, &mut header).is_err() {
        return;
    }
    let Ok(layout) = CsvLayout::from_header(&header, &ColumnMap::default()) else {
        return;
    };
    let meta = SourceMeta {
        format: Format::Csv,
        csv: Some(layout),
    };
    common::check(&meta, Boundary::CsvRecord, r, 2, header.len() as u64);
});
