use super::recover::{end_of_broken, next_boundary, unit_end};
use super::scan::text_end;
use super::*;
use memchr::memmem;
use proptest::prelude::*;
use quick_xml::events::Event as X;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::borrow::Cow;

thread_local! {
    /// The `<` bytes `marks` looked at on this thread: recovery's searches must stay
    /// linear in the input (`recovery_looks_at_each_tag_a_bounded_number_of_times`).
    pub(super) static MARKS_SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[test]
fn recovery_looks_at_each_tag_a_bounded_number_of_times() {
    // Each of these once searched to the end of the chunk per broken document (or per
    // document the scanner gave up on): 4 MB took minutes.
    for (name, unit) in [
        ("comments", "<!--c--><a/>"),
        ("mismatched end tags", "<Response></x>"),
        ("junk between roots", "x<Response/>"),
        ("unclosed declarations", "<?xml >>>"),
        ("tags cut short", "<a<a"),
        ("nested roots", "<Response><Response></Response>"),
    ] {
        for n in [1_000usize, 4_000] {
            let data = unit.repeat(n);
            let tags = memchr::memchr_iter(b'<', data.as_bytes()).count() as u64;
            MARKS_SEEN.with(|c| c.set(0));
            decode(
                data.as_bytes(),
                1,
                0,
                &mut crate::decode::Collect::default(),
            );
            let seen = MARKS_SEEN.with(|c| c.get());
            assert!(
                seen <= 4 * tags,
                "{name} x {n}: {seen} looks at {tags} tags"
            );
        }
    }
}

mod reference {
    use super::*;

    /// The text (or CDATA) of the innermost open element, the last of `open`.
    fn element_text<'a>(doc: &mut Doc<'a>, open: &[El], text: Cow<'a, str>) {
        let (Cow::Borrowed(v), Some((&el, outer))) = (text, open.split_last()) else {
            return;
        };
        let parent = outer.last().copied().unwrap_or(El::Other);
        doc.text(el, parent, v.as_bytes().trim_ascii());
    }

    /// The decoder as it was before the scanner (one `NsReader` over the chunk), kept
    /// verbatim as the oracle the two-reader decoder must match.
    pub fn decode(data: &[u8], first_line: u64, offset: u64, sink: &mut impl Sink) {
        let mut at = Positions {
            data,
            offset,
            pos: 0,
            line: first_line,
        };
        let mut base = 0usize;
        // Decoded GBCS payloads, reused for every document of the chunk.
        let mut scratch = Vec::new();
        'reader: while base < data.len() {
            let mut reader = NsReader::from_reader(&data[base..]);
            reader.config_mut().check_end_names = true;
            let mut doc = Doc::default();
            let mut doc_start: Option<usize> = None;
            let mut stack = [El::Other; MAX_DEPTH];
            let mut depth = 0usize;
            let mut foreign_depth = 0usize;
            loop {
                let before = base + reader.buffer_position() as usize;
                let res = reader.read_resolved_event();
                let (ns, event) = match res {
                    Ok(pair) => pair,
                    Err(e) => {
                        let err_at = base + reader.buffer_position() as usize;
                        let start = doc_start.unwrap_or(before);
                        // Resume at the next document after the broken one's start: an error
                        // found at the end of input may belong to a document cut short much earlier.
                        let resume = end_of_broken(data, start, data.len());
                        let reason = if resume < err_at && resume < data.len() {
                            "truncated XML document (the next document starts before it ends)"
                                .to_string()
                        } else if err_at >= data.len() {
                            format!("truncated XML document (the input ends inside it): {e}")
                        } else {
                            format!("malformed XML: {e}")
                        };
                        at.reject(sink, start, resume, reason);
                        base = resume;
                        continue 'reader;
                    }
                };
                let accepted_ns = match &ns {
                    ResolveResult::Bound(n) => {
                        n.as_ref().as_bytes() == NS_DUIS || n.as_ref().as_bytes() == NS_MMC
                    }
                    ResolveResult::Unbound => true,
                    ResolveResult::Unknown(_) => false,
                };
                match event {
                    X::Start(ref e) | X::Empty(ref e) => {
                        let is_empty = matches!(event, X::Empty(_));
                        if depth == 0 {
                            doc_start.get_or_insert(before);
                            doc = Doc::default();
                        }
                        let el = if accepted_ns && foreign_depth == 0 {
                            classify(e.local_name().as_ref().as_bytes())
                        } else {
                            El::Other
                        };
                        let parent = if depth > 0 {
                            stack[(depth - 1).min(MAX_DEPTH - 1)]
                        } else {
                            El::Other
                        };
                        if depth == 0 {
                            doc.root = Some(el);
                        } else if parent == El::Body && doc.body.is_none() && depth == 2 {
                            doc.body = Some(el);
                        }
                        match el {
                            El::Header if depth == 1 => doc.in_header = !is_empty,
                            El::FutureDatedDeviceAlertMessage => doc.future_dated = true,
                            El::DeviceAlertMessage
                                if doc.body == Some(El::SMETS1ResponseMessage) =>
                            {
                                doc.smets1_alert = true
                            }
                            El::DCCAlert => doc.in_dcc_alert = !is_empty,
                            _ => {}
                        }
                        if !is_empty {
                            if !accepted_ns || foreign_depth > 0 {
                                foreign_depth += 1;
                            }
                            if depth < MAX_DEPTH {
                                stack[depth] = el;
                            }
                            depth += 1;
                        } else if depth == 0 {
                            let end = base + reader.buffer_position() as usize;
                            finish(
                                &doc,
                                doc_start.take().unwrap_or(before),
                                end,
                                &mut at,
                                sink,
                                &mut scratch,
                            );
                        }
                    }
                    X::End(_) => {
                        depth = depth.saturating_sub(1);
                        foreign_depth = foreign_depth.saturating_sub(1);
                        let el = if depth < MAX_DEPTH {
                            stack[depth]
                        } else {
                            El::Other
                        };
                        match el {
                            El::Header if depth == 1 => doc.in_header = false,
                            El::DCCAlert => doc.in_dcc_alert = false,
                            _ => {}
                        }
                        if depth == 0 {
                            let end = base + reader.buffer_position() as usize;
                            finish(
                                &doc,
                                doc_start.take().unwrap_or(before),
                                end,
                                &mut at,
                                sink,
                                &mut scratch,
                            );
                        }
                    }
                    X::Text(t) if depth > 0 && depth <= MAX_DEPTH => {
                        element_text(&mut doc, &stack[..depth], t.into_inner())
                    }
                    X::CData(t) if depth > 0 && depth <= MAX_DEPTH => {
                        element_text(&mut doc, &stack[..depth], t.into_inner())
                    }
                    X::Text(ref t)
                        if depth == 0
                            && !t.as_ref().as_bytes().iter().all(u8::is_ascii_whitespace) =>
                    {
                        // Junk between documents: reject it as one record and move on.
                        let start = before
                            + data[before..]
                                .iter()
                                .take_while(|b| b.is_ascii_whitespace())
                                .count();
                        let resume = next_boundary(data, start + 1).unwrap_or(data.len());
                        at.reject(sink, start, resume, "text outside any XML document".into());
                        base = resume;
                        continue 'reader;
                    }
                    X::DocType(_) | X::Decl(_) | X::PI(_) | X::Comment(_) if depth == 0 => {
                        doc_start.get_or_insert(before);
                    }
                    X::Decl(_) | X::DocType(_) => {
                        // A declaration inside an open document: the document was cut short, and
                        // the next one begins here, or earlier if the cut swallowed it.
                        let start = doc_start.unwrap_or(before);
                        let resume = end_of_broken(data, start, before);
                        let reason =
                            "truncated XML document (the next document starts before it ends)";
                        at.reject(sink, start, resume, reason.into());
                        base = resume;
                        continue 'reader;
                    }
                    X::Eof => {
                        let Some(start) = doc_start else {
                            break 'reader;
                        };
                        let resume = end_of_broken(data, start, data.len());
                        let reason = if resume < data.len() {
                            "truncated XML document (the next document starts before it ends)"
                        } else {
                            "truncated XML document (ends before its root element closes)"
                        };
                        at.reject(sink, start, resume, reason.into());
                        base = resume;
                        continue 'reader;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Everything a sink is told, in order, positions and raw bytes included.
#[derive(Default, Debug, PartialEq)]
struct Told(Vec<String>);

impl Sink for Told {
    fn event(&mut self, ev: &Event) {
        self.0.push(format!("{ev:?}"));
    }
    fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]) {
        self.0.push(format!(
            "reject line {line} offset {offset}: {reason} {raw:?}"
        ));
    }
}

/// The reference reader under the rule both readers follow: the stream is cut where a
/// chunk may end (before every `<?xml` after the start, after every root end tag), and each
/// piece is read on its own. A piece cut before a declaration is followed by the next
/// document; one that ends with a root end tag its reader did not take as the document's
/// end is malformed there; a byte-order mark starting a piece after the stream's start is
/// junk.
fn reference_by_unit(data: &[u8], first_line: u64, offset: u64, sink: &mut impl Sink) {
    let (mut from, mut line) = (0, first_line);
    while from < data.len() {
        let (cut, at_root_end) = unit_end(data, from);
        let piece = &data[from..cut];
        let at = offset + from as u64;
        let end = offset + cut as u64;
        let ws = piece.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if piece[ws..].starts_with(BOM) && at + ws as u64 > 0 {
            let resume = next_boundary(piece, ws + 1).unwrap_or(piece.len());
            let l = line + memchr::memchr_iter(b'\n', &piece[..ws]).count() as u64;
            sink.reject(
                l,
                at + ws as u64,
                "text outside any XML document".into(),
                &piece[ws..resume],
            );
            line += memchr::memchr_iter(b'\n', &piece[..resume]).count() as u64;
            from += resume;
            continue;
        }
        let reason = if at_root_end {
            ROOT_END_INSIDE
        } else {
            NEXT_DOCUMENT
        };
        if at_root_end || cut < data.len() {
            let mut ends = EndsAt {
                sink: &mut *sink,
                end,
                reason,
            };
            reference::decode(piece, line, at, &mut ends);
        } else {
            reference::decode(piece, line, at, sink);
        }
        line += memchr::memchr_iter(b'\n', piece).count() as u64;
        from = cut;
    }
}

/// Both decoders over the same bytes tell the sink the same things.
fn same_as_reference(data: &[u8]) -> Told {
    let (mut got, mut want) = (Told::default(), Told::default());
    decode(data, 7, 1000, &mut got);
    reference_by_unit(data, 7, 1000, &mut want);
    assert_eq!(
        got,
        want,
        "input: {:?}",
        String::from_utf8_lossy(&data[..data.len().min(4000)])
    );
    got
}

fn samples() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read(root.join("samples/alerts.xml")).unwrap()
}

/// The documents of a stream, declaration included.
fn docs(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut starts: Vec<usize> = memmem::find_iter(stream, b"<?xml").collect();
    starts.push(stream.len());
    starts
        .windows(2)
        .map(|w| stream[w[0]..w[1]].to_vec())
        .collect()
}

/// A signed alert as the XML bench writes them (one line, a `ds:Signature` block).
const SIGNED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" schemaVersion=\"5.1\"><sr:Header><sr:ResponseID>00-0D-6F-B2-91-B2-B2-D4:90-B3-D5-1F-30-01-00-00:1630454400801</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>2021-09-01T00:00:00.456Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:DeviceAlertMessage><sr:AlertCode>8F1C</sr:AlertCode><sr:GBCSPayload>3wkDAAABe56nxyEIAA1vspGystQIkLPVHzABAAAAAhABGQ+ep8chAAICEo8cCQwH5QkBAwAAAAAAAABA6XHcdLEcOE424guq+L/HsXJerAtYWq3+mPDmcFtK/8Ao2f2xV3uRzfKR6UFEpQL6VWwwMghDBYHLtpS+ocC7pg==</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body><ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/><ds:Reference URI=\"\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>8kW6+fI3Lh7a/Xyv1yeBi5OdaAlyBGaY3q3TUYyftZg=</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>cqBp4q64pJiBZkvEBqzZB0VZzEL62LxoWth2AFml1TgPs7PJYiOiQI6pEvjQ/esxdwWFzBU8dpTV077RUhIZ6g==</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=DCC ACB CA 01,OU=07</ds:X509IssuerName><ds:X509SerialNumber>117843297711240989342145667923345670871</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature></sr:Response>\n";

/// Documents in the shapes the decoder promises to read: prefixes that vary, a default
/// namespace, the MMC namespace, a foreign one, single quotes, CRLF, padded end tags,
/// offsets in times, a wrapper element; and the samples, planted faults included.
fn pool() -> Vec<Vec<u8>> {
    let mut out = docs(&samples());
    let s = String::from_utf8(out[5].clone()).unwrap();
    let mut add = |t: String| out.push(t.into_bytes());
    add(SIGNED.to_string());
    add(SIGNED
        .replace("sr:", "duis:")
        .replace("xmlns:sr", "xmlns:duis"));
    add(SIGNED.replace("sr:", "").replace("xmlns:sr=", "xmlns="));
    add(SIGNED.replace("ServiceUserGateway", "ResponseAndAlert"));
    add(SIGNED.replace("ServiceUserGateway\"", "Other\""));
    add(SIGNED.replace("xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ", ""));
    add(SIGNED.replace("sr:", "").replace("ds:", "").replace(" xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"", ""));
    add(SIGNED.replace("ds:", "sr:"));
    add(SIGNED
        .replace("=\"", "='")
        .replace("\" ", "' ")
        .replace("\">", "'>")
        .replace("\"/>", "'/>"));
    add(SIGNED
        .replace('\n', "\r\n")
        .replace("</sr:Header>", "</sr:Header \r\n>"));
    add(SIGNED
        .replace(".456Z", "+01:00")
        .replace("<sr:Body>", "<sr:Body>\n  "));
    add(format!(
        "<alerts>\n{}</alerts>\n",
        SIGNED.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "")
    ));
    add(s.replace("sr:", "x:").replace("xmlns:sr", "xmlns:x"));
    add(s.replace(
        "<sr:Response ",
        "<sr:Response xmlns=\"http://www.dccinterface.co.uk/ServiceUserGateway\" ",
    ));
    add(s.replace("<sr:Header>", "<sr:Header xmlns:sr=\"urn:elsewhere\">"));
    add(s.replace("<sr:Header>", "<sr:Header><sr:Note a=\"1\" b='2'/>"));
    out
}

#[test]
fn matches_the_reference_on_the_samples() {
    let data = samples();
    let told = same_as_reference(&data);
    assert!(told.0.iter().any(|t| t.starts_with("reject")));
    assert!(told.0.len() > 3000);
    // As chunks of any size would cut it (starting at document starts, ending anywhere).
    let starts: Vec<usize> = memmem::find_iter(&data, b"<?xml").collect();
    for (k, &a) in starts.iter().enumerate().step_by(97) {
        let b = (a + 5000 + k * 131).min(data.len());
        same_as_reference(&data[a..b]);
    }
}

/// The shapes adapters write are read by the scanner itself, not handed on.
#[test]
fn the_scanner_reads_the_plain_shapes() {
    let pool = pool();
    let n = pool.len();
    let plain = [
        &SIGNED.as_bytes().to_vec(),
        &pool[n - 16],
        &pool[n - 14],
        &pool[n - 8],
    ];
    for d in plain.into_iter().chain(pool[..50].iter()) {
        let mut scan = Scan::new(d);
        let got = scan.doc(0);
        assert!(
            matches!(got, Scanned::Doc { start: 0, end } if end == d.len() - 1 || end == d.len()),
            "{}",
            String::from_utf8_lossy(d)
        );
    }
}

/// A byte-order mark right after a document: the reference reads it as text outside
/// any document, and so must the two-reader decoder (a fresh reader would skip it).
#[test]
fn a_bom_after_a_document_is_junk_as_before() {
    for junk in [
        "\u{FEFF}",
        "\u{FEFF}\n",
        "\u{FEFF}<?xml version=\"1.0\"?>",
        "x",
        "\u{FEFF}\u{FEFF}",
    ] {
        let one = SIGNED.trim_end();
        let data = format!("{one}{junk}{SIGNED}{one}{junk}{SIGNED}");
        let told = same_as_reference(data.as_bytes());
        assert!(
            told.0
                .iter()
                .any(|t| t.contains("text outside any XML document")),
            "{told:?}"
        );
    }
}

#[test]
fn matches_the_reference_on_the_pool() {
    let pool = pool();
    same_as_reference(&pool.concat());
    for d in &pool {
        same_as_reference(d);
    }
}

/// The real DUIS messages (`../shared/realdata`, read in place) back to back.
#[test]
fn matches_the_reference_on_real_messages() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    let mut all = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                let b = std::fs::read(&p).unwrap();
                same_as_reference(&b);
                all.extend_from_slice(&b);
                all.push(b'\n');
            }
        }
    }
    assert!(!all.is_empty());
    same_as_reference(&all);
}

