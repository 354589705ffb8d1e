//! GBCS messages: the device's own binary alert (or response) that a DUIS alert carries in
//! `GBCSPayload` (base64) and exports carry as hex. The layout is in docs/gbcs.md.
//!
//! Parsed with nom over the borrowed bytes: no allocation per message (base64 and hex text
//! decode into a caller's reusable buffer). Every failure names the byte offset where the
//! message stopped making sense.

use crate::model::Millis;
use crate::model::firmware::{FirmwareResult, Stage};
use crate::model::time::days_from_civil;
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{tag, take};
use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

/// How the message was protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// A general-signing block with an ECDSA signature (`DF 09 ...`).
    Signed,
    /// A general-ciphering wrapper with a MAC only (`DD 00 ...`).
    MacOnly,
}

/// How the alert payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// DLMS data-notification (electricity meters).
    Dlms,
    /// GBZ (ZigBee; gas meters).
    Gbz,
    /// ASN.1 DER (firmware and future-dated commands: CS06, CS02b, CCS08, GCS62).
    Asn1,
    /// A message whose body fleetwatch does not read (responses, unknown forms).
    Other,
}

/// Firmware details of a transfer (CCS08) or activation (CS06) outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareOutcome {
    pub stage: Stage,
    /// 0 is success. Transfer: 1 image discarded, 2 hardware version mismatch, 3 file
    /// transfer failure. Activation: 1 no image held, 2 hash mismatch, 3 activation failure.
    pub response_code: u8,
    /// The 4-octet firmware version.
    pub version: [u8; 4],
}

impl FirmwareOutcome {
    pub fn reason(&self) -> &'static str {
        crate::model::firmware::response_reason(self.stage, self.response_code)
    }

    pub fn result(&self) -> FirmwareResult {
        FirmwareResult {
            response_code: self.response_code,
            version: self.version,
        }
    }

    /// The version as dotted decimal octets (`4.0.0.0`); see `same_version`.
    pub fn version_text(&self) -> String {
        self.result().version_text()
    }
}

pub use crate::model::firmware::same_version;

/// A decoded GBCS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gbcs {
    pub protection: Protection,
    /// 1 command, 2 response, 3 alert.
    pub cra: u8,
    pub counter: u64,
    /// The originator: the device, for alerts.
    pub originator: u64,
    pub recipient: u64,
    pub message_code: u16,
    pub encoding: Encoding,
    pub alert_code: Option<u16>,
    /// The device's own time of the alert (UTC).
    pub timestamp: Option<Millis>,
    /// Future-dated alerts: the originator counter of the command they report on.
    pub command_counter: Option<u64>,
    pub firmware: Option<FirmwareOutcome>,
    /// ECS100 supplementary alerts: the remote party named in the other-information field.
    pub supplementary_party: Option<u64>,
}

impl Gbcs {
    pub fn is_alert(&self) -> bool {
        self.cra == 3
    }
}

/// Why a message could not be read, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GbcsError {
    pub offset: usize,
    pub reason: &'static str,
}

impl std::fmt::Display for GbcsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

type R<'a, T> = IResult<&'a [u8], T>;

/// Runs a parser; a failure becomes a `GbcsError` at the offset where it stopped.
fn step<'a, T>(
    whole: &[u8],
    input: &'a [u8],
    reason: &'static str,
    mut p: impl Parser<&'a [u8], Output = T, Error = nom::error::Error<&'a [u8]>>,
) -> Result<(&'a [u8], T), GbcsError> {
    p.parse(input).map_err(|e| {
        let at = match &e {
            nom::Err::Error(x) | nom::Err::Failure(x) => x.input,
            nom::Err::Incomplete(_) => &input[input.len()..],
        };
        GbcsError {
            offset: whole.len() - at.len(),
            reason,
        }
    })
}

/// A GBCS length: one byte below 0x80, else the low bits give how many bytes follow.
fn length(i: &[u8]) -> R<'_, usize> {
    let (i, b) = be_u8(i)?;
    if b < 0x80 {
        return Ok((i, b as usize));
    }
    let n = (b & 0x7F) as usize;
    if n == 0 || n > 3 {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::LengthValue,
        )));
    }
    let (i, bytes) = take(n)(i)?;
    Ok((i, bytes.iter().fold(0usize, |a, &x| a << 8 | x as usize)))
}

fn eui(i: &[u8]) -> R<'_, u64> {
    let (i, _) = tag(&[0x08][..])(i)?;
    be_u64(i)
}

