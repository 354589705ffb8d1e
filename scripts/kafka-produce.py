#!/usr/bin/env python3
"""Produce alert files to a Kafka topic, one record per message, for `fleetwatch consume`.

DUIS XML files are split into documents (each `<?xml` starts one); JSON-lines and CSV files
into lines (a CSV file's header row is not sent: give it to the consumer as --csv-header).
Needs confluent-kafka (pip install confluent-kafka==2.16.1).

    python3 scripts/kafka-produce.py --brokers 127.0.0.1:9092 --topic alerts fleet/alerts.xml
"""
import argparse
import sys
import time

from confluent_kafka import Producer


def records(path):
    data = open(path, "rb").read()
    head = data.lstrip()[:1]
    if head == b"<":
        starts = []
        i = data.find(b"<?xml")
        while i != -1:
            starts.append(i)
            i = data.find(b"<?xml", i + 1)
        if not starts:
            yield data
            return
        for a, b in zip(starts, starts[1:] + [len(data)]):
            yield data[a:b]
    else:
        lines = data.splitlines()
        if head != b"{":
            lines = lines[1:]  # the CSV header
        for line in lines:
            if line.strip():
                yield line


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, default=0, help="messages per second (0: as fast as possible)")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    p = Producer({"bootstrap.servers": a.brokers, "linger.ms": 5, "enable.idempotence": False})
    failed = []
    n = 0
    t0 = time.monotonic()
    for f in a.files:
        for rec in records(f):
            while True:
                try:
                    p.produce(a.topic, rec, on_delivery=lambda err, _m: err and failed.append(err))
                    break
                except BufferError:
                    p.poll(0.05)
            n += 1
            p.poll(0)
            if a.rate > 0:
                ahead = n / a.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    p.flush(60)
    if failed:
        print(f"{len(failed)} of {n} messages failed: {failed[0]}", file=sys.stderr)
        return 1
    print(f"produced {n} messages to {a.topic} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
