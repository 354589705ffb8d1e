#!/usr/bin/env python3
"""Alerts per day x CSP region x alert code, with the installed base of each day, on Spark.

Reads what `fleetwatch export` writes (Hive-partitioned Parquet):

    EVENTS/day=YYYY-MM-DD/region=REGION/part-*.parquet   one row per alert record
    INVENTORY/part-0.parquet                              one row per device

and writes OUT (a directory, one CSV file with a header) with the columns

    day,region,alert_code,alerts,installed_devices,per_1000_per_day

the same numbers as `fleetwatch alerts --by day,region,code --format csv` on the same inputs
and filters: `alerts` sums the records' counts (throttled alerts count for their number);
`installed_devices` counts the inventory's devices in the region installed on or before the
day (a device without an install date counts on every day); `per_1000_per_day` is
alerts * 1000 / installed_devices, empty where the region has no device in the inventory
(alerts from devices the inventory lacks are under `Unknown`).

The installed base is computed from the inventory grouped by region and install date, crossed
with the days the events cover: a few thousand rows whatever the fleet's size, so the only
large operation is the one aggregation over the events.

    spark-submit spark/fleet_rates.py --events lake/events --inventory lake/inventory \\
        --out rates --master spark://HOST:7077
    python3 spark/fleet_rates.py --events lake/events --inventory lake/inventory --out rates
"""
import argparse
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", required=True, help="the events dataset (OUT/events of fleetwatch export)")
    p.add_argument("--inventory", required=True, help="the inventory dataset (OUT/inventory)")
    p.add_argument("--out", required=True, help="output directory (overwritten): one CSV file with a header")
    p.add_argument("--master", default=None,
                   help="Spark master URL, e.g. spark://host:7077 or local[2] (default: spark-submit's, else local[*])")
    return p.parse_args(argv)


def rates(spark, events_dir, inventory_dir):
    """The rates as a DataFrame, ordered by day, region, alert_code."""
    from pyspark.sql import functions as F

    # Partition values as written (a region such as "4G North" stays a string); day is cast.
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    events = spark.read.option("basePath", events_dir).parquet(events_dir)
    alerts = (
        events.groupBy(F.to_date("day").alias("day"), "region", "alert_code")
        .agg(F.sum(F.col("alerts").cast("long")).alias("alerts"))
    )
    inventory = spark.read.parquet(inventory_dir).select(
        F.col("region").cast("string").alias("region"), "install_date"
    )
    by_install = inventory.groupBy("region", "install_date").agg(F.count(F.lit(1)).alias("n"))
    days = alerts.select("day").distinct()
    regions = by_install.select("region").distinct()
    installed = (
        days.crossJoin(regions)
        .join(
            by_install.withColumnRenamed("region", "r"),
            (F.col("r") == F.col("region"))
            & (F.col("install_date").isNull() | (F.col("install_date") <= F.col("day"))),
            "left",
        )
        .groupBy("day", "region")
        .agg(F.coalesce(F.sum("n"), F.lit(0)).cast("long").alias("installed_devices"))
    )
    out = alerts.join(installed, ["day", "region"], "left").withColumn(
        "per_1000_per_day",
        F.when(
            F.col("installed_devices") > 0,
            F.col("alerts") * F.lit(1000.0) / F.col("installed_devices"),
        ),
    )
    return out.select(
        F.date_format("day", "yyyy-MM-dd").alias("day"),
        "region",
        F.col("alert_code").cast("string").alias("alert_code"),
        "alerts",
        "installed_devices",
        "per_1000_per_day",
    ).orderBy("day", "region", "alert_code")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("fleetwatch fleet_rates")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        rates(spark, args.events, args.inventory).coalesce(1).write.mode("overwrite").option(
            "header", True
        ).csv(args.out)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
