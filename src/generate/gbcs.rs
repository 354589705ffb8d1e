//! GBCS alert payloads shaped like the real ones (see `docs/gbcs.md` and the facts in
//! `../shared/realdata/README.md`): a general-signing block (`DF 09`, CRA flag 03 = alert,
//! originator counter, originator and recipient system titles, message code) around a DLMS
//! data-notification (electricity, hubs), a GBZ frame (gas), or an ASN.1 structure for the
//! firmware alerts that carry outcome fields (CCS08 transfer, CS06 future-dated activation).
//! The signature is filler derived from the record, not a real ECDSA signature.

use super::ota::TARGET_VERSION;
use super::rng::splitmix;
use super::stream::Rec;
use crate::model::DeviceType;
use crate::model::time::{civil_from_days, day_of, day_start, weekday};

const RECIPIENT: [u8; 8] = [0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00];
/// Seconds from 1970-01-01 to 2000-01-01 (the GBZ epoch).
const GBZ_EPOCH: i64 = 946_684_800;

/// Gas devices speak GBZ; electricity meters and hubs DLMS.
fn is_gas(t: DeviceType) -> bool {
    matches!(t, DeviceType::Gsme | DeviceType::Gpf)
}

/// GBCS length: one byte below 0x80, else 0x81/0x82 and the bytes.
fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
}

fn version_bytes() -> [u8; 4] {
    crate::model::firmware::version_octets(TARGET_VERSION).expect("a dotted target version")
}

fn cosem_datetime(ms: i64, out: &mut Vec<u8>) {
    let day = day_of(ms);
    let (y, m, d) = civil_from_days(day);
    let s = (ms - day_start(day)) / 1000;
    out.extend_from_slice(&(y as u16).to_be_bytes());
    out.extend_from_slice(&[
        m as u8,
        d as u8,
        weekday(day) as u8 + 1,
        (s / 3600) as u8,
        (s / 60 % 60) as u8,
        (s % 60) as u8,
        0x00,
        0x00,
        0x00,
        0x00,
    ]);
}

fn generalized_time(ms: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x18, 0x0F]);
    out.extend_from_slice(
        &crate::model::time::timestamp_bytes(ms)[..]
            .iter()
            .filter(|b| b.is_ascii_digit() || **b == b'Z')
            .copied()
            .collect::<Vec<u8>>(),
    );
}

/// Appends the GBCS message of an alert record to `out`.
pub fn alert(r: &Rec, out: &mut Vec<u8>) {
    let code = r.code.device_code().unwrap_or(0);
    let mut body: Vec<u8> = Vec::with_capacity(64);
    let message_code: u16 = match code {
        0x8F8A | 0x8F89 => {
            // CCS08: SEQUENCE { INTEGER code, GeneralizedTime, entity id, version, response }
            let mut seq = vec![0x02, 0x03, 0x00, (code >> 8) as u8, code as u8];
            generalized_time(r.ts, &mut seq);
            seq.extend_from_slice(&[0x04, 0x08]);
            seq.extend_from_slice(&r.id.to_be_bytes());
            seq.extend_from_slice(&[0x04, 0x04]);
            seq.extend_from_slice(&version_bytes());
            seq.extend_from_slice(&[0x02, 0x01, r.response]);
            body.push(0x30);
            push_len(&mut body, seq.len());
            body.extend_from_slice(&seq);
            0x0128
        }
        0x8F66 | 0x8F67 => {
            // CS06: SEQUENCE { INTEGER code, GeneralizedTime, INTEGER counter,
            //                  SEQUENCE { INTEGER response, OCTET STRING version } }
            let mut seq = vec![0x02, 0x03, 0x00, (code >> 8) as u8, code as u8];
            generalized_time(r.ts, &mut seq);
            seq.extend_from_slice(&[0x02, 0x08]);
            seq.extend_from_slice(&(r.message & 0x7FFF_FFFF_FFFF_FFFF).to_be_bytes());
            seq.extend_from_slice(&[0x30, 0x09, 0x02, 0x01, r.response, 0x04, 0x04]);
            seq.extend_from_slice(&version_bytes());
            body.push(0x30);
            push_len(&mut body, seq.len());
            body.extend_from_slice(&seq);
            0x00CA
        }
        _ if is_gas(r.device_type) => {
            // GBZ: profile 0x0109, one component, alert code, seconds since 2000.
            body.extend_from_slice(&[0x01, 0x09, 0x01]);
            body.extend_from_slice(&code.to_be_bytes());
            body.extend_from_slice(&((r.ts / 1000 - GBZ_EPOCH) as u32).to_be_bytes());
            0x1001
        }
        _ => {
            // DLMS data-notification: invoke id, no date-time, structure { alert code, time }.
            // 8F43 (the executing firmware changed) carries the new version as a third
            // element, an octet string of 4 (docs/gbcs.md).
            let running = code == 0x8F43;
            body.push(0x0F);
            body.extend_from_slice(&(r.message as u32).to_be_bytes());
            body.extend_from_slice(&[0x00, 0x02, if running { 0x03 } else { 0x02 }, 0x12]);
            body.extend_from_slice(&code.to_be_bytes());
            body.extend_from_slice(&[0x09, 0x0C]);
            cosem_datetime(r.ts, &mut body);
            if running {
                body.extend_from_slice(&[0x09, 0x04]);
                body.extend_from_slice(&version_bytes());
            }
            0x1001
        }
    };
    out.extend_from_slice(&[0xDF, 0x09, 0x03]);
    out.extend_from_slice(&r.message.to_be_bytes());
    out.push(0x08);
    out.extend_from_slice(&r.id.to_be_bytes());
    out.push(0x08);
    out.extend_from_slice(&RECIPIENT);
    out.extend_from_slice(&[0x00, 0x02]);
    out.extend_from_slice(&message_code.to_be_bytes());
    push_len(out, body.len());
    out.extend_from_slice(&body);
    out.push(0x40);
    let mut x = r.message ^ r.id;
    for _ in 0..8 {
        x = splitmix(x);
        out.extend_from_slice(&x.to_be_bytes());
    }
}
