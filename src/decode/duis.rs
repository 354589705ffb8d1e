//! DUIS XML: many documents back to back, as an adapter logs them.
//!
//! Elements are matched on local name *and* namespace URI (the DUIS or the MMC namespace, or
//! none), never on a prefix. Each document becomes one record: an alert (`DeviceAlertMessage`,
//! `FutureDatedDeviceAlertMessage`, `DCCAlertMessage`, a SMETS1 device alert, `S1SPAlert`), or a
//! response or request, which is counted but is not an alert. DTDs are never processed, so an
//! external entity (`&xxe;`) stays an unexpanded reference. A document that is not well formed
//! is rejected and decoding resumes at the next document start.
//!
//! Two readers, one answer: a scanner of its own reads the plain XML adapters write (tags,
//! attributes, text; `memchr` over the borrowed chunk, a small namespace table) at several
//! times the speed of a general reader, and hands every document it is not sure of (comments,
//! CDATA, references, DTDs, anything malformed) to quick-xml's `NsReader`, the reference,
//! which reads it exactly as it always did. Both feed the same `Walk`; the tests hold the pair
//! to the reference alone, record for record, on samples, real messages and damaged input.
//!
//! Adapters write every document of a kind with the same markup, so the scanner keeps the
//! last document it read in full as a template (`Shape`): a document whose markup equals it
//! byte for byte is read by comparing that markup and finding where each text ends; the
//! texts, the GBCS payload among them, are then decoded and checked as always.

use super::Sink;
use crate::model::time::{check_window, parse_timestamp};
use crate::model::{AlertCode, DeviceId, Event, MessageKind, RecordAttrs, hash_bytes};
use memchr::memmem;
use quick_xml::events::Event as X;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::borrow::Cow;

pub const NS_DUIS: &[u8] = b"http://www.dccinterface.co.uk/ServiceUserGateway";
pub const NS_MMC: &[u8] = b"http://www.dccinterface.co.uk/ResponseAndAlert";

/// The elements the decoder cares about; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum El {
    Response,
    Request,
    S1SPAlert,
    Header,
    Body,
    RequestID,
    ResponseID,
    ResponseDateTime,
    ResponseMessage,
    DeviceAlertMessage,
    FutureDatedDeviceAlertMessage,
    DCCAlertMessage,
    SMETS1ResponseMessage,
    AlertCode,
    FutureDatedAlertCode,
    DCCAlertCode,
    DCCAlert,
    ThrottledAlertCount,
    GBCSPayload,
    GBCSHexAlertCode,
    BusinessOriginatorID,
    DeviceID,
    S1SPAlertCode,
    DateTime,
    Other,
}

fn classify(local: &[u8]) -> El {
    match local {
        b"Response" => El::Response,
        b"Request" => El::Request,
        b"S1SPAlert" => El::S1SPAlert,
        b"Header" => El::Header,
        b"Body" => El::Body,
        b"RequestID" => El::RequestID,
        b"ResponseID" => El::ResponseID,
        b"ResponseDateTime" => El::ResponseDateTime,
        b"ResponseMessage" => El::ResponseMessage,
        b"DeviceAlertMessage" => El::DeviceAlertMessage,
        b"FutureDatedDeviceAlertMessage" => El::FutureDatedDeviceAlertMessage,
        b"DCCAlertMessage" => El::DCCAlertMessage,
        b"SMETS1ResponseMessage" => El::SMETS1ResponseMessage,
        b"AlertCode" => El::AlertCode,
        b"FutureDatedAlertCode" => El::FutureDatedAlertCode,
        b"DCCAlertCode" => El::DCCAlertCode,
        b"DCCAlert" => El::DCCAlert,
        b"ThrottledAlertCount" => El::ThrottledAlertCount,
        b"GBCSPayload" => El::GBCSPayload,
        b"GBCSHexAlertCode" => El::GBCSHexAlertCode,
        b"BusinessOriginatorID" => El::BusinessOriginatorID,
        b"DeviceID" | b"CommsHubDeviceID" => El::DeviceID,
        b"S1SPAlertCode" => El::S1SPAlertCode,
        b"DateTime" => El::DateTime,
        _ => El::Other,
    }
}

/// What one document said, as slices of the chunk.
#[derive(Clone, Copy, Default)]
struct Doc<'a> {
    root: Option<El>,
    body: Option<El>,
    future_dated: bool,
    smets1_alert: bool,
    in_header: bool,
    in_dcc_alert: bool,
    request_id: Option<&'a [u8]>,
    response_id: Option<&'a [u8]>,
    response_time: Option<&'a [u8]>,
    code: Option<&'a [u8]>,
    count: Option<&'a [u8]>,
    device_id: Option<&'a [u8]>,
    originator: Option<&'a [u8]>,
    date_time: Option<&'a [u8]>,
    /// The base64 GBCS payload (decoded by a later stage when present).
    pub payload: Option<&'a [u8]>,
}

const MAX_DEPTH: usize = 64;

/// Splits `EUI:EUI:counter`; returns the two EUIs.
fn split_id(id: &[u8]) -> Option<(DeviceId, DeviceId)> {
    let id = id.trim_ascii();
    let c1 = memchr::memchr(b':', id)?;
    let rest = &id[c1 + 1..];
    let c2 = memchr::memchr(b':', rest)?;
    // All digits, so no third `:` either.
    let counter = &rest[c2 + 1..];
    if counter.is_empty() || !counter.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((DeviceId::parse(&id[..c1])?, DeviceId::parse(&rest[..c2])?))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned()
}

