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
//! The scanner is `scan.rs`; the reference reader, and where reading resumes after a broken
//! document, `recover.rs`; this file holds what a document says (`Doc`, `Walk`) and the
//! records made of it.
//!
//! Adapters write every document of a kind with the same markup, so the scanner keeps the
//! last document it read in full as a template (`Shape`): a document whose markup equals it
//! byte for byte is read by comparing that markup and finding where each text ends; the
//! texts, the GBCS payload among them, are then decoded and checked as always.

mod recover;
mod scan;

use super::Sink;
use crate::model::time::{check_window, parse_timestamp};
use crate::model::{AlertCode, DeviceId, Event, MessageKind, RecordAttrs, hash_bytes};
use recover::{Unit, decode_unit};
use scan::{Scan, Scanned};

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
mod tests;