/// Bytes that change how XML reads, for the damage below.
const NASTY: &[&str] = &[
    "&amp;",
    "&",
    "&#x41;",
    "&lt;",
    ";",
    "<!-- c -->",
    "<!--",
    "-->",
    "<![CDATA[8F1C]]>",
    "\u{FEFF}",
    "<",
    ">",
    "/>",
    "\"",
    "'",
    "=",
    ":",
    " ",
    "\n",
    "\t",
    "\x0C",
    "</x>",
    "<x>",
    "<x/>",
    "<?xml version=\"1.0\"?>",
    "<?pi x?>",
    "<!DOCTYPE x>",
    " xmlns:sr=\"urn:x\"",
    " xmlns=\"\"",
    " xmlns:ds=\"http://www.dccinterface.co.uk/ServiceUserGateway\"",
    " xmlns:xml=\"urn:x\"",
    " a='>'",
    "\u{e9}",
    "</sr:Response>",
    "<sr:Response>",
    "</alerts>",
    "<sr:Header>",
    "sr:",
    "xmlns",
    "\u{0}",
    ":",
    "<:x/>",
    " xmlns:=\"urn:x\"",
    " xmlns:p=\"http://www.w3.org/2000/xmlns/\"",
    " xmlnsx=\"urn:x\"",
    " a=\"1\"b=\"2\"",
    " a = \"1\"",
    " a=1",
    " a",
    "/",
    "</sr:Header >",
    "\u{FEFF}<?xml version=\"1.0\"?>",
    " xmlns=\"http://www.dccinterface.co.uk/ResponseAndAlert\"",
    "<sr:AlertCode>81B8</sr:AlertCode>",
];