impl<'a> Doc<'a> {
    /// Turns a finished document into a record. `scratch` holds a decoded GBCS payload.
    fn finish(&self, scratch: &mut Vec<u8>) -> Result<Event, String> {
        let root = self.root.ok_or("no root element")?;
        let id = self.response_id.or(self.request_id);
        let message_id = id.map(|i| hash_bytes(i.trim_ascii())).unwrap_or(0);
        // Each id split once: `Some(None)` is an id that does not read.
        let request = self.request_id.map(split_id);
        let response = self.response_id.map(split_id);
        for (name, v, split) in [
            ("RequestID", self.request_id, request),
            ("ResponseID", self.response_id, response),
        ] {
            if let (Some(v), Some(None)) = (v, split) {
                return Err(format!(
                    "invalid {name} `{}` (expected EUI:EUI:counter)",
                    text(v)
                ));
            }
        }
        let mut ev = Event {
            kind: MessageKind::Response,
            ts: 0,
            device: None,
            code: None,
            count: 1,
            message_id,
            attrs: RecordAttrs::default(),
            firmware: None,
        };
        let ts_text = match root {
            El::Request => {
                ev.kind = MessageKind::Request;
                return Ok(ev);
            }
            El::S1SPAlert => {
                ev.kind = MessageKind::DccAlert;
                self.date_time
            }
            El::Response => {
                ev.kind = match self.body {
                    Some(El::DeviceAlertMessage) => MessageKind::DeviceAlert,
                    Some(El::DCCAlertMessage) => MessageKind::DccAlert,
                    Some(El::ResponseMessage) if self.future_dated => MessageKind::FutureDatedAlert,
                    Some(El::SMETS1ResponseMessage) if self.smets1_alert => {
                        MessageKind::DeviceAlert
                    }
                    Some(_) => MessageKind::Response,
                    None => return Err("Response has no Body message".into()),
                };
                self.response_time
            }
            _ => return Err("not a DUIS message".into()),
        };
        let ts_raw = ts_text.ok_or("missing ResponseDateTime")?;
        ev.ts = parse_timestamp(ts_raw)
            .ok_or_else(|| format!("invalid date-time `{}`", text(ts_raw)))?;
        check_window(ev.ts).map_err(|why| format!("date-time `{}` is {why}", text(ts_raw)))?;
        if !ev.kind.is_alert() {
            // A response names the device it came from first in its ResponseID, or as the
            // target of its RequestID.
            ev.device = match (response, request) {
                (Some(r), _) => r.map(|(dev, _)| dev),
                (None, Some(q)) => q.map(|(_, target)| target),
                (None, None) => None,
            };
            return Ok(ev);
        }
        let code_raw = self.code.ok_or("alert without an alert code")?;
        ev.code = Some(
            AlertCode::parse(code_raw)
                .ok_or_else(|| format!("invalid alert code `{}`", text(code_raw)))?,
        );
        if let (Some(payload), Some(code)) = (self.payload, ev.code) {
            ev.firmware = check_payload(payload, code, scratch)?;
        }
        if let Some(c) = self.count {
            ev.count = std::str::from_utf8(c.trim_ascii())
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("invalid ThrottledAlertCount `{}`", text(c)))?;
        }
        let parse_dev = |v: &[u8], what: &str| {
            DeviceId::parse(v).ok_or_else(|| format!("invalid {what} `{}`", text(v)))
        };
        ev.device = if let Some(o) = self.originator {
            Some(parse_dev(o, "BusinessOriginatorID")?)
        } else if let Some(d) = self.device_id {
            Some(parse_dev(d, "DeviceID")?)
        } else if ev.kind == MessageKind::DccAlert {
            None
        } else if let Some(r) = response {
            // Alerts flow device -> user: the ResponseID names the device first.
            r.map(|(dev, _)| dev)
        } else {
            request.flatten().map(|(_, target)| target)
        };
        if ev.device.is_none() && ev.kind != MessageKind::DccAlert {
            return Err("device alert without a device id (no ResponseID or RequestID)".into());
        }
        Ok(ev)
    }

    /// Which field the text of `el` (inside `parent`) fills, if any, given what the document
    /// said so far (its root, whether the header or a `DCCAlert` is open).
    fn field(&self, el: El, parent: El) -> Option<Field> {
        Some(match el {
            El::RequestID if self.in_header => Field::RequestId,
            El::ResponseID if self.in_header => Field::ResponseId,
            El::ResponseDateTime if self.in_header => Field::ResponseTime,
            El::AlertCode if parent == El::DeviceAlertMessage => Field::Code,
            El::FutureDatedAlertCode
            | El::DCCAlertCode
            | El::GBCSHexAlertCode
            | El::S1SPAlertCode => Field::Code,
            El::ThrottledAlertCount => Field::Count,
            El::GBCSPayload => Field::Payload,
            El::BusinessOriginatorID => Field::Originator,
            El::DeviceID if self.in_dcc_alert || self.root == Some(El::S1SPAlert) => {
                Field::DeviceId
            }
            El::DateTime if self.root == Some(El::S1SPAlert) => Field::DateTime,
            _ => return None,
        })
    }

    /// The first text of a field counts.
    #[inline]
    fn fill(&mut self, f: Field, v: &'a [u8]) {
        let slot = match f {
            Field::RequestId => &mut self.request_id,
            Field::ResponseId => &mut self.response_id,
            Field::ResponseTime => &mut self.response_time,
            Field::Code => &mut self.code,
            Field::Count => &mut self.count,
            Field::Payload => &mut self.payload,
            Field::Originator => &mut self.originator,
            Field::DeviceId => &mut self.device_id,
            Field::DateTime => &mut self.date_time,
        };
        slot.get_or_insert(v);
    }

    /// Text of `el` inside `parent`; returns the field it went to, if any.
    fn text(&mut self, el: El, parent: El, v: &'a [u8]) -> Option<Field> {
        let f = self.field(el, parent)?;
        self.fill(f, v);
        Some(f)
    }

    /// The document's shape without its texts: what a template keeps (see `Shape`).
    fn without_texts(&self) -> Doc<'a> {
        Doc {
            request_id: None,
            response_id: None,
            response_time: None,
            code: None,
            count: None,
            device_id: None,
            originator: None,
            date_time: None,
            payload: None,
            ..*self
        }
    }
}

/// The text fields of a document (`Doc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    RequestId,
    ResponseId,
    ResponseTime,
    Code,
    Count,
    Payload,
    Originator,
    DeviceId,
    DateTime,
}

/// A place where a document starts or may end, as recovery and the chunker know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// An `<?xml` declaration at this offset.
    Decl(usize),
    /// A root start tag (`<sr:Response`) at this offset.
    RootStart(usize),
    /// A root end tag (`</sr:Response>`) that ends at this offset.
    RootEnd(usize),
}

impl Mark {
    /// Where reading may resume at this mark.
    fn at(self) -> usize {
        match self {
            Mark::Decl(i) | Mark::RootStart(i) | Mark::RootEnd(i) => i,
        }
    }
}

