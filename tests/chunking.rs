//! A record's fate must not depend on where a chunk ends: the batch path cuts a source into
//! chunks whose size depends on the read size and the thread count, so the same bytes must give
//! the same events and the same rejects (line and reason) however they are cut. The fuzz targets
//! (`fuzz/fuzz_targets/common.rs`) check this on mutated inputs; this test checks it on their
//! seeds and on hand-made broken documents with every chunk size from 1 to 128 bytes, so a
//! regression shows up in `cargo test` without the nightly toolchain.

use fleetwatch::decode::csv::CsvLayout;
use fleetwatch::decode::{Collect, ColumnMap};
use fleetwatch::engine::scan::{SourceMeta, decode_in_chunks};
use fleetwatch::source::{Boundary, Format, read_header};
use std::path::Path;

fn decode_all(
    meta: &SourceMeta,
    boundary: Boundary,
    data: &[u8],
    first_line: u64,
    offset: u64,
    target: usize,
) -> Collect {
    decode_in_chunks(meta, boundary, data, (first_line, offset), target)
}

/// Every chunk size from 1 to 128 bytes gives what one chunk gives.
fn assert_cut_anywhere(
    name: &str,
    meta: &SourceMeta,
    boundary: Boundary,
    data: &[u8],
    first_line: u64,
    offset: u64,
) -> Collect {
    let whole = decode_all(meta, boundary, data, first_line, offset, 4 << 20);
    for size in 1..=128 {
        let cut = decode_all(meta, boundary, data, first_line, offset, size);
        assert_eq!(
            whole.events, cut.events,
            "{name}: events differ with {size}-byte chunks"
        );
        assert_eq!(
            whole.rejects, cut.rejects,
            "{name}: rejects differ with {size}-byte chunks"
        );
        assert_eq!(
            whole.rejected, cut.rejected,
            "{name}: rejected bytes differ with {size}-byte chunks"
        );
    }
    whole
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

const XML: SourceMeta = SourceMeta {
    format: Format::DuisXml,
    csv: None,
};

#[test]
fn duis_seeds_decode_the_same_however_they_are_cut() {
    for (name, data) in seeds("duis") {
        let c = assert_cut_anywhere(&name, &XML, Boundary::XmlDocument, &data, 1, 0);
        assert!(!c.events.is_empty(), "{name}: no events");
    }
}

#[test]
fn truncated_documents_get_one_reason_however_they_are_cut() {
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/duis/sample-3docs.xml"),
    )
    .unwrap();
    // Each document cut short at several places, followed by whole documents, and the cut
    // document last.
    let starts: Vec<usize> = memchr::memmem::find_iter(&sample, b"<?xml").collect();
    assert!(starts.len() >= 2, "the seed holds several documents");
    let first = &sample[starts[0]..starts[1]];
    let rest = &sample[starts[1]..];
    for cut_at in [
        first.len() / 4,
        first.len() / 2,
        first.len() * 3 / 4,
        first.len() - 3,
    ] {
        let mut broken_first = first[..cut_at].to_vec();
        broken_first.extend_from_slice(rest);
        let c = assert_cut_anywhere(
            &format!("first cut at {cut_at}"),
            &XML,
            Boundary::XmlDocument,
            &broken_first,
            1,
            0,
        );
        assert_eq!(c.rejects.len(), 1, "cut at {cut_at}: {:?}", c.rejects);
        assert!(
            c.rejects[0]
                .1
                .contains("the next document starts before it ends"),
            "{:?}",
            c.rejects
        );

        let mut broken_last = rest.to_vec();
        broken_last.extend_from_slice(&first[..cut_at]);
        let c = assert_cut_anywhere(
            &format!("last cut at {cut_at}"),
            &XML,
            Boundary::XmlDocument,
            &broken_last,
            1,
            0,
        );
        assert_eq!(c.rejects.len(), 1, "cut at {cut_at}: {:?}", c.rejects);
        assert!(
            !c.rejects[0].1.contains("the next document"),
            "{:?}",
            c.rejects
        );
    }
}

#[test]
fn csv_seeds_decode_the_same_however_they_are_cut() {
    for (name, data) in seeds("csv") {
        let mut r = &data[..];
        let mut header = Vec::new();
        read_header(&mut r, &mut header).unwrap();
        let layout = CsvLayout::from_header(&header, &ColumnMap::default()).unwrap();
        let meta = SourceMeta {
            format: Format::Csv,
            csv: Some(layout),
        };
        let c = assert_cut_anywhere(&name, &meta, Boundary::CsvRecord, r, 2, header.len() as u64);
        assert!(!c.events.is_empty(), "{name}: no events");
    }
}

