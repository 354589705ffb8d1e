#!/usr/bin/env python3
"""Kafka failover: two `fleetwatch consume` instances share a 4-partition topic that a producer
feeds at a steady rate; one is killed with SIGKILL and started again. Prints the group's lag
(messages produced but not yet committed, from the producer's delivery reports and the group's
committed offsets) over time: its peak, and how long after the kill it is back to normal.

    python benches/kafka_failover.py --tansu $FLEETWATCH_TANSU --docs fleet/alerts.xml

Needs confluent-kafka (.ci/kafka-requirements.txt) and a release build (target/release/fleetwatch).
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def documents(path):
    data = open(path, "rb").read()
    starts = []
    i = data.find(b"<?xml")
    while i != -1:
        starts.append(i)
        i = data.find(b"<?xml", i + 1)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tansu", required=True)
    ap.add_argument("--docs", required=True, help="a DUIS XML file (fleetwatch generate --format duis)")
    ap.add_argument("--fleetwatch", default="target/release/fleetwatch")
    ap.add_argument("--rate", type=float, default=4000, help="messages per second")
    ap.add_argument("--seconds", type=float, default=24)
    ap.add_argument("--kill-at", type=float, default=8)
    ap.add_argument("--session-ms", type=int, default=10000)
    ap.add_argument("--heartbeat-ms", type=int, default=3000)
    a = ap.parse_args()

    docs = documents(a.docs)
    n = min(len(docs), int(a.rate * a.seconds))
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    brokers = f"127.0.0.1:{port}"
    broker = subprocess.Popen([a.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                               "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([a.tansu, "topic", "create", "--broker", url, "--partitions", "4", "alerts"],
                       check=True, stdout=subprocess.DEVNULL)
        tmp = tempfile.mkdtemp()
        assigned = {}

        def start(name):
            p = subprocess.Popen([a.fleetwatch, "consume", "--brokers", brokers, "--topic", "alerts", "--group", "fw",
                                  "--data", os.path.join(tmp, name[0]), "--session-timeout-ms", str(a.session_ms),
                                  "--heartbeat-ms", str(a.heartbeat_ms)],
                                 stderr=subprocess.PIPE, text=True)

            def read():
                for line in p.stderr:
                    if line.startswith("assigned:"):
                        assigned[name] = line.split()[-1]
                    if line.startswith(("assigned", "revoked", "stopped")):
                        print(f"  [{time.monotonic() - t0:6.2f}s {name}] {line.strip()}")
            threading.Thread(target=read, daemon=True).start()
            procs.append(p)
            return p

        t0 = time.monotonic()
        a_proc = start("a")
        start("b")
        while len(assigned) < 2:
            time.sleep(0.05)
        hi = {}
        prod = Producer({"bootstrap.servers": brokers, "linger.ms": 5, "enable.idempotence": False})

        def delivered(err, m):
            if err is None:
                hi[m.partition()] = max(hi.get(m.partition(), -1), m.offset() + 1)
        watcher = Consumer({"bootstrap.servers": brokers, "group.id": "fw", "enable.auto.commit": False})
        tps = [TopicPartition("alerts", p) for p in range(4)]
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    c = watcher.committed(tps, timeout=5)
                    lag = sum(max(0, hi.get(tp.partition, 0) - max(tp.offset, 0)) for tp in c)
                    samples.append((time.monotonic() - start_at, lag))
                except Exception as e:  # noqa: BLE001 - a sample lost during a rebalance
                    print("  sample failed:", e)
                time.sleep(0.25)
        start_at = time.monotonic()
        threading.Thread(target=sample, daemon=True).start()
        killed = False
        for i in range(n):
            while True:
                try:
                    prod.produce("alerts", docs[i], on_delivery=delivered)
                    break
                except BufferError:
                    prod.poll(0.01)
            prod.poll(0)
            ahead = (i + 1) / a.rate - (time.monotonic() - start_at)
            if ahead > 0:
                time.sleep(ahead)
            if not killed and time.monotonic() - start_at >= a.kill_at:
                killed = True
                kill_t = time.monotonic() - start_at
                a_proc.send_signal(signal.SIGKILL)
                a_proc.wait()
                print(f"  [{time.monotonic() - t0:6.2f}s] a killed (SIGKILL) and started again")
                start("a2")
        prod.flush(30)
        time.sleep(max(5, a.session_ms / 1000 + 5))
        stop.set()
        time.sleep(0.5)
        normal = [lag for t, lag in samples if t < kill_t]
        base = max(normal) if normal else 0
        after = [(t, lag) for t, lag in samples if t >= kill_t]
        peak_t, peak = max(after, key=lambda s: s[1])
        back = next((t for t, lag in after if t > peak_t and lag <= max(base, a.rate * 0.5)), None)
        print(f"rate {a.rate:.0f} msg/s, {n} messages, session {a.session_ms} ms / heartbeat {a.heartbeat_ms} ms")
        print(f"lag before the kill: at most {base} messages")
        print(f"peak lag after the kill: {peak} messages ({peak / a.rate:.1f} s of traffic), {peak_t - kill_t:.1f} s after it")
        if back is not None:
            print(f"back to normal {back - kill_t:.1f} s after the kill")
        final = samples[-1][1] if samples else None
        print(f"final lag: {final}")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        broker.kill()
        broker.wait()


if __name__ == "__main__":
    sys.exit(main())