/// The marks at or after `from`, in order: one pass over the `<` bytes, so finding the first
/// costs the distance to it, never the rest of the chunk (recovery asks after every broken
/// document: a search to the end each time made a stretch of broken documents quadratic).
fn marks(data: &[u8], from: usize) -> impl Iterator<Item = Mark> + '_ {
    let from = from.min(data.len());
    memchr::memchr_iter(b'<', &data[from..]).filter_map(move |k| {
        #[cfg(test)]
        tests::MARKS_SEEN.with(|n| n.set(n.get() + 1));
        let i = from + k;
        let rest = &data[i + 1..];
        if rest.starts_with(b"?xml") {
            return Some(Mark::Decl(i));
        }
        if rest.first() == Some(&b'/') {
            return crate::source::root_end_at(data, i).map(Mark::RootEnd);
        }
        // A start tag's name ends at whitespace, `>` or `/`; a `<` first means it is no tag.
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/' | b'<'))?;
        let name = &rest[..end];
        (rest[end] != b'<' && crate::source::is_root_name(name)).then_some(Mark::RootStart(i))
    })
}

/// Where to look for the next document after a broken one starting at `start`: past its own
/// root start tag when it opened with a declaration, so the same document is not found again.
fn after_own_root(data: &[u8], start: usize) -> usize {
    if data[start..].starts_with(b"<?xml")
        && let Some(end) = memmem::find(&data[start..], b"?>")
        && let Some(lt) = memchr::memchr(b'<', &data[start + end..])
    {
        return start + end + lt + 1;
    }
    start + 1
}

/// Where a broken document starting at `start` really ends: at the next document start after
/// its own, if that comes before `found` (where the problem surfaced). A document cut inside a
/// tag (`<sr:Respo`, then the next `<?xml`) makes the reader swallow the documents after it as
/// children; those must be read again, not rejected with it.
fn end_of_broken(data: &[u8], start: usize, found: usize) -> usize {
    next_boundary(data, after_own_root(data, start)).map_or(found, |next| next.min(found))
}

/// Where reading may start again after a broken document or junk: the next document's start,
/// or just after the first root end tag (`</sr:Response>`), whichever comes first. Those are
/// the places the chunker cuts (`Boundary::last_cut`), so a broken stretch splits into the same
/// rejects however a read's chunks fall (fuzz finding 5).
fn next_boundary(data: &[u8], from: usize) -> Option<usize> {
    marks(data, from).next().map(Mark::at)
}

/// Where things are in a chunk: line numbers counted incrementally (positions only move
/// forward), and the chunk's offset in its source, for rejects.
struct Positions<'d> {
    data: &'d [u8],
    offset: u64,
    pos: usize,
    line: u64,
}

impl Positions<'_> {
    fn line_at(&mut self, pos: usize) -> u64 {
        if pos > self.pos {
            self.line += memchr::memchr_iter(b'\n', &self.data[self.pos..pos]).count() as u64;
            self.pos = pos;
        }
        self.line
    }

    /// Rejects the bytes `start..end` of the chunk as one record.
    fn reject(&mut self, sink: &mut impl Sink, start: usize, end: usize, reason: String) {
        let line = self.line_at(start);
        let raw = &self.data[start..end.min(self.data.len())];
        sink.reject(line, self.offset + start as u64, reason, raw);
    }
}

/// The per-element bookkeeping of one document, shared by both readers so they cannot
/// disagree: which element is open at each depth, how deep inside a foreign namespace, and
/// what the document said so far.
struct Walk<'a> {
    doc: Doc<'a>,
    stack: [El; MAX_DEPTH],
    depth: usize,
    foreign_depth: usize,
}

impl<'a> Walk<'a> {
    fn new() -> Self {
        Walk {
            doc: Doc::default(),
            stack: [El::Other; MAX_DEPTH],
            depth: 0,
            foreign_depth: 0,
        }
    }

    /// A start or empty tag, its namespace already resolved (`accepted`: DUIS, MMC or none).
    /// Returns true when it completes a document (an empty root element).
    #[inline]
    fn start(&mut self, accepted: bool, local: &[u8], is_empty: bool) -> bool {
        let depth = self.depth;
        if depth == 0 {
            self.doc = Doc::default();
        }
        let el = if accepted && self.foreign_depth == 0 {
            classify(local)
        } else {
            El::Other
        };
        let parent = if depth > 0 {
            self.stack[(depth - 1).min(MAX_DEPTH - 1)]
        } else {
            El::Other
        };
        let doc = &mut self.doc;
        if depth == 0 {
            doc.root = Some(el);
        } else if parent == El::Body && doc.body.is_none() && depth == 2 {
            doc.body = Some(el);
        }
        match el {
            El::Header if depth == 1 => doc.in_header = !is_empty,
            El::FutureDatedDeviceAlertMessage => doc.future_dated = true,
            El::DeviceAlertMessage if doc.body == Some(El::SMETS1ResponseMessage) => {
                doc.smets1_alert = true
            }
            El::DCCAlert => doc.in_dcc_alert = !is_empty,
            _ => {}
        }
        if !is_empty {
            if !accepted || self.foreign_depth > 0 {
                self.foreign_depth += 1;
            }
            if depth < MAX_DEPTH {
                self.stack[depth] = el;
            }
            self.depth += 1;
            false
        } else {
            depth == 0
        }
    }

    /// An end tag. Returns true when it closes the document.
    #[inline]
    fn end(&mut self) -> bool {
        self.depth = self.depth.saturating_sub(1);
        self.foreign_depth = self.foreign_depth.saturating_sub(1);
        let el = if self.depth < MAX_DEPTH {
            self.stack[self.depth]
        } else {
            El::Other
        };
        match el {
            El::Header if self.depth == 1 => self.doc.in_header = false,
            El::DCCAlert => self.doc.in_dcc_alert = false,
            _ => {}
        }
        self.depth == 0
    }

    /// Text (or CDATA) inside the document, as the reader borrowed it. Returns the field it
    /// filled, if any.
    #[inline]
    fn text(&mut self, t: &'a [u8]) -> Option<Field> {
        if self.depth > 0 && self.depth <= MAX_DEPTH {
            let (el, parent) = (
                self.stack[self.depth - 1],
                if self.depth > 1 {
                    self.stack[self.depth - 2]
                } else {
                    El::Other
                },
            );
            self.doc.text(el, parent, t.trim_ascii())
        } else {
            None
        }
    }
}

