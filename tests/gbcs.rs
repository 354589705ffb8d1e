//! The GBCS decoder against the real reference test data set (RTDS 4.5.0) and the two real
//! DUIS payload extracts, read from ../shared/realdata (never copied into the project).
//!
//! Expected values below were read by hand from the hex (offsets in docs/gbcs.md) for a sample
//! of each encoding and protection; every other alert is checked against the code its file
//! name gives.

mod common;
use common::*;
use fleetwatch::decode::gbcs::{Encoding, Gbcs, Protection, decode, payload_bytes};
use fleetwatch::model::firmware::Stage;
use fleetwatch::model::time::{days_from_civil, format_timestamp};
use std::path::PathBuf;

fn rtds() -> PathBuf {
    realdata("gbcs-parser/test/rtds/RTDS-4.5.0")
}

fn files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in std::fs::read_dir(rtds()).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            v.push(f.unwrap().path());
        }
    }
    v.sort();
    v
}

fn read(rel: &str) -> Gbcs {
    let text = std::fs::read(rtds().join(rel)).unwrap();
    let mut buf = Vec::new();
    decode(payload_bytes(&text, &mut buf).unwrap()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The code a file name gives (the renamed ones fixed as the realdata README says).
fn code_of(name: &str) -> Option<u16> {
    if name.starts_with("CCS08_NA_NA_ALERT") {
        return Some(0x8F8A);
    }
    if name.starts_with("DBCH04_") {
        return Some(0x8F2A);
    }
    name.split('_').find_map(|p| {
        (p.len() == 4 && p.starts_with('8'))
            .then(|| u16::from_str_radix(p, 16).ok())
            .flatten()
    })
}

#[test]
fn every_rtds_message_decodes() {
    let (mut alerts, mut responses) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for f in files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read(&f).unwrap();
        let mut buf = Vec::new();
        let g = decode(payload_bytes(&text, &mut buf).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        seen.insert((g.protection == Protection::MacOnly, g.encoding as u8));
        if name.contains("ALERT") {
            alerts += 1;
            assert!(g.is_alert(), "{name}");
            assert_eq!(g.alert_code, code_of(&name), "{name}");
            let ts = g
                .timestamp
                .unwrap_or_else(|| panic!("{name}: no timestamp"));
            assert!(
                (days_from_civil(2000, 1, 1) as i64 * 86_400_000
                    ..days_from_civil(2040, 1, 1) as i64 * 86_400_000)
                    .contains(&ts),
                "{name}: {}",
                format_timestamp(ts)
            );
            assert_eq!(
                g.originator >> 8,
                0x0000_DB12_3456_7890,
                "{name}: an RTDS device"
            );
        } else {
            responses += 1;
            assert_eq!(g.cra, 2, "{name}");
            assert_eq!(g.alert_code, None);
        }
    }
    assert_eq!((alerts, responses), (93, 11));
    // Every encoding, signed and MAC-only, occurs.
    for e in [Encoding::Dlms, Encoding::Gbz, Encoding::Asn1] {
        assert!(
            seen.contains(&(false, e as u8)) && seen.contains(&(true, e as u8)),
            "{e:?} signed and MAC-only: {seen:?}"
        );
    }
}

fn at(y: i32, m: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, m, d) as i64 * 86_400_000 + ((h * 60 + mi) * 60 + s) * 1000
}

#[test]
fn hand_checked_dlms() {
    // Signed: DF09 03, counter 0x07D0, originator ...90A0, message code 0x00CE (firmware
    // distribution receipt, ESME); payload 0F 200007D0 00 0203 12 8F72 090C 07DF 01 01 FF 00 00
    // 00 00 8000 FF: 8F72 at 2015-01-01 00:00:00 (deviation unspecified).
    let g = read("NA_FDRA-DLMS/FDRA-DLMS_NA_8F72_ALERT_GBCS.HEX");
    assert_eq!(
        (g.protection, g.encoding, g.counter, g.message_code),
        (Protection::Signed, Encoding::Dlms, 2000, 0x00CE)
    );
    assert_eq!(
        (g.originator, g.alert_code, g.timestamp),
        (
            0x00DB_1234_5678_90A0,
            Some(0x8F72),
            Some(at(2015, 1, 1, 0, 0, 0))
        )
    );
    // MAC-only: DD 00.. 81A5, security header, DF09 03, counter 0x0FA0 from ...90A2, code 0x0018
    // (CS14): 8F12 at 2015-01-01 00:00:00.
    let g = read("NA_CS14/CS14_NA_8F12_ALERT_GBCS.HEX");
    assert_eq!(
        (g.protection, g.encoding, g.counter, g.message_code),
        (Protection::MacOnly, Encoding::Dlms, 4000, 0x0018)
    );
    assert_eq!(
        (g.originator, g.alert_code, g.timestamp),
        (
            0x00DB_1234_5678_90A2,
            Some(0x8F12),
            Some(at(2015, 1, 1, 0, 0, 0))
        )
    );
    // Future-dated (0x00CC): 07EE 01 0F FF 09 00 00 00 -> 2030-01-15 09:00:00; the octet string
    // 0019 00000000000003F0 ... names the command: counter 0x3F0 = 1008.
    let g = read(
        "1.1.1_ECS01a/ECS01a_1.1.1_8F66_FUTURE_DATED_TOU_BLOCK_SUCCESS_ALERT_CURRENCY_UNIT_GBCS.HEX",
    );
    assert_eq!(
        (g.message_code, g.alert_code, g.timestamp),
        (0x00CC, Some(0x8F66), Some(at(2030, 1, 15, 9, 0, 0)))
    );
    assert_eq!(g.command_counter, Some(1008));
}

#[test]
fn hand_checked_gbz() {
    // Signed: counter 0x0BB8 from ...90A1, code 0x00CF; 0109 01 8F72 1C374A80: 473,385,600 s
    // after 2000-01-01 = 2015-01-01 00:00:00.
    let g = read("NA_FDRA-ZigBee/FDRA-ZigBee_NA_8F72_ALERT_GBCS.HEX");
    assert_eq!(
        (g.protection, g.encoding, g.counter, g.message_code),
        (Protection::Signed, Encoding::Gbz, 3000, 0x00CF)
    );
    assert_eq!(
        (g.originator, g.alert_code, g.timestamp),
        (
            0x00DB_1234_5678_90A1,
            Some(0x8F72),
            Some(at(2015, 1, 1, 0, 0, 0))
        )
    );
    // Future-dated (0x00CD): 0109 01 8F66 38818890 (2030-01-15 09:00:00), then 0E 006C
    // 00000000000003E9: the command's counter 1001.
    let g =
        read("1.6_GCS02/GCS02_1.6_8F66_FUTURE_DATED_SUCCESS_ALERT_CHANGE_PAYMENT_MODE_GBCS.HEX");
    assert_eq!(
        (g.message_code, g.alert_code, g.timestamp, g.command_counter),
        (
            0x00CD,
            Some(0x8F66),
            Some(at(2030, 1, 15, 9, 0, 0)),
            Some(1001)
        )
    );
    let g = read("NA_GNCA-ZigBee/GNCA-ZigBee_NA_810E_ALERT_GBCS.HEX");
    assert_eq!(
        (g.protection, g.encoding, g.alert_code),
        (Protection::MacOnly, Encoding::Gbz, Some(0x810E))
    );
}

#[test]
fn hand_checked_asn1_and_the_firmware_family() {
    // CCS08 (0x0128), signed, from ...90A2: 30 29 { 02 03 008F8A, 18 0F "20150101000000Z",
    // 04 08 00DB1234567890A4, 04 04 0123ABCD, 02 01 00 }: transfer success, version 0123ABCD.
    let g = read("NA_CCS08/CCS08_NA_NA_ALERT_GBCS.HEX");
    assert_eq!(
        (g.encoding, g.message_code, g.alert_code, g.timestamp),
        (
            Encoding::Asn1,
            0x0128,
            Some(0x8F8A),
            Some(at(2015, 1, 1, 0, 0, 0))
        )
    );
    let fw = g.firmware.unwrap();
    assert_eq!(
        (fw.stage, fw.response_code, fw.version, fw.reason()),
        (Stage::Transfer, 0, [0x01, 0x23, 0xAB, 0xCD], "success")
    );
    // CS06 (0x00CA): 8F66 at 2030-01-15 09:00:00 for command 1001 (03E9); 30 09 { 02 01 00,
    // 04 04 0123ABCF }: activation success of version 0123ABCF.
    let g = read("11.3_CS06/CS06_11.3_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX");
    assert_eq!(
        (g.alert_code, g.timestamp, g.command_counter),
        (Some(0x8F66), Some(at(2030, 1, 15, 9, 0, 0)), Some(1001))
    );
    let fw = g.firmware.unwrap();
    assert_eq!(
        (fw.stage, fw.response_code, fw.version),
        (Stage::Activation, 0, [0x01, 0x23, 0xAB, 0xCF])
    );
    // The 8F67: 2030-01-01 00:00:00, command 1004 (03EC), response 02: hash mismatch.
    let g = read("11.3_CS06/CS06_11.3_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX");
    assert_eq!(
        (g.alert_code, g.timestamp, g.command_counter),
        (Some(0x8F67), Some(at(2030, 1, 1, 0, 0, 0)), Some(1004))
    );
    assert_eq!(g.firmware.unwrap().reason(), "hash mismatch");
    // MAC-only ASN.1: GCS62 (0x00B2) 8071.
    let g = read("NA_GCS62/GCS62_NA_8071_ALERT_GBCS.HEX");
    assert_eq!(
        (g.protection, g.encoding, g.message_code, g.alert_code),
        (Protection::MacOnly, Encoding::Asn1, 0x00B2, Some(0x8071))
    );
    // Responses: the CS06 immediate success response is a CRA 2 message with a COSEM date-time.
    let g = read("11.3_CS06/CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX");
    assert_eq!((g.cra, g.alert_code), (2, None));
}

#[test]
fn the_duis_extracts_decode_from_base64() {
    for (file, code) in [
        ("devicealert_8F20.GBCSPayload.b64", 0x8F20),
        ("futuredated_8F66.GBCSPayload.b64", 0x8F66),
    ] {
        let text = std::fs::read(realdata(&format!("duis-parser/inline-extracts/{file}"))).unwrap();
        let mut buf = Vec::new();
        let g = decode(payload_bytes(&text, &mut buf).unwrap()).unwrap();
        assert_eq!(g.alert_code, Some(code), "{file}");
        assert_eq!(g.originator, 0xBC33_ACFF_FEFA_553D, "{file}");
    }
}

fn rtds_hex(rel: &str) -> String {
    String::from_utf8(std::fs::read(rtds().join(rel)).unwrap())
        .unwrap()
        .trim()
        .to_string()
}

/// Exports that carry only the payload are read from it; a payload that disagrees with the
/// row's code, or is cut short, is a reject that says so.
#[test]
fn csv_payload_column() {
    let dir = tempfile::tempdir().unwrap();
    let ccs08 = rtds_hex("NA_CCS08/CCS08_NA_NA_ALERT_GBCS.HEX");
    let gbz = rtds_hex("NA_FDRA-ZigBee/FDRA-ZigBee_NA_8F72_ALERT_GBCS.HEX");
    let mut csv = String::from("alert_code,gbcs_payload\n");
    csv += &format!(",{ccs08}\n"); // line 2: code, device and time from the payload
    csv += &format!("8F72,{gbz}\n"); // line 3: agrees
    csv += &format!("81B8,{gbz}\n"); // line 4: disagrees
    csv += &format!(",{}\n", &ccs08[..60]); // line 5: cut short
    std::fs::write(dir.path().join("p.csv"), csv).unwrap();
    let r = run_in(
        dir.path(),
        &[
            "alerts",
            "p.csv",
            "--by",
            "day,code",
            "-f",
            "csv",
            "--no-distinct",
        ],
        None,
    );
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("records read 4 = accepted 2 + duplicates 0 + rejected 2"),
        "{}",
        r.stderr
    );
    // 8F8A and 8F72, both at the devices' own time 2015-01-01.
    assert!(
        r.stdout.contains("2015-01-01,8F72,1,1,") && r.stdout.contains("2015-01-01,8F8A,1,1,"),
        "{}",
        r.stdout
    );
    let q = std::fs::read_to_string(dir.path().join("fleetwatch-rejects.jsonl")).unwrap();
    let lines: Vec<&str> = q.lines().collect();
    assert!(
        lines[0].contains("\"line\":4")
            && lines[0]
                .contains("the row's alert code 81B8 disagrees with the GBCS payload's 8F72"),
        "{q}"
    );
    assert!(
        lines[1].contains("\"line\":5")
            && lines[1].contains("GBCS payload: ")
            && lines[1].contains("at byte"),
        "{q}"
    );
}