/// Decodes one message from its bytes.
pub fn decode(msg: &[u8]) -> Result<Gbcs, GbcsError> {
    let (g, content, content_at) = match header_fast(msg) {
        Some(h) => h,
        None => header(msg)?,
    };
    body(g, content, content_at)
}

/// A big-endian u64 at `at`.
#[inline]
fn be64(msg: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(msg.get(at..at + 8)?.try_into().ok()?))
}

/// `header` for the usual message, a signed one (`DF 09`) whose header reads without a
/// fault, by plain indexing: the same fields, several times faster than the parser steps.
/// `None` for anything else, which `header` then reads (and names the fault of).
#[inline]
fn header_fast(msg: &[u8]) -> Option<(Gbcs, &[u8], usize)> {
    if msg.get(..2)? != [0xDF, 0x09] {
        return None;
    }
    let cra = *msg.get(2)?;
    if !(1..=3).contains(&cra) || *msg.get(11)? != 0x08 || *msg.get(20)? != 0x08 {
        return None;
    }
    let (counter, originator, recipient) = (be64(msg, 3)?, be64(msg, 12)?, be64(msg, 21)?);
    let mut p = 30 + *msg.get(29)? as usize; // past the date-time
    let other_len = *msg.get(p)? as usize;
    let other = msg.get(p + 1..p + 1 + other_len)?;
    if other_len < 2 {
        return None;
    }
    p += 1 + other_len;
    let b = *msg.get(p)?;
    let content_len = if b < 0x80 {
        p += 1;
        b as usize
    } else {
        let n = (b & 0x7F) as usize;
        if n == 0 || n > 3 {
            return None;
        }
        let bytes = msg.get(p + 1..p + 1 + n)?;
        p += 1 + n;
        bytes.iter().fold(0usize, |a, &x| a << 8 | x as usize)
    };
    let content_at = p;
    let content = msg.get(p..p.checked_add(content_len)?)?;
    p += content_len;
    let sig_len = *msg.get(p)? as usize;
    msg.get(p + 1..p + 1 + sig_len)?;
    let g = Gbcs {
        protection: Protection::Signed,
        cra,
        counter,
        originator,
        recipient,
        message_code: u16::from_be_bytes([other[0], other[1]]),
        encoding: Encoding::Other,
        alert_code: None,
        timestamp: None,
        command_counter: None,
        firmware: None,
        supplementary_party: (other.len() >= 10)
            .then(|| u64::from_be_bytes(other[2..10].try_into().expect("8 bytes"))),
    };
    Some((g, content, content_at))
}

/// The header of a message, up to its content: the fields, the content and where it starts.
fn header(msg: &[u8]) -> Result<(Gbcs, &[u8], usize), GbcsError> {
    let first = *msg.first().ok_or(GbcsError {
        offset: 0,
        reason: "empty GBCS payload",
    })?;
    let (protection, block) = match first {
        0xDF => (Protection::Signed, msg),
        0xDD => {
            let (i, _) = step(
                msg,
                msg,
                "bad general-ciphering header",
                tag(&[0xDD, 0, 0, 0, 0, 0, 0][..]),
            )?;
            let (i, _) = step(msg, i, "bad general-ciphering length", length)?;
            let (i, _) = step(msg, i, "truncated security header", take(5usize))?;
            (Protection::MacOnly, i)
        }
        _ => {
            return Err(GbcsError {
                offset: 0,
                reason: "not a GBCS message (expected DF 09 or DD 00)",
            });
        }
    };
    let (i, _) = step(
        msg,
        block,
        "expected the general-signing tag DF 09",
        tag(&[0xDF, 0x09][..]),
    )?;
    let (i, cra) = step(msg, i, "truncated signing block", be_u8)?;
    if !(1..=3).contains(&cra) {
        return Err(GbcsError {
            offset: msg.len() - i.len() - 1,
            reason: "unknown CRA flag (expected 1, 2 or 3)",
        });
    }
    let (i, counter) = step(msg, i, "truncated originator counter", be_u64)?;
    let (i, originator) = step(msg, i, "bad originator system title", eui)?;
    let (i, recipient) = step(msg, i, "bad recipient system title", eui)?;
    let (i, dt_len) = step(msg, i, "truncated date-time length", be_u8)?;
    let (i, _) = step(msg, i, "truncated date-time", take(dt_len as usize))?;
    let (i, other_len) = step(msg, i, "truncated other-information length", be_u8)?;
    if other_len < 2 {
        return Err(GbcsError {
            offset: msg.len() - i.len() - 1,
            reason: "other information too short for a message code",
        });
    }
    let (i, other) = step(
        msg,
        i,
        "truncated other information",
        take(other_len as usize),
    )?;
    let message_code = u16::from_be_bytes([other[0], other[1]]);
    let supplementary_party =
        (other.len() >= 10).then(|| u64::from_be_bytes(other[2..10].try_into().expect("8 bytes")));
    let (i, content_len) = step(msg, i, "bad content length", length)?;
    let content_at = msg.len() - i.len();
    let (i, content) = step(msg, i, "content shorter than its length", take(content_len))?;
    let (i, sig_len) = step(msg, i, "missing signature length", be_u8)?;
    let (i, _) = step(msg, i, "truncated signature", take(sig_len as usize))?;
    if protection == Protection::MacOnly && i.len() < 12 {
        return Err(GbcsError {
            offset: msg.len() - i.len(),
            reason: "truncated MAC (12 bytes expected)",
        });
    }
    let g = Gbcs {
        protection,
        cra,
        counter,
        originator,
        recipient,
        message_code,
        encoding: Encoding::Other,
        alert_code: None,
        timestamp: None,
        command_counter: None,
        firmware: None,
        supplementary_party,
    };
    Ok((g, content, content_at))
}