/// Decodes the documents of one chunk.
///
/// Two readers share the work. The scanner (`Scan::doc`) reads the plain XML that adapters
/// write (elements, attributes, text; no comments, CDATA, entity references or DTDs) with
/// `memchr` over the borrowed bytes and a namespace table of its own. Whenever a document is
/// anything else, malformed included, it gives up on that document without a word and the
/// reference reader (`decode_slow`, quick-xml's `NsReader`) reads it from the same place, so
/// records, rejects, reasons and positions are the reference reader's own. Both feed the same
/// `Walk`, so they agree on what a document says.
pub fn decode(data: &[u8], first_line: u64, offset: u64, sink: &mut impl Sink) {
    let mut at = Positions {
        data,
        offset,
        pos: 0,
        line: first_line,
    };
    // Decoded GBCS payloads, reused for every document of the chunk.
    let mut scratch = Vec::new();
    let mut scan = Scan::new(data);
    let mut pos = 0usize;
    let mut unit = Unit::default();
    while pos < data.len() {
        match scan.next(pos) {
            Scanned::Doc { start, end } => {
                finish(&scan.walk.doc, start, end, &mut at, sink, &mut scratch);
                pos = end;
            }
            Scanned::Rest => break,
            Scanned::GiveUp => pos = decode_unit(data, pos, &mut unit, &mut at, sink, &mut scratch),
        }
    }
}

/// Where the piece of `data` that starts at `from` ends: at the next place a chunk may end
/// (`Boundary::last_cut`): before the next `<?xml` after `from`, or after the first root end
/// tag (`</sr:Response>`). Whether it ends at a root end tag, and where.
fn unit_end(data: &[u8], from: usize) -> (usize, bool) {
    marks(data, from)
        .find_map(|m| match m {
            Mark::Decl(i) if i > from => Some((i, false)),
            Mark::RootEnd(e) => Some((e, true)),
            _ => None,
        })
        .unwrap_or((data.len(), false))
}

/// The piece the reference reader last read in (`unit_end`), kept while reading stays in it:
/// a piece with many documents the scanner gives up on (comments, say) is searched once.
#[derive(Clone, Copy, Default)]
struct Unit {
    from: usize,
    end: usize,
    at_root_end: bool,
}

/// Reads with the reference reader from `pos` (where the scanner gave up) to the end of the
/// piece it is in (`unit_end`), and returns where reading goes on.
///
/// Nothing past that end is looked at. A chunk ends only at such places, so a broken stretch
/// splits into the same rejects, with the same reasons, however a read's chunks fall (fuzz
/// findings 3, 5 and 7): every `<?xml` begins a document, and a root end tag ends whatever
/// was open, even an inner element of the same name, or a comment that holds one.
fn decode_unit(
    data: &[u8],
    pos: usize,
    unit: &mut Unit,
    at: &mut Positions,
    sink: &mut impl Sink,
    scratch: &mut Vec<u8>,
) -> usize {
    let from = pos
        + data[pos..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    // Reading never stops inside a root end tag, so every position of a piece after its
    // start lies in the same piece.
    if !(unit.from <= from && from < unit.end) {
        let (end, at_root_end) = unit_end(data, from);
        *unit = Unit {
            from,
            end,
            at_root_end,
        };
    }
    let (limit, at_root_end) = (unit.end, unit.at_root_end);
    let end = at.offset + limit as u64;
    let piece = &data[..limit];
    if data[from..].starts_with(BOM) && at.offset + from as u64 > 0 {
        // A byte-order mark belongs at the start of the stream only; a fresh reader would
        // skip one here, where a read's chunks happen to start, so it is junk as it is for a
        // reader that reads on.
        let resume = next_boundary(piece, from + 1).unwrap_or(limit);
        at.reject(sink, from, resume, "text outside any XML document".into());
        return resume;
    }
    let reason = if at_root_end {
        ROOT_END_INSIDE
    } else if limit == data.len() {
        // The chunk's own end: its sink knows whether a document follows it.
        return decode_slow(data, pos, at, sink, scratch);
    } else {
        NEXT_DOCUMENT
    };
    let mut ends = EndsAt {
        sink: &mut *sink,
        end,
        reason,
    };
    decode_slow(piece, pos, at, &mut ends, scratch)
}

/// Whether the scanner may take over at `pos`, just after a document the reference reader
/// finished: its reader there is in the state a fresh reader starts in, unless a fresh one
/// would skip a byte-order mark (so only whitespace, markup or the end qualify).
fn resumable(data: &[u8], pos: usize) -> bool {
    data.get(pos)
        .is_none_or(|&b| b == b'<' || b.is_ascii_whitespace())
}

/// The reference reader: quick-xml's `NsReader` from `base`. Returns where reading goes on:
/// after the first document it completes when `resumable`, at the next document after a
/// reject, or at the end of the chunk.
fn decode_slow(
    data: &[u8],
    base: usize,
    at: &mut Positions,
    sink: &mut impl Sink,
    scratch: &mut Vec<u8>,
) -> usize {
    let mut reader = NsReader::from_reader(&data[base..]);
    reader.config_mut().check_end_names = true;
    let mut walk = Walk::new();
    let mut doc_start: Option<usize> = None;
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
                    NEXT_DOCUMENT.to_string()
                } else if err_at >= data.len() {
                    format!("truncated XML document (the input ends inside it): {e}")
                } else {
                    format!("malformed XML: {e}")
                };
                at.reject(sink, start, resume, reason);
                return resume;
            }
        };
        let accepted_ns = match &ns {
            ResolveResult::Bound(n) => {
                n.as_ref().as_bytes() == NS_DUIS || n.as_ref().as_bytes() == NS_MMC
            }
            ResolveResult::Unbound => true,
            ResolveResult::Unknown(_) => false,
        };
        let closed = match event {
            X::Start(ref e) | X::Empty(ref e) => {
                if walk.depth == 0 {
                    doc_start.get_or_insert(before);
                }
                let is_empty = matches!(event, X::Empty(_));
                walk.start(accepted_ns, e.local_name().as_ref().as_bytes(), is_empty)
            }
            X::End(_) => walk.end(),
            X::Text(t) => {
                if let Cow::Borrowed(v) = t.into_inner() {
                    if walk.depth == 0 && !v.as_bytes().iter().all(u8::is_ascii_whitespace) {
                        // Junk between documents: reject it as one record and move on.
                        let start = before
                            + data[before..]
                                .iter()
                                .take_while(|b| b.is_ascii_whitespace())
                                .count();
                        let resume = next_boundary(data, start + 1).unwrap_or(data.len());
                        at.reject(sink, start, resume, "text outside any XML document".into());
                        return resume;
                    }
                    walk.text(v.as_bytes());
                }
                false
            }
            X::CData(t) => {
                if let Cow::Borrowed(v) = t.into_inner() {
                    walk.text(v.as_bytes());
                }
                false
            }
            X::DocType(_) | X::Decl(_) | X::PI(_) | X::Comment(_) if walk.depth == 0 => {
                doc_start.get_or_insert(before);
                false
            }
            X::Decl(_) | X::DocType(_) => {
                // A declaration inside an open document: the document was cut short, and
                // the next one begins here, or earlier if the cut swallowed it.
                let start = doc_start.unwrap_or(before);
                let resume = end_of_broken(data, start, before);
                at.reject(sink, start, resume, NEXT_DOCUMENT.into());
                return resume;
            }
            X::Eof => {
                let Some(start) = doc_start else {
                    return data.len();
                };
                let resume = end_of_broken(data, start, data.len());
                let reason = if resume < data.len() {
                    NEXT_DOCUMENT
                } else {
                    "truncated XML document (ends before its root element closes)"
                };
                at.reject(sink, start, resume, reason.into());
                return resume;
            }
            _ => false,
        };
        if closed {
            let end = base + reader.buffer_position() as usize;
            let start = doc_start.take().unwrap_or(before);
            finish(&walk.doc, start, end, at, sink, scratch);
            if resumable(data, end) {
                return end;
            }
        }
    }
}