/// A DUIS alert wrapping a real payload is accepted when the envelope names the payload's
/// code, and rejected with both codes when it does not.
#[test]
fn duis_envelope_checked_against_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = String::from_utf8(
        std::fs::read(realdata(
            "duis-parser/inline-extracts/devicealert_8F20.GBCSPayload.b64",
        ))
        .unwrap(),
    )
    .unwrap();
    let doc = |code: &str, n: u32| {
        format!(
            "<?xml version=\"1.0\"?>\n<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\"><sr:Header>\
             <sr:ResponseID>BC-33-AC-FF-FE-FA-55-3D:90-B3-D5-1F-30-01-00-00:{n}</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode>\
             <sr:ResponseDateTime>2024-01-01T00:00:00Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:DeviceAlertMessage>\
             <sr:AlertCode>{code}</sr:AlertCode><sr:GBCSPayload>{}</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body></sr:Response>\n",
            b64.trim()
        )
    };
    std::fs::write(dir.path().join("a.xml"), doc("8F20", 1) + &doc("8F35", 2)).unwrap();
    let r = run_in(dir.path(), &["alerts", "a.xml"], None);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("accepted 1 + duplicates 0 + rejected 1"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("the envelope's alert code 8F35 disagrees with the GBCS payload's 8F20"),
        "{}",
        r.stderr
    );
}

#[test]
fn gbcs_command_decodes_what_an_analyst_pastes() {
    let hex = rtds_hex("11.3_CS06/CS06_11.3_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX");
    let r = run(&["gbcs", &hex, "DF0903", "-f", "json"]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows[0]["alert_code"], "8F67");
    assert_eq!(rows[0]["device_time"], "2030-01-01T00:00:00.000Z");
    assert_eq!(rows[0]["command_counter"], 1004);
    assert_eq!(
        rows[0]["firmware"],
        "activation 1.35.171.207: hash mismatch"
    );
    assert_eq!(rows[1]["error"], "truncated originator counter at byte 3");
}
