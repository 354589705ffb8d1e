//! The DUIS decoder against the only real DUIS XML that is public, read from
//! `../shared/realdata` (GPL-3.0: never copied into this project).

mod common;
use common::realdata;
use fleetwatch::decode::{Collect, duis};
use fleetwatch::model::time::parse_timestamp;
use fleetwatch::model::{DeviceId, MessageKind, hash_bytes};

fn decode(path: &str) -> Collect {
    let bytes = std::fs::read(realdata(path)).unwrap();
    let mut c = Collect::default();
    duis::decode(&bytes, 1, 0, &mut c);
    c
}

const SIGNING: &str = "dccboxed-signing-tool/src/test/resources/";

/// (file, ResponseID or RequestID, ResponseDateTime, device)
const RESPONSES: &[(&str, &str, &str, &str)] = &[
    (
        "duis-parser/test/resources/readfw-response.xml",
        "88-73-84-57-00-2F-96-1E:90-B3-D5-1F-30-01-00-00:1660751141087",
        "2022-08-17T15:45:42.790Z",
        "88-73-84-57-00-2F-96-1E",
    ),
    (
        "duis-sign-wrap/test/data/readfw-version-response.xml",
        "88-73-84-57-00-2F-96-1E:90-B3-D5-1F-30-01-00-00:1662370822053",
        "2022-09-05T09:40:12.060Z",
        "88-73-84-57-00-2F-96-1E",
    ),
    // No ResponseID: the RequestID is the id, and its target the device.
    (
        "duis-parser/test/resources/acknowledgement-error.xml",
        "90-B3-D5-1F-30-01-00-00:88-73-84-57-00-2F-96-6C:1658482675800",
        "2022-07-22T09:37:56.134Z",
        "88-73-84-57-00-2F-96-6C",
    ),
    (
        "dccboxed-signing-tool/src/main/resources/message.xml",
        "00-07-81-D7-00-00-36-CE:90-B3-D5-1F-30-01-00-00:1655397248260",
        "2022-06-16T16:34:15.844Z",
        "00-07-81-D7-00-00-36-CE",
    ),
    (
        "dccboxed-signing-tool/src/main/resources/message2.xml",
        "00-07-81-D7-00-00-36-CE:90-B3-D5-1F-30-01-00-00:1655397248260",
        "2022-06-16T16:34:15.844Z",
        "00-07-81-D7-00-00-36-CE",
    ),
];

#[test]
fn responses_are_responses_with_header_ids_and_times() {
    for &(file, id, time, device) in RESPONSES {
        let c = decode(file);
        assert!(c.rejects.is_empty(), "{file}: {:?}", c.rejects);
        assert_eq!(c.events.len(), 1, "{file}");
        let ev = c.events[0];
        assert_eq!(ev.kind, MessageKind::Response, "{file}");
        assert!(!ev.kind.is_alert());
        assert_eq!(ev.message_id, hash_bytes(id.as_bytes()), "{file}");
        assert_eq!(ev.ts, parse_timestamp(time.as_bytes()).unwrap(), "{file}");
        assert_eq!(
            ev.device,
            Some(device.parse::<DeviceId>().unwrap()),
            "{file}"
        );
    }
}

#[test]
fn every_signing_tool_response_is_read() {
    // Signed, unsigned, re-signed, bad signature, schema-invalid (11.2.11.2), inventory reads:
    // all well-formed XML, all responses, none an alert.
    for f in [
        "read-inventory-response-4g.xml",
        "read-inventory-response-5.4.xml",
        "readfw-response-badsignature.xml",
        "readfw-response-invalid.xml",
        "readfw-response-no-serial.xml",
        "readfw-response-no-signature.xml",
        "readfw-response-nonexist-serial.xml",
        "readfw-response-resigned.xml",
    ] {
        let c = decode(&format!("{SIGNING}{f}"));
        assert!(c.rejects.is_empty(), "{f}: {:?}", c.rejects);
        assert_eq!(c.events.len(), 1, "{f}");
        assert_eq!(c.events[0].kind, MessageKind::Response, "{f}");
    }
    let inv = decode(&format!("{SIGNING}read-inventory-response-5.4.xml"));
    assert_eq!(
        inv.events[0].ts,
        parse_timestamp(b"2025-12-28T16:51:01.185Z").unwrap()
    );
    // The 8.2 inventory read targets the DCC itself.
    assert_eq!(
        inv.events[0].device,
        Some("90-B3-D5-1F-30-00-00-02".parse().unwrap())
    );
}

#[test]
fn external_entity_is_not_resolved() {
    let c = decode(&format!("{SIGNING}duis-xxe.xml"));
    assert!(c.rejects.is_empty(), "{:?}", c.rejects);
    assert_eq!(c.events.len(), 1);
    assert_eq!(c.events[0].kind, MessageKind::Response);
    assert_eq!(
        c.events[0].message_id,
        hash_bytes(b"00-07-81-D7-00-00-36-CE:90-B3-D5-1F-30-01-00-00:1655397248260")
    );
    // Nothing of /etc/passwd can have been read: the decoder never opens files, and the CLI
    // output below carries no trace of it.
    let r = common::run(&[
        "alerts",
        realdata(&format!("{SIGNING}duis-xxe.xml"))
            .to_str()
            .unwrap(),
        "-f",
        "json",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("root:") && !r.stderr.contains("root:"));
    assert!(
        r.stderr.contains("records read 1 = accepted 1"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("1 non-alert messages"), "{}", r.stderr);
}

#[test]
fn requests_are_requests() {
    for f in [
        "11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML",
        "CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML",
        "CS06_11.3_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML",
        "CS08_11.2_SUCCESS_REQUEST_DUIS.XML",
    ] {
        let c = decode(&format!("duis-templates/templates/{f}"));
        assert!(c.rejects.is_empty(), "{f}: {:?}", c.rejects);
        assert_eq!(c.events.len(), 1, "{f}");
        assert_eq!(c.events[0].kind, MessageKind::Request, "{f}");
    }
    let c = decode("duis-templates/templates/CS06_11.3_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML");
    assert_eq!(
        c.events[0].message_id,
        hash_bytes(b"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1001")
    );
}

#[test]
fn all_real_files_back_to_back_in_one_stream() {
    // An adapter log: every real document concatenated, as one stream.
    let mut all = Vec::new();
    let mut n = 0;
    for &(f, ..) in RESPONSES {
        all.extend(std::fs::read(realdata(f)).unwrap());
        all.push(b'\n');
        n += 1;
    }
    for f in [
        "duis-xxe.xml",
        "readfw-response-no-serial.xml",
        "read-inventory-response-4g.xml",
    ] {
        all.extend(std::fs::read(realdata(&format!("{SIGNING}{f}"))).unwrap());
        n += 1;
    }
    all.extend(
        std::fs::read(realdata(
            "duis-templates/templates/11.1_UPDATE_FIRMWARE_REQUEST_DUIS.XML",
        ))
        .unwrap(),
    );
    n += 1;
    let mut c = Collect::default();
    duis::decode(&all, 1, 0, &mut c);
    assert!(c.rejects.is_empty(), "{:?}", c.rejects);
    assert_eq!(c.events.len(), n);
    assert_eq!(
        c.events
            .iter()
            .filter(|e| e.kind == MessageKind::Request)
            .count(),
        1
    );
    assert_eq!(c.events.iter().filter(|e| e.kind.is_alert()).count(), 0);
}