#[test]
fn jsonl_seeds_decode_the_same_however_they_are_cut() {
    for (name, data) in seeds("jsonl") {
        let meta = SourceMeta {
            format: Format::JsonLines,
            csv: None,
        };
        let c = assert_cut_anywhere(&name, &meta, Boundary::Line, &data, 1, 0);
        assert!(!c.events.is_empty(), "{name}: no events");
    }
}

#[test]
fn a_broken_declaration_does_not_swallow_the_documents_after_it() {
    // Fuzz finding: an unterminated `<?xml` inside a document read as a processing instruction
    // up to the next document's `?>`, swallowing that document when read in one chunk but not
    // when the chunker cut there. Every `<?xml` now starts a document, read either way.
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/duis/sample-3docs.xml"),
    )
    .unwrap();
    let starts: Vec<usize> = memchr::memmem::find_iter(&sample, b"<?xml").collect();
    let payload = memchr::memmem::find(&sample, b"<sr:GBCSPayload>")
        .or_else(|| memchr::memmem::find(&sample, b"Payload>"))
        .unwrap()
        + 20;
    assert!(payload < starts[1]);
    let mut broken = sample[..payload].to_vec();
    broken.extend_from_slice(b"\n<?xml version=\"1");
    broken.extend_from_slice(&sample[payload..]);
    let c = assert_cut_anywhere(
        "broken declaration",
        &XML,
        Boundary::XmlDocument,
        &broken,
        1,
        0,
    );
    let rest = decode_all(
        &XML,
        Boundary::XmlDocument,
        &sample[starts[1]..],
        1,
        0,
        4 << 20,
    );
    assert!(!rest.events.is_empty());
    assert_eq!(
        c.events, rest.events,
        "the documents after the broken one are read"
    );
    assert_eq!(c.rejects.len(), 2, "{:?}", c.rejects);
}

#[test]
fn a_root_end_tag_inside_a_document_ends_it_however_it_is_cut() {
    // Fuzz finding 7: the chunker may cut after any root end tag (`</sr:Response>`), so one
    // that closes an inner element (a nested `Response`, or one in a comment) split a
    // document into two rejects, or one, or none, depending on where chunks ended. The
    // decoder now never reads across such a tag either: the document is malformed there.
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/duis/sample-3docs.xml"),
    )
    .unwrap();
    let starts: Vec<usize> = memchr::memmem::find_iter(&sample, b"<?xml").collect();
    let first = &sample[starts[0]..starts[1]];
    let rest = &sample[starts[1]..];
    let header = memchr::memmem::find(first, b"<sr:Header>").unwrap();
    let good = decode_all(&XML, Boundary::XmlDocument, rest, 1, 0, 4 << 20);
    assert!(!good.events.is_empty() && good.rejects.is_empty());
    for inner in [
        &b"<sr:Response>x</sr:Response>"[..],
        b"<!-- </sr:Response> -->",
        b"<![CDATA[ </sr:Response> ]]>",
        b"<a>x</sr:Response>",
    ] {
        let mut broken = first[..header].to_vec();
        broken.extend_from_slice(inner);
        broken.extend_from_slice(&first[header..]);
        broken.extend_from_slice(rest);
        let name = String::from_utf8_lossy(inner).to_string();
        let c = assert_cut_anywhere(&name, &XML, Boundary::XmlDocument, &broken, 1, 0);
        assert_eq!(
            c.events, good.events,
            "{name}: the documents after it are read"
        );
        assert!(!c.rejects.is_empty(), "{name}");
        // A nested `Response` reads as a document inside the broken one (five rejects);
        // a comment or CDATA section leaves its tail as text (two).
        let first = &c.rejects[0].1;
        assert!(
            first.starts_with("malformed XML") || first.starts_with("truncated XML"),
            "{name}: {:?}",
            c.rejects
        );
        // Every byte of the broken document is in a reject, once, in order.
        let rejected: Vec<u8> = c.rejected.iter().flat_map(|r| r.1.clone()).collect();
        let doc_len = broken.len() - rest.len();
        assert_eq!(
            String::from_utf8_lossy(&rejected)
                .split_whitespace()
                .collect::<String>(),
            String::from_utf8_lossy(&broken[..doc_len])
                .split_whitespace()
                .collect::<String>(),
            "{name}"
        );
    }
}

/// Inputs the fuzzers found (fuzz/regressions/TARGET/), each read the same however it is cut.
#[test]
fn fuzz_regressions_decode_the_same_however_they_are_cut() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/duis");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        assert_cut_anywhere(
            &p.display().to_string(),
            &XML,
            Boundary::XmlDocument,
            &data,
            1,
            0,
        );
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}