/// The alert a message's content carries (`content_at`: where it starts in the message).
fn body(mut g: Gbcs, content: &[u8], content_at: usize) -> Result<Gbcs, GbcsError> {
    if g.cra != 3 {
        return Ok(g); // a response or command: the header is what fleetwatch needs
    }
    let at = |rest: &[u8]| content_at + content.len() - rest.len();
    match content.first() {
        Some(0x0F) => dlms(content, &mut g).map_err(|(rest, reason)| GbcsError {
            offset: at(rest),
            reason,
        })?,
        Some(0x01) if content.get(1) == Some(&0x09) => {
            gbz(content, &mut g).map_err(|(rest, reason)| GbcsError {
                offset: at(rest),
                reason,
            })?
        }
        Some(0x30) => asn1(content, &mut g).map_err(|(rest, reason)| GbcsError {
            offset: at(rest),
            reason,
        })?,
        _ => {
            return Err(GbcsError {
                offset: content_at,
                reason: "unknown alert payload (expected DLMS 0F, GBZ 01 09 or ASN.1 30)",
            });
        }
    }
    Ok(g)
}

type Body<'a> = Result<(), (&'a [u8], &'static str)>;

fn fail<'a>(
    e: nom::Err<nom::error::Error<&'a [u8]>>,
    reason: &'static str,
    fallback: &'a [u8],
) -> (&'a [u8], &'static str) {
    match e {
        nom::Err::Error(x) | nom::Err::Failure(x) => (x.input, reason),
        nom::Err::Incomplete(_) => (&fallback[fallback.len()..], reason),
    }
}

/// DLMS data-notification: `0F`, invoke id (4), `00`, structure, `12` alert code, `09 0C`
/// COSEM date-time; future-dated alerts (0x00CC) then carry an octet string holding the
/// command's message code and originator counter.
fn dlms<'a>(c: &'a [u8], g: &mut Gbcs) -> Body<'a> {
    g.encoding = Encoding::Dlms;
    let r: R<'a, (u16, &'a [u8])> = (|i| {
        let (i, _) = tag(&[0x0F][..])(i)?;
        let (i, _) = be_u32(i)?;
        let (i, dt_len) = be_u8(i)?;
        let (i, _) = take(dt_len as usize)(i)?;
        let (i, _) = tag(&[0x02][..])(i)?;
        let (i, _) = be_u8(i)?;
        let (i, _) = tag(&[0x12][..])(i)?;
        let (i, code) = be_u16(i)?;
        let (i, _) = tag(&[0x09, 0x0C][..])(i)?;
        let (i, dt) = take(12usize)(i)?;
        Ok((i, (code, dt)))
    })(c);
    let (rest, (code, dt)) = r.map_err(|e| fail(e, "malformed DLMS alert", c))?;
    g.alert_code = Some(code);
    g.timestamp = cosem_time(dt);
    // 8F43, the executing firmware changed: the new version as an octet string of 4.
    if code == 0x8F43
        && let [0x09, 0x04, a, b, c, d, ..] = *rest
    {
        g.firmware = Some(FirmwareOutcome {
            stage: Stage::Running,
            response_code: 0,
            version: [a, b, c, d],
        });
    }
    if g.message_code == 0x00CC
        && let Ok((_, (_, s))) = (|i| -> R<'a, (usize, &'a [u8])> {
            let (i, _) = tag(&[0x09][..])(i)?;
            let (i, n) = length(i)?;
            let (i, s) = take(n)(i)?;
            Ok((i, (n, s)))
        })(rest)
        && s.len() >= 10
    {
        g.command_counter = Some(u64::from_be_bytes(s[2..10].try_into().expect("8 bytes")));
    }
    Ok(())
}