/// What the scanner made of the bytes from where it started.
enum Scanned {
    /// A complete document at `start..end`, read into the scanner's `walk`.
    Doc { start: usize, end: usize },
    /// Only whitespace is left.
    Rest,
    /// Something the scanner does not read: the reference reader takes it from the start.
    GiveUp,
}

/// XML whitespace as quick-xml knows it (names end there; attributes are separated by it).
#[inline]
fn xml_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte classes for attribute keys: 0 continues a key, anything else ends it.
static KEY_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i <= 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'>' as usize] = 1;
    t[b'/' as usize] = 1;
    t[b'"' as usize] = 2;
    t[b'\'' as usize] = 2;
    t[b'<' as usize] = 2;
    t[b'=' as usize] = 2;
    t[b'&' as usize] = 2;
    t
};

const NS_XML: &[u8] = b"http://www.w3.org/XML/1998/namespace";
const NS_XMLNS: &[u8] = b"http://www.w3.org/2000/xmlns/";

/// A namespace binding in scope: prefix (empty for the default namespace), whether it is
/// the DUIS or MMC namespace, and the depth of the element that declared it. `key` holds
/// the prefix's first eight bytes, so most look-ups compare one integer.
#[derive(Clone, Copy)]
struct Binding<'a> {
    key: u64,
    prefix: &'a [u8],
    accepted: bool,
    level: usize,
}

/// The first eight bytes of a prefix as an integer (zero-padded).
#[inline]
fn prefix_key(p: &[u8]) -> u64 {
    let mut k = 0u64;
    for (i, &b) in p.iter().take(8).enumerate() {
        k |= (b as u64) << (8 * i);
    }
    k
}

/// Bit masks of one 64-byte block of the chunk (bit `k` is byte `k` of the block).
#[derive(Clone, Copy, Default)]
struct Block {
    /// `<`: where tags start (and text ends).
    lt: u64,
    /// `&` or a byte that is not ASCII: the document needs a closer look.
    odd: u64,
}

/// The masks of `b` (64 bytes).
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_masks(b: &[u8; 64]) -> Block {
    use std::arch::x86_64::*;
    let (mut lt, mut odd) = (0u64, 0u64);
    // SAFETY: SSE2 is part of every x86_64 target; each load reads 16 of the 64 bytes.
    unsafe {
        let (lt_c, amp_c) = (_mm_set1_epi8(b'<' as i8), _mm_set1_epi8(b'&' as i8));
        for k in 0..4 {
            let v = _mm_loadu_si128(b.as_ptr().add(16 * k) as *const __m128i);
            let l = _mm_movemask_epi8(_mm_cmpeq_epi8(v, lt_c)) as u16 as u64;
            // The high bit of each byte: set for `&` (0xFF) and for bytes that are not ASCII.
            let o = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, amp_c), v)) as u16 as u64;
            lt |= l << (16 * k);
            odd |= o << (16 * k);
        }
    }
    Block { lt, odd }
}

#[cfg(not(target_arch = "x86_64"))]
fn block_masks(b: &[u8; 64]) -> Block {
    let mut m = Block::default();
    for (k, &x) in b.iter().enumerate() {
        m.lt |= ((x == b'<') as u64) << k;
        m.odd |= ((x == b'&' || x >= 0x80) as u64) << k;
    }
    m
}

/// Where a tag name starting at `p` ends (the first byte up to 0x20, `>`, `/`, a quote or
/// `<`) and where its first `:` is, if before that; `None` if the data ends first.
#[inline]
fn name_end(data: &[u8], p: usize) -> Option<(usize, Option<usize>)> {
    #[inline]
    fn ends(b: u8) -> bool {
        b <= 0x20 || matches!(b, b'>' | b'/' | b'"' | b'\'' | b'<')
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut at = p;
        let mut colon = None;
        while let Some(w) = data.get(at..at + 16) {
            // SAFETY: SSE2 is part of every x86_64 target; `w` has 16 bytes.
            let (term, colons) = unsafe {
                let v = _mm_loadu_si128(w.as_ptr() as *const __m128i);
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                let space = _mm_set1_epi8(0x20);
                let low = _mm_cmpeq_epi8(_mm_max_epu8(v, space), space);
                let t = _mm_or_si128(
                    _mm_or_si128(
                        _mm_or_si128(low, eq(b'>')),
                        _mm_or_si128(eq(b'/'), eq(b'<')),
                    ),
                    _mm_or_si128(eq(b'"'), eq(b'\'')),
                );
                (
                    _mm_movemask_epi8(t) as u32,
                    _mm_movemask_epi8(eq(b':')) as u32,
                )
            };
            if term != 0 {
                let e = term.trailing_zeros();
                let c = colons & ((1u32 << e) - 1);
                if colon.is_none() && c != 0 {
                    colon = Some(at + c.trailing_zeros() as usize);
                }
                return Some((at + e as usize, colon));
            }
            if colon.is_none() && colons != 0 {
                colon = Some(at + colons.trailing_zeros() as usize);
            }
            at += 16;
        }
        let e = at + data[at..].iter().position(|&b| ends(b))?;
        let colon = colon.or_else(|| data[at..e].iter().position(|&b| b == b':').map(|c| at + c));
        Some((e, colon))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let e = p + data[p..].iter().position(|&b| ends(b))?;
        Some((e, data[p..e].iter().position(|&b| b == b':').map(|c| p + c)))
    }
}