/// Where an edit lands: anywhere, or snapped to the markup around `at` (just before a
/// `>`, just after a `<`, just after a `>`), where damage changes how tags read.
fn snap(data: &[u8], at: usize, how: usize) -> usize {
    let at = at % (data.len() + 1);
    let find = |b: u8| memchr::memchr(b, &data[at..]).map(|i| at + i);
    match how % 4 {
        0 => at,
        1 => find(b'>').unwrap_or(at),
        2 => find(b'<').map_or(at, |i| i + 1),
        _ => find(b'>').map_or(at, |i| i + 1),
    }
}

fn damage(mut data: Vec<u8>, edits: &[(usize, usize, usize, u8)], invalid_utf8: bool) -> Vec<u8> {
    for &(kind, at, what, byte) in edits {
        let at = snap(&data, at, kind / 4);
        match kind % 4 {
            0 => {
                let t = NASTY[what % NASTY.len()].as_bytes();
                data.splice(at..at, t.iter().copied());
            }
            1 => {
                let end = (at + what % 40).min(data.len());
                data.drain(at..end);
            }
            2 if at < data.len() => data[at] = byte,
            _ => data.truncate(at),
        }
    }
    if invalid_utf8 && !data.is_empty() {
        let n = data.len() / 2;
        data[n] = 0xFF;
    }
    data
}

