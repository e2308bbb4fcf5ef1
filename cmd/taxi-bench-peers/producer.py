"""The original tutorial's producer, as `make bench-peers` runs it: pandas reads the Parquet
file, every row is sent as row.to_json() with kafka-python (its defaults: acks=1, no
compression, file order). Prints one JSON line starting with BENCH-PEERS-DONE.

usage: producer.py BROKERS TOPIC PARQUET_FILE ROWS
"""
import json
import sys
import time

import pandas as pd
from kafka import KafkaProducer

brokers, topic, path, rows = sys.argv[1:5]
rows = int(rows)

start = time.time()
producer = KafkaProducer(bootstrap_servers=brokers.split(","))
df = pd.read_parquet(path)
if rows < len(df):
    df = df.head(rows)
sent = 0
for _, row in df.iterrows():
    producer.send(topic, value=row.to_json().encode("utf-8"))
    sent += 1
producer.flush()
producer.close()
print("BENCH-PEERS-DONE " + json.dumps({"rows": sent, "seconds": time.time() - start}), flush=True)
