// Package replay is the replay producer: it reads NYC TLC trip files (package source: files,
// directories, globs, hdfs://) and writes them to the rides topic as docs/design.md specifies,
// with watermark markers, pacing, progress and a resume that leaves no gap and no duplicate.
// Run(ctx, Config) is the entry point; cmd/taxi-replay is a thin CLI over it.
//
// # Messages
//
// One JSON object per trip (codecs.AppendTripJSON), key "<file base name>:<row>", headers
// ts-source, ts-row, ts-seq. Markers (key __taxi_stream_watermark__, headers ts-kind=watermark
// and ts-seq, value codecs.AppendMarkerJSON) go to every partition explicitly: one before the
// first row, one after every MarkerEvery rows, and a final one.
//
// ts-seq is the position in the replay's global send order, counting rows and markers
// together (marker 0, rows 1..1000, marker 1001, ...), so that every message of a partition
// has a distinct, increasing position. A marker's after_seq is its own position minus one
// (every message before it, in every partition, has a position <= after_seq), rows counts the
// rows before it, and watermark_ms is the topology/watermark estimate (Delay 0, the
// processor's quantile and window) over the event times of the rows before it in send order;
// NoWatermark (math.MinInt64) while there is no estimate yet (always for the first marker).
// The final marker has final=true and watermark_ms = the largest event time + 1 ms.
// Positions and markers depend only on the inputs, Order, EventTime, MarkerEvery and
// NoMarkers, so a resumed replay regenerates the same sequence.
//
// # Order and memory
//
// OrderEventTime (default) is producer/order's external merge sort by event time (ties: input
// position, then row); nothing is sent before every input has been read. OrderFile sends file
// after file in row order; by default every input is read completely once before the first
// send (SkipVerify turns that off).
//
// Memory bound, with P partitions (sizes from unsafe.Sizeof: an order.Row is 392 bytes, a
// queued entry 456):
//
//	sort:     SortRunRows × ~440 B (default 65536 rows ≈ 29 MB) + 64 KiB per spilled run in
//	          the final merge (at most order.Config.MaxMergeWidth per merge level)
//	read:     3 batches × 4096 rows × 392 B ≈ 5 MB (the read-ahead of the next batches)
//	pipeline: P × (QueueDepth + 2) chunks × ChunkRows × 456 B (defaults: 3 × 4 × 2048 ≈ 11 MB)
//	encoding: P × (one chunk's encoded records + MaxBatchBytes uncompressed + its compressed
//	          copy) (defaults ≈ 3 × 3 MB)
//
// so about 55 MB plus the Parquet reader's pages with the defaults, whatever the input size.
// Measured on 2M rows: 120 MB maximum RSS in event-time order, 90 MB in file order
// (docs/benchmarks.md). The sort's spill files grow
// with the input (about 120 bytes per row) and are removed at the end.
//
// # Writes
//
// Records are written through kafkaio.Producer: acks=all set explicitly (kafka-go's zero value
// of RequiredAcks is "none"), one record batch per produce request (at most MaxBatchBytes of
// records, compressed with Compression, zstd level 1 by default), and per partition one
// request in flight at a time: each partition has a sender goroutine that produces its chunks
// one after the other and waits for each acknowledgement.
//
// # Broker faults
//
// The producer is idempotent, as Kafka's own with enable.idempotence: it takes a producer id
// (InitProducerId) and gives each partition's batches consecutive sequence numbers. When a
// batch's outcome is unknown (the connection broke, the request timed out, the broker
// restarted, a node was lost) the sender resends that same batch, same producer id and
// sequence, with back-off until it is acknowledged or RetryTimeout has passed. The broker
// keeps the producer's last sequence numbers per partition in the log (so a new leader has
// them too): a batch it already appended is acknowledged with its first offset and not
// appended again, one it never got is appended. Nothing behind the batch is sent meanwhile, so
// the prefix property below holds throughout, and the replay goes on by itself. A cluster that
// refuses a producer id gets the older behaviour: any outcome-unknown failure stops the replay,
// and --resume continues it.
//
// # Resume: why there is no gap and no duplicate
//
// kafka-go v0.4.51 has no idempotent producer. What its Writer does, from its source
// (writer.go):
//   - per partition one goroutine (partitionWriter.writeBatches) takes batches from a FIFO
//     queue and writes each with a blocking produce request (writeBatch); so one batch per
//     partition is in flight, and batches are appended in queue order;
//   - writeBatch retries a failed batch up to MaxAttempts times (default 10) before the next
//     one, so retries do not reorder; but a retry after a lost response (timeout, connection
//     reset after the broker appended) appends the batch a second time: a duplicate;
//   - when a batch finally fails, writeBatches goes on with the next queued batch of the same
//     partition: a gap below later data.
//
// So this package does not use the Writer. kafkaio.Producer sends one record batch per request
// with kafka-go's Client.RawProduce (batches rendered by kafkaio itself), one request per
// partition at a time, and resends a batch only as it was (idempotent, see "Broker faults") or
// when the broker's error proves nothing was appended; a failure past RetryTimeout stops the
// replay without sending anything more to any partition. A record batch is appended atomically (entirely or not at all), also when
// the producer is SIGKILLed mid-request. Hence, at any moment and after any crash:
//
//	every partition holds exactly a prefix of the subsequence of the send order meant for it,
//	with no record twice,
//
// and because positions (ts-seq) increase along that subsequence, the prefix is identified by
// the ts-seq of the partition's last record. Resume reads the last record of every partition,
// regenerates the same sequence, and sends to partition p exactly the messages whose position
// is greater than p's last one: the union is every row once, and every (position, partition)
// marker once. Before sending anything it regenerates the sequence up to the highest last
// position and checks that each partition's last record is the message this replay has there
// (same key, or a marker); otherwise (other inputs or flags, another producer's data, records
// deleted by retention) it stops with ErrResumeMismatch and writes nothing.
//
// A duplicate marker, were it ever written (it is not), would be harmless anyway: the
// processor's watermark tracker never decreases, so a repeated identical marker changes
// nothing; the same holds for its final form.
//
// Limits of the argument: a partition whose leader dies after appending a batch that was not
// yet replicated to the other in-sync replicas can lose that batch (acks=all makes the
// producer stop instead of going on); resume then sends it again, which is what we want. With
// min.insync.replicas=1 and unclean leader election Kafka itself can lose acknowledged data;
// no producer can resume past that.
//
// # Interrupts
//
// When ctx ends (Ctrl-C), Run stops reading, hands what it has queued to the senders, waits
// for every acknowledgement (each request is bounded by WriteTimeout) and returns an error
// wrapping ErrInterrupted; the command exits with status 130. The topic then holds prefixes,
// so --resume continues.
package replay
