"""The original tutorial's Spark Structured Streaming job, as `make bench-peers` runs it.

The logic is the tutorial's: read the rides topic (JSON written by the pandas producer or
taxi-replay: timestamps as epoch ms), parse it with a schema, join the pickup zone to the zone
lookup CSV, window by dropoff hour with a 10-minute watermark, group by borough, count and sum.
Changed only to read the whole topic from the beginning (startingOffsets=earliest) and to write
to a file sink (JSON, append mode) instead of the console. Two bench-only additions that do not
touch the computation: the session time zone is UTC (the timestamps are wall clock read as UTC,
as taxi-stream reads them), and the job stops itself once every message of the topic has been
read and the following batch (the one the new watermark triggers, which writes the windows it
closed) has finished; it then prints one JSON line starting with BENCH-PEERS-DONE.

usage: spark-submit --master local[2] --jars ... spark_job.py BROKERS TOPIC ZONES_CSV OUT_DIR CHECKPOINT_DIR MESSAGES
"""
import json
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

brokers, topic, zones_csv, out_dir, checkpoint_dir, messages = sys.argv[1:7]
messages = int(messages)

spark = (SparkSession.builder.appName("taxi-borough-hourly")
         .config("spark.sql.session.timeZone", "UTC")
         .getOrCreate())
spark.sparkContext.setLogLevel("WARN")

schema = (T.StructType()
          .add("VendorID", T.LongType())
          .add("lpep_pickup_datetime", T.LongType())
          .add("lpep_dropoff_datetime", T.LongType())
          .add("store_and_fwd_flag", T.StringType())
          .add("RatecodeID", T.DoubleType())
          .add("PULocationID", T.LongType())
          .add("DOLocationID", T.LongType())
          .add("passenger_count", T.DoubleType())
          .add("trip_distance", T.DoubleType())
          .add("fare_amount", T.DoubleType())
          .add("extra", T.DoubleType())
          .add("mta_tax", T.DoubleType())
          .add("tip_amount", T.DoubleType())
          .add("tolls_amount", T.DoubleType())
          .add("ehail_fee", T.DoubleType())
          .add("improvement_surcharge", T.DoubleType())
          .add("total_amount", T.DoubleType())
          .add("payment_type", T.DoubleType())
          .add("trip_type", T.DoubleType())
          .add("congestion_surcharge", T.DoubleType()))

zones = spark.read.option("header", True).option("inferSchema", True).csv(zones_csv)

rides = (spark.readStream.format("kafka")
         .option("kafka.bootstrap.servers", brokers)
         .option("subscribe", topic)
         .option("startingOffsets", "earliest")
         .load()
         .selectExpr("CAST(value AS STRING) AS json")
         .select(F.from_json("json", schema).alias("ride"))
         .select("ride.*")
         .withColumn("pickup_time", (F.col("lpep_pickup_datetime") / 1000).cast("timestamp"))
         .withColumn("dropoff_time", (F.col("lpep_dropoff_datetime") / 1000).cast("timestamp")))

summary = (rides.join(zones, rides.PULocationID == zones.LocationID)
           .withWatermark("dropoff_time", "10 minutes")
           .groupBy(F.window("dropoff_time", "1 hour"), "Borough")
           .agg(F.count("*").alias("trip_count"),
                F.sum("passenger_count").alias("passengers"),
                F.count("passenger_count").alias("passenger_rides"),
                F.sum("trip_distance").alias("total_distance"),
                F.sum("tip_amount").alias("total_tip"),
                F.sum("fare_amount").alias("total_fare"),
                F.sum("total_amount").alias("total_amount")))

query_start = time.time()
query = (summary.writeStream.outputMode("append").format("json")
         .option("path", out_dir)
         .option("checkpointLocation", checkpoint_dir)
         .start())

# Stop once every message is read and one more batch has completed.
read, last_batch, done_batch, watermark = 0, -1, None, None
while query.isActive:
    for p in query.recentProgress:
        if p["batchId"] <= last_batch:
            continue
        last_batch = p["batchId"]
        read += p["numInputRows"]
        watermark = p.get("eventTime", {}).get("watermark", watermark)
        if done_batch is None and read >= messages:
            done_batch = p["batchId"]
    if done_batch is not None and last_batch > done_batch:
        break
    time.sleep(0.05)
done = time.time()
exc = query.exception()
query.stop()
if exc is not None:
    print("spark query failed:", exc, file=sys.stderr)
    sys.exit(1)
print("BENCH-PEERS-DONE " + json.dumps({"query_start": query_start, "done": done,
                                         "messages": read, "watermark": watermark,
                                         "batches": last_batch + 1}), flush=True)
spark.stop()