/// Seconds from 1970 to 2000-01-01, the GBZ epoch.
const GBZ_EPOCH: i64 = 946_684_800;

/// GBZ: profile `01 09`, component count, alert code, time (seconds since 2000); future-dated
/// alerts (0x00CD) then a component of length, message code, originator counter, ...
fn gbz<'a>(c: &'a [u8], g: &mut Gbcs) -> Body<'a> {
    g.encoding = Encoding::Gbz;
    let r: R<'a, (u16, u32)> = (|i| {
        let (i, _) = tag(&[0x01, 0x09][..])(i)?;
        let (i, _) = be_u8(i)?;
        let (i, code) = be_u16(i)?;
        let (i, secs) = be_u32(i)?;
        Ok((i, (code, secs)))
    })(c);
    let (rest, (code, secs)) = r.map_err(|e| fail(e, "malformed GBZ alert", c))?;
    g.alert_code = Some(code);
    g.timestamp = Some((secs as i64 + GBZ_EPOCH) * 1000);
    if g.message_code == 0x00CD && rest.len() >= 11 && rest[0] as usize >= 10 {
        g.command_counter = Some(u64::from_be_bytes(rest[3..11].try_into().expect("8 bytes")));
    }
    Ok(())
}

/// A DER element: tag, length, contents.
fn der(i: &[u8]) -> R<'_, (u8, &[u8])> {
    let (i, t) = be_u8(i)?;
    let (i, n) = length(i)?;
    let (i, v) = take(n)(i)?;
    Ok((i, (t, v)))
}

fn der_int(v: &[u8]) -> Option<u64> {
    (v.len() <= 9 && !v.is_empty()).then(|| v.iter().fold(0u64, |a, &b| a << 8 | b as u64))
}

/// ASN.1 DER: SEQUENCE { INTEGER alert code, GeneralizedTime, use-case fields }. CS06
/// (0x00CA): INTEGER command counter, SEQUENCE { INTEGER response, OCTET STRING(4) version }.
/// CCS08 (0x0128): OCTET STRING(8) entity, OCTET STRING(4) version, INTEGER response.
fn asn1<'a>(c: &'a [u8], g: &mut Gbcs) -> Body<'a> {
    g.encoding = Encoding::Asn1;
    let (_, (t, seq)) = der(c).map_err(|e| fail(e, "malformed ASN.1 sequence", c))?;
    if t != 0x30 {
        return Err((c, "expected an ASN.1 SEQUENCE"));
    }
    let (i, (t, code)) = der(seq).map_err(|e| fail(e, "malformed alert code", seq))?;
    if t != 0x02 {
        return Err((seq, "expected the alert code INTEGER"));
    }
    g.alert_code = Some(
        der_int(code)
            .filter(|&x| x <= 0xFFFF)
            .ok_or((seq, "alert code out of range"))? as u16,
    );
    let (mut i, (t, time)) = der(i).map_err(|e| fail(e, "malformed alert time", i))?;
    if t != 0x18 {
        return Err((i, "expected a GeneralizedTime"));
    }
    g.timestamp = Some(generalized_time(time).ok_or((i, "invalid GeneralizedTime"))?);
    match g.message_code {
        0x00CA => {
            let (j, (_, counter)) = der(i).map_err(|e| fail(e, "malformed command counter", i))?;
            g.command_counter = der_int(counter);
            i = j;
            let (_, (_, inner)) = der(i).map_err(|e| fail(e, "malformed activation result", i))?;
            let (k, (_, resp)) =
                der(inner).map_err(|e| fail(e, "malformed response code", inner))?;
            let (_, (_, ver)) = der(k).map_err(|e| fail(e, "malformed firmware version", k))?;
            g.firmware =
                Some(firmware(Stage::Activation, resp, ver).ok_or((k, "bad activation result"))?);
        }
        0x0128 => {
            let (j, _) = der(i).map_err(|e| fail(e, "malformed entity id", i))?;
            let (k, (_, ver)) = der(j).map_err(|e| fail(e, "malformed firmware version", j))?;
            let (_, (_, resp)) = der(k).map_err(|e| fail(e, "malformed response code", k))?;
            g.firmware =
                Some(firmware(Stage::Transfer, resp, ver).ok_or((k, "bad transfer result"))?);
        }
        0x00CB => {
            if let Ok((_, (0x02, counter))) = der(i) {
                g.command_counter = der_int(counter);
            }
        }
        _ => {}
    }
    Ok(())
}

