#!/usr/bin/env python3
"""Load benchmark of `fleetwatch serve` (not a timed test): sustained accepted messages per
second and p50/p99 latency with durable acknowledgements (group commit), and the same with one
sync per message (--fsync-each) for comparison. Loopback only.

  python3 benches/receiver_load.py [--messages 20000] [--clients 32] [--fleetwatch PATH]
"""
import argparse, http.client, json, os, re, shutil, signal, subprocess, sys, tempfile, threading, time, base64

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def payload(device, code):
    body = bytes([0x0F, 0, 0, 0, 1, 0, 2, 2, 0x12]) + code.to_bytes(2, "big") + bytes([9, 12, 7, 0xE8, 1, 1, 1, 1, 0, 0, 0, 0x80, 0, 0xFF])
    m = bytes([0xDF, 0x09, 0x03]) + (1).to_bytes(8, "big") + b"\x08" + device.to_bytes(8, "big") + b"\x08" + bytes.fromhex("90B3D51F30010000") + b"\x00\x02\x10\x01" + bytes([len(body)]) + body + b"\x00"
    return base64.b64encode(m).decode()


def doc(n):
    device = 0x00DB120000000000 | n
    eui = "-".join(f"{device:016X}"[i:i + 2] for i in range(0, 16, 2))
    return (f'<?xml version="1.0"?>\n<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>'
            f'<sr:ResponseID>{eui}:90-B3-D5-1F-30-01-00-00:{n}</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode>'
            f'<sr:ResponseDateTime>2024-01-01T01:00:00Z</sr:ResponseDateTime></sr:Header><sr:Body><sr:DeviceAlertMessage>'
            f'<sr:AlertCode>8F35</sr:AlertCode><sr:GBCSPayload>{payload(device, 0x8F35)}</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body></sr:Response>\n').encode()


def run(fw, extra, messages, clients):
    d = tempfile.mkdtemp()
    p = subprocess.Popen([fw, "serve", "--listen", "127.0.0.1:0", "--data", d] + extra, stderr=subprocess.PIPE, text=True)
    line = ""
    while "listening on" not in line:
        line = p.stderr.readline()
        if not line:
            sys.exit("server did not start")
    host, port = re.search(r"http://([\d.]+):(\d+)", line).groups()
    docs = [doc(n) for n in range(messages)]
    lat, statuses, lock = [], {}, threading.Lock()

    def client(k):
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = []
        for i in range(k, messages, clients):
            t = time.perf_counter()
            c.request("POST", "/alerts", body=docs[i], headers={"Content-Type": "application/xml"})
            r = c.getresponse()
            r.read()
            mine.append((time.perf_counter() - t, r.status))
        with lock:
            for l, s in mine:
                lat.append(l)
                statuses[s] = statuses.get(s, 0) + 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.perf_counter() - t0
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", "/api/summary")
    syncs = json.loads(c.getresponse().read())["syncs"]
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    shutil.rmtree(d, ignore_errors=True)
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000
    return statuses.get(200, 0) / secs, q(0.50), q(0.99), statuses, syncs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--fleetwatch", default=os.path.join(ROOT, "target", "release", "fleetwatch"))
    a = ap.parse_args()
    print(f"{a.messages:,} messages, {a.clients} keep-alive clients, loopback")
    print(f"{'mode':<28}{'accepted/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'syncs':>9}  statuses")
    for name, extra in [("group commit (default)", []), ("one fsync per message", ["--fsync-each"])]:
        rate, p50, p99, st, syncs = run(a.fleetwatch, extra, a.messages, a.clients)
        print(f"{name:<28}{rate:>12,.0f}{p50:>9.2f}{p99:>9.2f}{syncs:>9,}  {st}")


if __name__ == "__main__":
    main()