/// The first `<` at or after `i`, and whether a byte before it is `&` or not ASCII (the
/// `odd` bytes of `Block`); `None` when there is no `<`.
#[inline]
fn text_end(data: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut at = i;
    #[cfg(target_arch = "x86_64")]
    while let Some(w) = data.get(at..at + 16) {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of every x86_64 target; `w` has 16 bytes.
        let (lt, odd) = unsafe {
            let v = _mm_loadu_si128(w.as_ptr() as *const __m128i);
            let lt = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'<' as i8));
            let amp = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'&' as i8));
            (
                _mm_movemask_epi8(lt) as u32,
                _mm_movemask_epi8(_mm_or_si128(amp, v)) as u32,
            )
        };
        if lt != 0 {
            let e = lt.trailing_zeros();
            return Some((at + e as usize, odd & ((1 << e) - 1) != 0));
        }
        if odd != 0 {
            let e = at + memchr::memchr(b'<', &data[at..])?;
            return Some((e, true));
        }
        at += 16;
    }
    let e = at + memchr::memchr(b'<', &data[at..])?;
    let odd = data[at..e].iter().any(|&b| b == b'&' || b >= 0x80);
    Some((e, odd))
}

/// The masks of the chunk, one block at a time as the scanner moves forward, and whether the
/// current document has an odd byte.
struct Masks<'a> {
    data: &'a [u8],
    /// Start of the current block (a multiple of 64), `usize::MAX` before the first.
    base: usize,
    blk: Block,
    doc_start: usize,
    /// The odd bits of the document's blocks before the current one.
    odd: u64,
}

impl<'a> Masks<'a> {
    fn new(data: &'a [u8]) -> Self {
        Masks {
            data,
            base: usize::MAX,
            blk: Block::default(),
            doc_start: 0,
            odd: 0,
        }
    }

    fn compute(&mut self, base: usize) {
        self.base = base;
        let rest = &self.data[base..];
        self.blk = if let Some(b) = rest.first_chunk::<64>() {
            block_masks(b)
        } else {
            // The chunk's last, short block: pad it, and drop the bits past the end.
            let mut pad = [0u8; 64];
            pad[..rest.len()].copy_from_slice(rest);
            let m = block_masks(&pad);
            let keep = (1u64 << rest.len()) - 1;
            Block {
                lt: m.lt & keep,
                odd: m.odd & keep,
            }
        };
    }

    /// Starts a document at `start`.
    fn begin(&mut self, start: usize) {
        self.doc_start = start;
        self.odd = 0;
        let b = start & !63;
        if self.base != b {
            self.compute(b);
        }
    }

    /// Moves to the block at `b`, through every block between, so each block of the
    /// document counts towards `odd`.
    #[inline]
    fn goto(&mut self, b: usize) {
        if b < self.base {
            self.compute(b);
            return;
        }
        while self.base < b {
            let from = self.doc_start.saturating_sub(self.base).min(63);
            self.odd |= self.blk.odd & (!0u64 << from);
            self.compute(self.base + 64);
        }
    }

    /// The first `<` at or after `p`.
    #[inline]
    fn next_lt(&mut self, p: usize) -> Option<usize> {
        if p >= self.data.len() {
            return None;
        }
        let mut b = p & !63;
        self.goto(b);
        let mut m = self.blk.lt & (!0u64 << (p - b));
        while m == 0 {
            b += 64;
            if b >= self.data.len() {
                return None;
            }
            self.goto(b);
            m = self.blk.lt;
        }
        Some(b + m.trailing_zeros() as usize)
    }

    /// Whether the document `doc_start..end` has an odd byte.
    fn odd_until(&mut self, end: usize) -> bool {
        self.goto((end - 1) & !63);
        let lo = if self.doc_start > self.base {
            !0u64 << (self.doc_start - self.base)
        } else {
            !0
        };
        let hi = match end - self.base {
            64 => !0,
            k => (1u64 << k) - 1,
        };
        self.odd != 0 || self.blk.odd & lo & hi != 0
    }
}

/// The scanner's state, reused for every document of a chunk.
struct Scan<'a> {
    walk: Walk<'a>,
    masks: Masks<'a>,
    bindings: Vec<Binding<'a>>,
    /// Open element names (qualified, as written), to match end tags.
    names: [&'a [u8]; MAX_DEPTH],
    /// The last document the scanner read in full, as a template for the next ones.
    shape: Shape<'a>,
    /// The template being recorded while a document is read in full.
    record: Shape<'a>,
}

/// A document read in full, reduced to what decides how the scanner reads it: its markup
/// (everything but the texts between tags, as runs of bytes: `runs[k]`, then a text that
/// fills `gaps[k]`, then `runs[k + 1]`, ...) and what its markup alone made of it (`doc`,
/// texts left out).
///
/// The scanner's every step depends only on the bytes of the tag at hand and on what the
/// tags before it opened and declared; a text (bytes up to the next `<`) only fills a field,
/// chosen by the tags around it. So a document whose markup equals the template's byte for
/// byte, with a non-empty text exactly where the template had one, reads as the template
/// did with its own texts: nothing to parse but the texts' ends. Adapters write every
/// document of a kind with the same markup (the signature block included); the first one
/// that differs is read in full and becomes the template.
#[derive(Default)]
struct Shape<'a> {
    runs: Vec<&'a [u8]>,
    gaps: Vec<Option<Field>>,
    doc: Option<Doc<'a>>,
    /// Recording: where the current run of markup started.
    from: usize,
}

impl<'a> Shape<'a> {
    fn clear(&mut self, from: usize) {
        self.runs.clear();
        self.gaps.clear();
        self.doc = None;
        self.from = from;
    }

    /// A text at `t0..t1` that went to `field`: the markup run before it ends there.
    #[inline]
    fn text(&mut self, data: &'a [u8], t0: usize, t1: usize, field: Option<Field>) {
        self.runs.push(&data[self.from..t0]);
        self.gaps.push(field);
        self.from = t1;
    }
}

/// Equality for the short names and prefixes of tags: whole words, the last one
/// overlapping, instead of a call into `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..4 => a == b,
        4..8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if w8(a, i) != w8(b, i) {
                    return false;
                }
                i += 8;
            }
            w8(a, n - 8) == w8(b, n - 8)
        }
    }
}