/// `split_id` as it was: an iterator over `:`-separated parts.
fn split_id_by_parts(id: &[u8]) -> Option<(DeviceId, DeviceId)> {
    let mut parts = id.trim_ascii().split(|&b| b == b':');
    let a = DeviceId::parse(parts.next()?)?;
    let b = DeviceId::parse(parts.next()?)?;
    let counter = parts.next()?;
    if parts.next().is_some() || counter.is_empty() || !counter.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((a, b))
}

proptest! {
    /// Ids made of the characters ids are made of, in any order.
    #[test]
    fn split_id_reads_ids_as_before(id in "[0-9A-Fa-f:\\- x]{0,60}") {
        prop_assert_eq!(split_id(id.as_bytes()), split_id_by_parts(id.as_bytes()));
    }

    #[test]
    fn split_id_reads_real_shaped_ids_as_before(
        a in "[0-9A-F]{2}(-[0-9A-F]{2}){7}",
        b in "[0-9A-F]{2}([-:][0-9A-F]{2}){7}",
        counter in "[0-9]{0,14}",
        pad in " {0,2}",
    ) {
        let id = format!("{pad}{a}:{b}:{counter}{pad}");
        prop_assert_eq!(split_id(id.as_bytes()), split_id_by_parts(id.as_bytes()));
    }
}

