//! The Kafka consumer's counters, shown by `/metrics` and `/api/summary`. Apart from the
//! consumer itself (`kafka.rs`, which needs librdkafka and the `kafka` feature), so that the
//! receiver's pages compile without it.

use super::log::{SYNC_BUCKETS, prometheus_histogram};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One assigned partition as the statistics last saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionView {
    /// Messages between the committed position and the partition's end (-1: not known yet).
    pub lag: i64,
    /// The partition's high watermark (-1: not known yet).
    pub hi_offset: i64,
    /// The next offset this instance committed (-1: none yet).
    pub committed: i64,
}

/// The consumer's counters, shown by `/metrics` and `/api/summary`.
#[derive(Default)]
pub struct KafkaMetrics {
    pub topic: String,
    /// Messages read from the topic (each delivery, repeats included).
    pub consumed: AtomicU64,
    /// Messages stored in the log (at least one message id not seen before).
    pub accepted: AtomicU64,
    /// Message ids delivered again (after a crash or a rebalance): counted once, not stored again.
    pub duplicates: AtomicU64,
    /// Messages quarantined.
    pub rejected: AtomicU64,
    pub batches: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    pub rebalances: AtomicU64,
    /// Commit latency histogram: counts of commits at or under each bound (microseconds).
    pub commit_us: [AtomicU64; SYNC_BUCKETS.len()],
    pub commit_us_sum: AtomicU64,
    /// The assigned partitions.
    pub partitions: Mutex<BTreeMap<i32, PartitionView>>,
    /// The first message taken and the end of the last batch.
    pub span: Mutex<Option<(Instant, Instant)>>,
}

impl KafkaMetrics {
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(super) fn commit_took(&self, us: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.commit_us_sum.fetch_add(us, Ordering::Relaxed);
        let b = SYNC_BUCKETS
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(SYNC_BUCKETS.len() - 1);
        self.commit_us[b].fetch_add(1, Ordering::Relaxed);
    }

    /// The partitions, copied out of the lock.
    pub fn partitions(&self) -> BTreeMap<i32, PartitionView> {
        self.partitions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Appends the consumer's series in Prometheus text format.
    pub fn prometheus(&self, m: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, &str, &AtomicU64); 7] = [
            (
                "consumed",
                "Kafka messages read (every delivery, repeats included).",
                &self.consumed,
            ),
            (
                "accepted",
                "Kafka messages stored in the log (a message id not seen before).",
                &self.accepted,
            ),
            (
                "duplicates",
                "Kafka messages delivered again (same message id): counted once, not stored again.",
                &self.duplicates,
            ),
            (
                "rejected",
                "Kafka messages quarantined (with topic, partition and offset).",
                &self.rejected,
            ),
            (
                "commits",
                "Offset commits that succeeded (each after the log sync).",
                &self.commits,
            ),
            (
                "commit_failures",
                "Offset commits that failed (the messages will be delivered again).",
                &self.commit_failures,
            ),
            (
                "rebalances",
                "Partition assignments received.",
                &self.rebalances,
            ),
        ];
        for (name, help, v) in rows {
            let _ = writeln!(
                m,
                "# HELP fleetwatch_kafka_{name}_total {help}\n# TYPE fleetwatch_kafka_{name}_total counter\nfleetwatch_kafka_{name}_total {}",
                get(v)
            );
        }
        let parts = self.partitions();
        let t = &self.topic;
        let _ = writeln!(
            m,
            "# HELP fleetwatch_kafka_consumer_lag Messages between the consumer's position and the partition's end (from librdkafka statistics).\n# TYPE fleetwatch_kafka_consumer_lag gauge"
        );
        for (p, v) in parts.iter().filter(|(_, v)| v.lag >= 0) {
            let _ = writeln!(
                m,
                "fleetwatch_kafka_consumer_lag{{topic=\"{t}\",partition=\"{p}\"}} {}",
                v.lag
            );
        }
        let _ = writeln!(
            m,
            "# HELP fleetwatch_kafka_committed_offset The next offset committed per assigned partition.\n# TYPE fleetwatch_kafka_committed_offset gauge"
        );
        for (p, v) in parts.iter().filter(|(_, v)| v.committed >= 0) {
            let _ = writeln!(
                m,
                "fleetwatch_kafka_committed_offset{{topic=\"{t}\",partition=\"{p}\"}} {}",
                v.committed
            );
        }
        prometheus_histogram(
            m,
            "fleetwatch_kafka_commit_seconds",
            "Time of a synchronous offset commit.",
            &self.commit_us,
            &self.commit_us_sum,
        );
    }

    /// The same figures as JSON, for `/api/summary`.
    pub fn summary(&self) -> Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let parts: Vec<Value> = self
            .partitions()
            .iter()
            .map(|(p, v)| {
                json!({"partition": p, "lag": (v.lag >= 0).then_some(v.lag),
                       "hi_offset": (v.hi_offset >= 0).then_some(v.hi_offset),
                       "committed": (v.committed >= 0).then_some(v.committed)})
            })
            .collect();
        json!({
            "topic": self.topic,
            "consumed": get(&self.consumed),
            "accepted": get(&self.accepted),
            "duplicates": get(&self.duplicates),
            "rejected": get(&self.rejected),
            "batches": get(&self.batches),
            "commits": get(&self.commits),
            "commit_failures": get(&self.commit_failures),
            "commit_seconds_sum": get(&self.commit_us_sum) as f64 / 1e6,
            "rebalances": get(&self.rebalances),
            "partitions": parts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition whose figures are not known yet.
    const UNKNOWN: PartitionView = PartitionView {
        lag: -1,
        hi_offset: -1,
        committed: -1,
    };

    #[test]
    fn metrics_carry_the_lag_per_partition_and_the_commit_histogram() {
        let m = KafkaMetrics {
            topic: "alerts".into(),
            ..Default::default()
        };
        m.partitions.lock().unwrap().insert(
            2,
            PartitionView {
                lag: 7,
                hi_offset: 100,
                committed: 93,
            },
        );
        m.partitions.lock().unwrap().insert(3, UNKNOWN);
        m.commit_took(800);
        m.commit_took(3_000);
        let mut text = String::new();
        m.prometheus(&mut text);
        assert!(
            text.contains("fleetwatch_kafka_consumer_lag{topic=\"alerts\",partition=\"2\"} 7\n")
        );
        assert!(
            !text.contains("partition=\"3\""),
            "an unknown lag is not shown"
        );
        assert!(
            text.contains(
                "fleetwatch_kafka_committed_offset{topic=\"alerts\",partition=\"2\"} 93\n"
            )
        );
        assert!(text.contains("fleetwatch_kafka_commit_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("fleetwatch_kafka_commit_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("fleetwatch_kafka_commit_seconds_count 2\n"));
        assert!(text.contains("fleetwatch_kafka_commits_total 2\n"));
    }
}