fn firmware(stage: Stage, resp: &[u8], ver: &[u8]) -> Option<FirmwareOutcome> {
    Some(FirmwareOutcome {
        stage,
        response_code: der_int(resp).filter(|&x| x < 256)? as u8,
        version: ver.try_into().ok()?,
    })
}

fn two(b: &[u8]) -> Option<i64> {
    (b.len() == 2 && b.iter().all(u8::is_ascii_digit))
        .then(|| ((b[0] - b'0') * 10 + (b[1] - b'0')) as i64)
}

/// `YYYYMMDDhhmmssZ`.
fn generalized_time(t: &[u8]) -> Option<Millis> {
    if t.len() != 15 || t[14] != b'Z' {
        return None;
    }
    let y = two(&t[0..2])? * 100 + two(&t[2..4])?;
    let (mo, d, h, mi, s) = (
        two(&t[4..6])?,
        two(&t[6..8])?,
        two(&t[8..10])?,
        two(&t[10..12])?,
        two(&t[12..14])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(
        days_from_civil(y as i32, mo as u32, d as u32) as i64 * 86_400_000
            + ((h * 60 + mi) * 60 + s) * 1000,
    )
}

/// A COSEM date-time: year(2) month day weekday hour minute second hundredths deviation(2)
/// status. Unspecified fields (0xFF) count as 0; the deviation (minutes from local time to
/// UTC; 0x8000 unspecified) is applied when given.
fn cosem_time(dt: &[u8]) -> Option<Millis> {
    let year = u16::from_be_bytes([dt[0], dt[1]]);
    let (mo, d) = (dt[2], dt[3]);
    if year == 0xFFFF || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let f = |b: u8, max: u8| {
        if b == 0xFF {
            Some(0)
        } else {
            (b <= max).then_some(b as i64)
        }
    };
    let (h, mi, s) = (f(dt[5], 23)?, f(dt[6], 59)?, f(dt[7], 59)?);
    let hs = f(dt[8], 99)?;
    let dev = i16::from_be_bytes([dt[9], dt[10]]);
    let offset = if dev == i16::MIN {
        0
    } else {
        dev as i64 * 60_000
    };
    let local = days_from_civil(year as i32, mo as u32, d as u32) as i64 * 86_400_000
        + ((h * 60 + mi) * 60 + s) * 1000
        + hs * 10;
    Some(local + offset)
}

/// Base64 digit values (both alphabets); 0xFF for everything else.
static BASE64: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = 52 + i as u8;
        i += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t
};

/// Decodes sixteen base64 characters (either alphabet) into the first twelve bytes of
/// `out` (its thirteenth is scratch); false, with `out` in any state, when one of them is
/// not in the alphabet. SSE2 (every x86_64): the characters are mapped to their values by
/// ranges, then pairs, then pairs of pairs are joined, as the table loop does one at a time.
#[cfg(target_arch = "x86_64")]
#[inline]
fn base64_16(src: &[u8; 16], out: &mut [u8]) -> bool {
    use std::arch::x86_64::*;
    assert!(out.len() >= 13);
    // SAFETY: SSE2 is part of every x86_64 target; the load reads the 16 bytes of `src`.
    let words: [u32; 4] = unsafe {
        let v = _mm_loadu_si128(src.as_ptr() as *const __m128i);
        let set = |c: u8| _mm_set1_epi8(c as i8);
        // Signed compares: bytes from 0x80 are negative, so outside every range.
        let within = |lo: u8, hi: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(v, set(lo - 1)),
                _mm_cmpgt_epi8(set(hi + 1), v),
            )
        };
        let eq = |c: u8| _mm_cmpeq_epi8(v, set(c));
        let (upper, lower, digit) = (within(b'A', b'Z'), within(b'a', b'z'), within(b'0', b'9'));
        let (plus, slash) = (
            _mm_or_si128(eq(b'+'), eq(b'-')),
            _mm_or_si128(eq(b'/'), eq(b'_')),
        );
        let valid = _mm_or_si128(
            _mm_or_si128(upper, lower),
            _mm_or_si128(digit, _mm_or_si128(plus, slash)),
        );
        if _mm_movemask_epi8(valid) != 0xFFFF {
            return false;
        }
        let vals = _mm_or_si128(
            _mm_or_si128(
                _mm_and_si128(upper, _mm_sub_epi8(v, set(b'A'))),
                _mm_and_si128(lower, _mm_sub_epi8(v, set(b'a' - 26))),
            ),
            _mm_or_si128(
                _mm_and_si128(digit, _mm_add_epi8(v, set(52 - b'0'))),
                _mm_or_si128(_mm_and_si128(plus, set(62)), _mm_and_si128(slash, set(63))),
            ),
        );
        // 16-bit lanes `v0 | v1 << 8` become `v0 << 6 | v1` (12 bits) ...
        let pairs = _mm_or_si128(
            _mm_slli_epi16(_mm_and_si128(vals, _mm_set1_epi16(0x00FF)), 6),
            _mm_srli_epi16(vals, 8),
        );
        // ... and 32-bit lanes `p0 | p1 << 16` become `p0 << 12 | p1` (24 bits: 3 bytes).
        let quads = _mm_or_si128(
            _mm_slli_epi32(_mm_and_si128(pairs, _mm_set1_epi32(0xFFFF)), 12),
            _mm_srli_epi32(pairs, 16),
        );
        std::mem::transmute::<__m128i, [u32; 4]>(quads)
    };
    for (k, w) in words.iter().enumerate() {
        out[3 * k..3 * k + 4].copy_from_slice(&(w << 8).to_be_bytes());
    }
    true
}

