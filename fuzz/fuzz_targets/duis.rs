//! DUIS XML documents, as the batch path decodes a source sniffed as XML.
#![no_main]
mod common;

use fleetwatch::engine::scan::SourceMeta;
use fleetwatch::source::{Boundary, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let meta = SourceMeta {
        format: Format::DuisXml,
        csv: None,
    };
    common::check(&meta, Boundary::XmlDocument, data, 1, 0);
});