/// `SIGNED` with its `k`-th text (bytes between `>` and the next `<`, not empty; the
/// 0th is the line break after the declaration) put as `t`, for each `(k, t)`.
fn signed_with_texts(texts: &[(usize, String)]) -> Vec<u8> {
    let d = SIGNED.as_bytes();
    let mut gaps = Vec::new();
    let mut i = 0;
    while let Some(g) = memchr::memchr(b'>', &d[i..]).map(|g| i + g + 1) {
        let Some(lt) = memchr::memchr(b'<', &d[g..]).map(|l| g + l) else {
            break;
        };
        if lt > g {
            gaps.push((g, lt));
        }
        i = lt;
    }
    let mut out = d.to_vec();
    let mut edits: Vec<(usize, usize, &str)> = texts
        .iter()
        .map(|(k, t)| {
            let (a, b) = gaps[k % gaps.len()];
            (a, b, t.as_str())
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    edits.dedup_by_key(|e| e.0);
    for (a, b, t) in edits {
        out.splice(a..b, t.bytes());
    }
    out
}

/// Documents that follow the template are read by it (not in full), and as the reference
/// reads them.
#[test]
fn documents_like_the_last_one_are_read_by_its_template() {
    let docs: Vec<Vec<u8>> = (0..4)
        .map(|k| {
            signed_with_texts(&[
                (
                    1,
                    format!("00-0D-6F-B2-91-B2-B2-D{k}:90-B3-D5-1F-30-01-00-00:{k}"),
                ),
                (4, ["8F1C", "8F1C", "8F43", "8F1C"][k].into()),
            ])
        })
        .collect();
    let data = docs.concat();
    let mut scan = Scan::new(&data);
    let mut at = 0;
    let mut by_template = 0;
    while at < data.len() {
        if let Some(Scanned::Doc { end, .. }) = scan.by_shape(at) {
            by_template += 1;
            at = end;
            continue;
        }
        match scan.next(at) {
            Scanned::Doc { end, .. } => at = end,
            Scanned::Rest => break,
            Scanned::GiveUp => panic!("the scanner reads these"),
        }
    }
    assert_eq!(by_template, 3, "all but the first by the template");
    let told = same_as_reference(&data);
    assert_eq!(told.0.len(), 4);
    // The payload is still checked against the envelope.
    assert!(!told.0[1].starts_with("reject"), "{told:?}");
    assert!(told.0[2].contains("disagrees"), "{told:?}");
}

/// Texts that must not be read by the template (empty where it had text, a reference,
/// bytes that are not ASCII) and markup that differs: read as the reference reads them.
#[test]
fn what_the_template_does_not_fit_reads_as_the_reference() {
    let mut data = SIGNED.as_bytes().to_vec();
    for t in [
        "",
        "  ",
        "&amp;",
        "\u{e9}t\u{e9}",
        "a > b",
        "\n",
        "x\u{FEFF}",
    ] {
        for k in 0..10 {
            data.extend(signed_with_texts(&[(k, t.to_string())]));
            data.extend(SIGNED.as_bytes());
        }
    }
    data.extend(SIGNED.replace("5.1", "5.2").as_bytes());
    data.extend(
        SIGNED
            .replace("<sr:Body>", "<sr:Body><!-- c -->")
            .as_bytes(),
    );
    data.extend(SIGNED.as_bytes());
    same_as_reference(&data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Documents from the pool, damaged anywhere: the two-reader decoder tells the sink
    /// exactly what the reference decoder tells it.
    #[test]
    fn damaged_documents_read_as_the_reference_reads_them(
        picks in proptest::collection::vec(0usize..10_000, 1..6),
        edits in proptest::collection::vec((0usize..16, 0usize..20_000, 0usize..1000, any::<u8>()), 0..4),
        invalid_utf8 in proptest::bool::weighted(0.05),
    ) {
        let pool = pool();
        let n = pool.len();
        // Half the picks from the hand-made shapes at the end of the pool.
        let data: Vec<u8> = picks
            .iter()
            .flat_map(|&p| pool[if p % 2 == 0 { n - 17 + p % 17 } else { p % n }].clone())
            .collect();
        same_as_reference(&damage(data, &edits, invalid_utf8));
    }

    /// `text_end` finds what a byte-at-a-time look finds.
    #[test]
    fn text_end_as_byte_by_byte(
        data in proptest::collection::vec(prop_oneof![Just(b'<'), Just(b'&'), Just(0xC3u8), 0x20u8..0x7F], 0..80),
        from in 0usize..80,
    ) {
        let from = from.min(data.len());
        let want = data[from..].iter().position(|&b| b == b'<').map(|e| {
            (from + e, data[from..from + e].iter().any(|&b| b == b'&' || b >= 0x80))
        });
        prop_assert_eq!(text_end(&data, from), want);
    }

    /// Streams of the bench's signed alert with any texts, damaged or not: the template
    /// (learnt from one document, applied to the next) reads as the reference does.
    #[test]
    fn any_texts_read_as_the_reference_reads_them(
        texts in proptest::collection::vec(
            proptest::collection::vec((0usize..20, "[ -~\n\u{e9}\u{FEFF}&<>]{0,12}"), 0..3),
            2..6,
        ),
        edits in proptest::collection::vec((0usize..16, 0usize..20_000, 0usize..1000, any::<u8>()), 0..2),
    ) {
        let data: Vec<u8> = texts.iter().flat_map(|t| signed_with_texts(t)).collect();
        same_as_reference(&damage(data, &edits, false));
    }
}