/// Whether the bytes are valid UTF-8, as quick-xml requires of every piece it reads.
fn valid_utf8(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

impl<'a> Scan<'a> {
    fn new(data: &'a [u8]) -> Self {
        Scan {
            walk: Walk::new(),
            masks: Masks::new(data),
            bindings: Vec::new(),
            names: [&[]; MAX_DEPTH],
            shape: Shape::default(),
            record: Shape::default(),
        }
    }

    /// Reads the document at `p` by the template (see `Shape`); `None` when it does not
    /// follow the template (or has a byte the scanner looks at closer), for `doc` to read.
    fn by_shape(&mut self, p: usize) -> Option<Scanned> {
        let shape_doc = self.shape.doc?;
        let data = self.masks.data;
        let n = data.len();
        let mut i = p;
        while i < n && data[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        let first = self.shape.runs.first()?;
        if data.get(i..i + first.len()) != Some(first) {
            return None;
        }
        let mut doc = shape_doc;
        let last = self.shape.runs.len() - 1;
        for (k, run) in self.shape.runs.iter().enumerate() {
            if k > 0 && data.get(i..i + run.len()) != Some(run) {
                return None;
            }
            i += run.len();
            if k == last {
                break;
            }
            // A text: not empty, up to the next `<`, nothing in it to look at closer (the
            // markup has nothing either: it is the template's).
            if data.get(i).is_none_or(|&b| b == b'<') {
                return None;
            }
            let t = match text_end(data, i)? {
                (t, false) => t,
                (_, true) => return None,
            };
            if let Some(f) = self.shape.gaps[k] {
                doc.fill(f, data[i..t].trim_ascii());
            }
            i = t;
        }
        if !resumable(data, i) {
            return None;
        }
        self.walk.doc = doc;
        Some(Scanned::Doc { start, end: i })
    }

    /// Reads the document at `p`: by the template when it fits, else in full (which makes
    /// it the template when the scanner reads it).
    fn next(&mut self, p: usize) -> Scanned {
        if let Some(s) = self.by_shape(p) {
            return s;
        }
        let s = self.doc(p);
        if let Scanned::Doc { end, .. } = s
            && self.record.doc.is_some()
        {
            let data = self.masks.data;
            self.record.runs.push(&data[self.record.from..end]);
            std::mem::swap(&mut self.shape, &mut self.record);
        }
        s
    }

    /// Reads one document starting at `p`, just after the previous one (or where the
    /// reference reader would start afresh).
    fn doc(&mut self, p: usize) -> Scanned {
        use Scanned::GiveUp;
        let data = self.masks.data;
        let n = data.len();
        let mut i = p;
        // Whitespace between documents (as the reference reader ignores it).
        while i < n && data[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == n {
            return Scanned::Rest;
        }
        if data[i] != b'<' {
            return GiveUp;
        }
        let start = i;
        // The XML declaration, if any: up to the first `?>`.
        if data[i + 1..].starts_with(b"?xml") && data.get(i + 5).is_some_and(|&b| xml_ws(b)) {
            let mut from = i + 6;
            // Up to the first `?>`, giving up at a `<` (which a declaration never holds), so
            // a declaration that never closes costs the distance to the next tag.
            let close = loop {
                let Some(k) = memchr::memchr2(b'>', b'<', &data[from..]) else {
                    return GiveUp;
                };
                if data[from + k] == b'<' {
                    return GiveUp;
                }
                if data[from + k - 1] == b'?' {
                    break from + k - 1;
                }
                from += k + 1;
            };
            i = close + 2;
            while i < n && data[i].is_ascii_whitespace() {
                i += 1;
            }
            if i == n || data[i] != b'<' {
                return GiveUp;
            }
        }
        self.masks.begin(start);
        self.bindings.clear();
        self.walk.depth = 0;
        self.walk.foreign_depth = 0;
        self.record.clear(start);
        // At `data[i] == b'<'`: one tag per turn, then the text after it.
        loop {
            let (closed, after) = match data.get(i + 1) {
                Some(b'/') => match self.end_tag(i) {
                    Some(r) => r,
                    None => return GiveUp,
                },
                Some(b'!' | b'?') | None => return GiveUp,
                Some(_) => match self.start_tag(i) {
                    Some(r) => r,
                    None => return GiveUp,
                },
            };
            i = after;
            if closed {
                break;
            }
            if data.get(i) == Some(&b'<') {
                continue; // the next tag follows at once, as it mostly does
            }
            let Some(k) = self.masks.next_lt(i) else {
                return GiveUp;
            };
            let f = self.walk.text(&data[i..k]);
            self.record.text(data, i, k, f);
            i = k;
        }
        // What follows must let the reference reader start afresh there, should the next
        // document need it. A reference (`&`) is the reference reader's to read, and
        // quick-xml reads only valid UTF-8.
        if !resumable(data, i)
            || self.masks.odd_until(i)
                && (memchr::memchr(b'&', &data[start..i]).is_some() || !valid_utf8(&data[start..i]))
        {
            return GiveUp;
        }
        // A template only of a document without `&` or bytes that are not ASCII, so that
        // one that follows it needs no closer look than its texts get.
        if !self.masks.odd_until(i) {
            self.record.doc = Some(self.walk.doc.without_texts());
        }
        Scanned::Doc { start, end: i }
    }

    /// A start or empty tag at `data[i] == b'<'`: (completes the document, position after).
    #[inline]
    fn start_tag(&mut self, i: usize) -> Option<(bool, usize)> {
        let data = self.masks.data;
        let n = data.len();
        let (mut j, colon) = name_end(data, i + 1)?;
        let name = &data[i + 1..j];
        if name.is_empty() {
            return None;
        }
        let level = self.walk.depth + 1;
        let is_empty;
        loop {
            match *data.get(j)? {
                b'>' => {
                    is_empty = false;
                    j += 1;
                    break;
                }
                b'/' => {
                    if data.get(j + 1) != Some(&b'>') {
                        return None;
                    }
                    is_empty = true;
                    j += 2;
                    break;
                }
                b if xml_ws(b) => {
                    j += 1;
                    while j < n && xml_ws(data[j]) {
                        j += 1;
                    }
                    if matches!(data.get(j), Some(b'>' | b'/') | None) {
                        continue;
                    }
                    // An attribute: key="value" or key='value', nothing looser.
                    let k0 = j;
                    while j < n && KEY_CLASS[data[j] as usize] == 0 {
                        j += 1;
                    }
                    let key = &data[k0..j];
                    if key.is_empty() || data.get(j) != Some(&b'=') {
                        return None;
                    }
                    let quote = *data.get(j + 1)?;
                    if quote != b'"' && quote != b'\'' {
                        return None;
                    }
                    let v0 = j + 2;
                    let v1 = v0 + memchr::memchr2(quote, b'<', data.get(v0..)?)?;
                    if data[v1] != quote {
                        return None;
                    }
                    let value = &data[v0..v1];
                    j = v1 + 1;
                    if key.starts_with(b"xmlns") {
                        let prefix: &[u8] = match &key[5..] {
                            [] => &[],
                            [b':', p @ ..] if !p.is_empty() => p,
                            [b':'] => return None,
                            _ => continue, // `xmlnsfoo`: an ordinary attribute
                        };
                        if value.is_empty()
                            || memchr::memchr(b'&', value).is_some()
                            || value == NS_XML
                            || value == NS_XMLNS
                            || prefix == b"xml"
                            || prefix == b"xmlns"
                            || self.bindings.len() >= 64
                        {
                            return None;
                        }
                        self.bindings.push(Binding {
                            key: prefix_key(prefix),
                            prefix,
                            accepted: value == NS_DUIS || value == NS_MMC,
                            level,
                        });
                    }
                }
                _ => return None, // a quote, `<` or control character in the name
            }
        }
        // Resolve the element's namespace as quick-xml does: the prefix before the first
        // `:`, the innermost binding of it; no prefix takes the default namespace, or none.
        let (prefix, local) = match colon {
            Some(c) => (Some(&data[i + 1..c]), &data[c + 1..i + 1 + name.len()]),
            None => (None, name),
        };
        let accepted = match prefix {
            None => self
                .bindings
                .iter()
                .rev()
                .find(|b| b.prefix.is_empty())
                .is_none_or(|b| b.accepted),
            Some([]) => return None, // `:name`: no binding has an empty prefix
            Some(p) => {
                let key = prefix_key(p);
                self.bindings
                    .iter()
                    .rev()
                    .find(|b| {
                        b.key == key
                            && b.prefix.len() == p.len()
                            && (p.len() <= 8 || same(b.prefix, p))
                    })
                    .is_some_and(|b| b.accepted)
            }
        };
        if self.walk.depth > 0 && crate::source::is_root_name(name) {
            // An inner element named as a root: its end tag is a place a chunk may end, so the
            // reference reader reads this document only up to there (`decode`).
            return None;
        }
        if is_empty {
            self.pop_bindings(level - 1);
        } else {
            if self.walk.depth >= MAX_DEPTH {
                return None;
            }
            self.names[self.walk.depth] = name;
        }
        let closed = self.walk.start(accepted, local, is_empty);
        Some((closed, j))
    }

    /// An end tag at `data[i..]` (`</`): it must name the open element.
    #[inline]
    fn end_tag(&mut self, i: usize) -> Option<(bool, usize)> {
        let data = self.masks.data;
        let depth = self.walk.depth;
        if depth == 0 {
            return None;
        }
        let open = self.names[depth - 1];
        let at = i + 2;
        // The usual case first: the open name, then `>`.
        let gt = if data.get(at..at + open.len()).is_some_and(|d| same(d, open))
            && data.get(at + open.len()) == Some(&b'>')
        {
            at + open.len()
        } else {
            let gt = at + memchr::memchr(b'>', data.get(at..)?)?;
            let content = &data[at..gt];
            if memchr::memchr3(b'"', b'\'', b'<', content).is_some() {
                return None;
            }
            let end = content
                .iter()
                .rposition(|&b| !xml_ws(b))
                .map_or(0, |e| e + 1);
            if &content[..end] != open {
                return None;
            }
            gt
        };
        self.pop_bindings(depth - 1);
        let closed = self.walk.end();
        Some((closed, gt + 1))
    }

    /// Drops the bindings declared deeper than `level`.
    #[inline]
    fn pop_bindings(&mut self, level: usize) {
        while self.bindings.last().is_some_and(|b| b.level > level) {
            self.bindings.pop();
        }
    }
}

/// The GBCS payload must be readable, and name the alert code the envelope gives.
/// Returns the firmware outcome the payload carries, if any.
fn check_payload(
    payload: &[u8],
    code: AlertCode,
    scratch: &mut Vec<u8>,
) -> Result<Option<crate::model::firmware::FirmwareResult>, String> {
    let bytes =
        super::gbcs::payload_bytes(payload, scratch).map_err(|e| format!("GBCSPayload: {e}"))?;
    let g = super::gbcs::decode(bytes).map_err(|e| format!("GBCSPayload: {e}"))?;
    match (g.alert_code, code.device_code()) {
        (Some(inner), Some(outer)) if inner != outer => Err(format!(
            "the envelope's alert code {outer:04X} disagrees with the GBCS payload's {inner:04X}"
        )),
        _ => Ok(g.firmware.map(|f| f.result())),
    }
}

fn finish(
    doc: &Doc,
    start: usize,
    end: usize,
    at: &mut Positions,
    sink: &mut impl Sink,
    scratch: &mut Vec<u8>,
) {
    match doc.finish(scratch) {
        Ok(ev) => sink.event(&ev),
        Err(reason) => at.reject(sink, start, end, reason),
    }
}

/// Decodes a chunk that more of its source follows (`Chunk::followed`). A chunk ends where a
/// document starts, so a document its end cuts short was cut short by the next document, and
/// its reject says so, as it would if both were in one chunk: where a read's chunks happen to
/// end (the thread count, the read size) must not decide a reject's reason.
pub fn decode_followed(data: &[u8], first_line: u64, offset: u64, sink: &mut impl Sink) {
    let end = offset + data.len() as u64;
    let reason = NEXT_DOCUMENT;
    decode(data, first_line, offset, &mut EndsAt { sink, end, reason });
}

/// A sink for a piece of a source that ends where a document may end (at byte offset `end`
/// of the source): a document left open at that end gets `reason`, whichever of the reader's
/// truncation reasons it had, because what ends the piece, not the reader, says why.
struct EndsAt<'s, S> {
    sink: &'s mut S,
    end: u64,
    reason: &'static str,
}

/// The reason for a piece followed by the next document (`Chunk::followed`, or cut before the
/// next `<?xml`).
const NEXT_DOCUMENT: &str = "truncated XML document (the next document starts before it ends)";

/// The reason for a piece ending with a root end tag the reader did not take as the
/// document's end: it closed an inner element named like the root.
const ROOT_END_INSIDE: &str = "malformed XML: a root end tag inside the document (an inner element, comment or CDATA section named like the root)";

impl<S: Sink> Sink for EndsAt<'_, S> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        self.sink.event(ev)
    }
    fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]) {
        let reaches_end = offset + raw.len() as u64 == self.end;
        let reason = if reaches_end && reason.starts_with("truncated XML document") {
            self.reason.to_string()
        } else {
            reason
        };
        self.sink.reject(line, offset, reason, raw)
    }
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        use super::super::*;

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

    fn damage(
        mut data: Vec<u8>,
        edits: &[(usize, usize, usize, u8)],
        invalid_utf8: bool,
    ) -> Vec<u8> {
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
}