/// Elsewhere: the table, one character at a time.
#[cfg(not(target_arch = "x86_64"))]
fn base64_16(src: &[u8; 16], out: &mut [u8]) -> bool {
    let mut n = 0u128;
    for &c in src {
        let v = BASE64[c as usize];
        if v >= 64 {
            return false;
        }
        n = n << 6 | v as u128;
    }
    out[..12].copy_from_slice(&n.to_be_bytes()[4..]);
    true
}

/// The bytes of a payload written as text: hex (with or without spaces) or base64. Decodes
/// into `buf` (reused between records).
pub fn payload_bytes<'b>(text: &[u8], buf: &'b mut Vec<u8>) -> Result<&'b [u8], &'static str> {
    buf.clear();
    let t = text.trim_ascii();
    if t.is_empty() {
        return Err("empty GBCS payload");
    }
    let hexish = t.iter().all(|b| b.is_ascii_hexdigit() || *b == b' ');
    if hexish && t.iter().filter(|b| **b != b' ').count() % 2 == 0 {
        let mut hi = None;
        for &b in t.iter().filter(|b| **b != b' ') {
            let v = (b as char)
                .to_digit(16)
                .ok_or("invalid hex in GBCS payload")? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => buf.push(h << 4 | v),
            }
        }
        return Ok(buf);
    }
    // Whole groups of eight alphabet characters, six bytes each, through a table, written
    // into the buffer in place; the loop below takes over at the first group with padding,
    // whitespace or a bad character (the bit count is zero at a group's start, so it
    // carries on exactly).
    let groups = t.len() / 8;
    buf.resize(groups * 6 + 2, 0);
    let (mut done, mut out) = (0, 0);
    // Sixteen characters at a time first, while they are all in the alphabet.
    for g in t.chunks_exact(16) {
        if !base64_16(g.try_into().expect("16 bytes"), &mut buf[out..out + 13]) {
            break;
        }
        out += 12;
        done += 16;
    }
    for g in t[done..].chunks_exact(8) {
        let mut n = 0u64;
        let mut bad = 0u8;
        for &c in g {
            let v = BASE64[c as usize];
            bad |= v;
            n = n << 6 | v as u64;
        }
        if bad >= 64 {
            break;
        }
        // 48 bits, big-endian, into bytes out..out+6 (the two after are overwritten next).
        buf[out..out + 8].copy_from_slice(&(n << 16).to_be_bytes());
        out += 6;
        done += 8;
    }
    buf.truncate(out);
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in &t[done..] {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return Err("GBCS payload is neither hex nor base64"),
        };
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            buf.push((acc >> bits) as u8);
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let mut b = Vec::new();
        payload_bytes(s.as_bytes(), &mut b).unwrap().to_vec()
    }

    /// A DLMS alert built by hand: 81B8 at 2024-03-01 12:34:56 UTC from 00-DB-12-34-56-78-90-A0.
    fn dlms_alert() -> Vec<u8> {
        let body =
            "0F0000000100020212 81B8 090C 07E8 03 01 05 0C 22 38 00 8000 00".replace(' ', "");
        let len = body.len() / 2;
        hex(&format!(
            "DF0903{:016X}0800DB1234567890A00890B3D51F300100000002 1001 {len:02X}{body}00",
            42
        ))
    }

    #[test]
    fn hand_built_dlms_alert() {
        let g = decode(&dlms_alert()).unwrap();
        assert_eq!(
            (g.cra, g.counter, g.originator),
            (3, 42, 0x00DB_1234_5678_90A0)
        );
        assert_eq!(
            (g.message_code, g.encoding, g.alert_code),
            (0x1001, Encoding::Dlms, Some(0x81B8))
        );
        let want =
            days_from_civil(2024, 3, 1) as i64 * 86_400_000 + (12 * 3600 + 34 * 60 + 56) * 1000;
        assert_eq!(g.timestamp, Some(want));
        assert_eq!(g.protection, Protection::Signed);
    }

    #[test]
    fn truncations_are_errors_with_offsets() {
        let full = dlms_alert();
        for n in 0..full.len() - 1 {
            let e = decode(&full[..n]).unwrap_err();
            assert!(e.offset <= n, "cut at {n}: {e}");
        }
        let mut bad = full.clone();
        bad[1] = 0x0A;
        assert_eq!(
            decode(&bad).unwrap_err(),
            GbcsError {
                offset: 0,
                reason: "expected the general-signing tag DF 09"
            }
        );
    }

    #[test]
    fn text_forms() {
        let mut buf = Vec::new();
        assert_eq!(
            payload_bytes(b"DF 09 03", &mut buf).unwrap(),
            &[0xDF, 0x09, 0x03]
        );
        assert_eq!(
            payload_bytes(b"3wkD", &mut buf).unwrap(),
            &[0xDF, 0x09, 0x03]
        );
        assert!(payload_bytes(b"!!", &mut buf).is_err());
        assert!(same_version("4.0.0.0", "4.0.0") && !same_version("4.0.1", "4.0.0"));
    }

    /// The seed corpus: real-shaped alerts of every encoding (tests/data/gbcs/corpus.txt).
    fn corpus() -> Vec<(String, u16, Vec<u8>)> {
        include_str!("../../tests/data/gbcs/corpus.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut p = l.split_whitespace();
                let kind = p.next().unwrap().to_string();
                let code = u16::from_str_radix(p.next().unwrap(), 16).unwrap();
                (kind, code, hex(p.next().unwrap()))
            })
            .collect()
    }

    #[test]
    fn corpus_decodes_to_its_codes_and_encodings() {
        let c = corpus();
        assert!(c.len() >= 8);
        for (kind, code, bytes) in &c {
            let g = decode(bytes).unwrap();
            assert_eq!(g.alert_code, Some(*code), "{kind}");
            let want = match kind.as_str() {
                "dlms" => Encoding::Dlms,
                "gbz" => Encoding::Gbz,
                _ => Encoding::Asn1,
            };
            assert_eq!(g.encoding, want, "{kind} {code:04X}");
            if kind.starts_with("asn1") || *code == 0x8F43 {
                assert_eq!(
                    g.firmware.unwrap().version_text(),
                    "4.0.0.0",
                    "{kind} {code:04X}"
                );
            }
        }
    }

    /// Base64 as it was decoded before the table: one character at a time.
    fn base64_bytewise(t: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut buf = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for &b in t.trim_ascii() {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
                _ => return Err("GBCS payload is neither hex nor base64"),
            };
            acc = acc << 6 | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                buf.push((acc >> bits) as u8);
            }
        }
        Ok(buf)
    }

    proptest! {
        /// Base64 text with padding, line breaks, both alphabets and stray characters
        /// anywhere decodes (or fails) as the one-character-at-a-time loop did.
        #[test]
        fn base64_decodes_as_before(t in "[A-Za-z0-9+/=_\\- \r\n\t!]{1,200}") {
            let t = t.as_bytes();
            let hexish = t.trim_ascii().iter().all(|b| b.is_ascii_hexdigit() || *b == b' ');
            prop_assume!(!hexish && !t.trim_ascii().is_empty());
            let mut buf = Vec::new();
            let got = payload_bytes(t, &mut buf).map(|b| b.to_vec());
            prop_assert_eq!(got, base64_bytewise(t));
        }

        /// Sixteen characters at a time, as the table reads them one by one: the same bytes,
        /// and refused exactly when one is outside the alphabet (bytes next to its ranges and
        /// from 0x80 included).
        #[test]
        fn sixteen_at_a_time_as_the_table(
            picks in proptest::collection::vec(0usize..100, 16),
            wild in proptest::collection::vec(any::<u8>(), 16),
            use_wild in proptest::collection::vec(proptest::bool::weighted(0.03), 16),
        ) {
            const C: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_@[`{:.,=\x7f\x80\xff";
            let src: [u8; 16] = std::array::from_fn(|k| {
                if use_wild[k] { wild[k] } else { C[picks[k] % C.len()] }
            });
            let mut out = [0u8; 13];
            let ok = base64_16(&src, &mut out);
            let mut n = 0u128;
            let mut valid = true;
            for &c in &src {
                let v = BASE64[c as usize];
                valid &= v < 64;
                n = n << 6 | (v & 63) as u128;
            }
            prop_assert_eq!(ok, valid);
            if valid {
                prop_assert_eq!(&out[..12], &n.to_be_bytes()[4..]);
            }
        }

        /// Long clean runs with a stray character somewhere: decoded (or refused) as the
        /// one-character-at-a-time loop does.
        #[test]
        fn long_base64_with_a_stray_decodes_as_before(
            bytes in proptest::collection::vec(any::<u8>(), 12..150),
            stray in proptest::option::of((0usize..400, prop_oneof![Just(b'='), Just(b'\n'), Just(b' '), Just(b'!'), Just(0xC3u8)])),
        ) {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut s: Vec<u8> = bytes.iter().map(|b| A[(b & 63) as usize]).collect();
            if let Some((at, c)) = stray {
                let at = at % s.len();
                s[at] = c;
            }
            prop_assume!(!s.iter().all(|b| b.is_ascii_hexdigit() || *b == b' '));
            let mut buf = Vec::new();
            let got = payload_bytes(&s, &mut buf).map(|b| b.to_vec());
            prop_assert_eq!(got, base64_bytewise(&s));
        }

        #[test]
        fn clean_base64_decodes_as_before(bytes in proptest::collection::vec(any::<u8>(), 1..200)) {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut s = Vec::new();
            for c in bytes.chunks(3) {
                let n = c.iter().enumerate().fold(0u32, |a, (i, &x)| a | (x as u32) << (16 - 8 * i));
                for k in 0..4 {
                    s.push(if k <= c.len() { A[(n >> (18 - 6 * k) & 63) as usize] } else { b'=' });
                }
            }
            prop_assume!(!s.iter().all(|b| b.is_ascii_hexdigit()));
            let mut buf = Vec::new();
            prop_assert_eq!(payload_bytes(&s, &mut buf).unwrap(), &bytes[..]);
        }
    }

    proptest! {
        /// Damaged corpus messages: bytes changed, cut or extended; never a panic, and an
        /// error always points inside the message.
        #[test]
        fn never_panics_on_damaged_corpus(
            pick in 0usize..64,
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..6),
            cut in 0usize..400,
        ) {
            let c = corpus();
            let mut b = c[pick % c.len()].2.clone();
            for (i, v) in flips {
                let n = b.len();
                b[i % n] = v;
            }
            b.truncate(cut.max(1));
            if let Err(e) = decode(&b) {
                prop_assert!(e.offset <= b.len());
            }
        }

        /// The plain-indexing header reads what the parser steps read, or leaves the message
        /// to them: on damaged signed alerts, corpus messages and any bytes.
        #[test]
        fn fast_header_as_the_parser(
            pick in 0usize..64,
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..4),
            cut in 0usize..400,
            noise in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let c = corpus();
            let mut msgs = vec![c[pick % c.len()].2.clone(), dlms_alert(), noise];
            for b in msgs.iter_mut().take(2) {
                for &(i, v) in &flips {
                    let n = b.len();
                    b[i % n] = v;
                }
                b.truncate(cut.max(1));
            }
            msgs.push(dlms_alert());
            for b in &msgs {
                if let Some(fast) = header_fast(b) {
                    prop_assert_eq!(Ok(fast), header(b));
                }
            }
            prop_assert!(header_fast(&dlms_alert()).is_some());
        }

        /// Any bytes: an answer or an error with an offset inside the input, never a panic.
        #[test]
        fn never_panics_on_random_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Err(e) = decode(&b) {
                prop_assert!(e.offset <= b.len());
            }
        }

        /// Real-shaped messages with random bytes changed.
        #[test]
        fn never_panics_on_damaged_alerts(flips in proptest::collection::vec((0usize..60, any::<u8>()), 1..6)) {
            let mut b = dlms_alert();
            for (i, v) in flips {
                let n = b.len();
                b[i % n] = v;
            }
            if let Err(e) = decode(&b) {
                prop_assert!(e.offset <= b.len());
            }
        }
    }
}
