package replaytest

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/taxi-stream/taxi-stream/integration/hdfstest"
	"github.com/taxi-stream/taxi-stream/integration/kafkatest"
	"github.com/taxi-stream/taxi-stream/integration/krb5test"
	"github.com/taxi-stream/taxi-stream/producer/replay"
	"github.com/taxi-stream/taxi-stream/producer/replay/source"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

// hdfsRealm is the realm of the Kerberized HDFS tests.
const hdfsRealm = "REPLAY.HDFS.TEST"

// TestReplayHDFSKerberos replays two real files from a Kerberized HDFS (a real MIT KDC;
// NameNode and DataNode with Kerberos RPC, block access tokens, SASL data transfer at the
// "privacy" level with AES, HTTPS only) into the test broker, logged in as taxi@REALM with a
// keytab: first through replay.Run, then with the taxi-replay binary and its flags
// (--hadoop-conf-dir, --hdfs-principal, --hdfs-keytab, --kerberos-config). The data transfer
// protection comes from the cluster's hdfs-site.xml, as in production.
func TestReplayHDFSKerberos(t *testing.T) {
	brokers := kafka.Brokers(t) // skips under -short before starting anything
	began := time.Now()
	// Only --hadoop-conf-dir / HDFSConfig.ConfDir counts.
	t.Setenv("HADOOP_CONF_DIR", "")
	t.Setenv("HADOOP_HOME", "")
	kdc := krb5test.Start(t, hdfsRealm) // skips when krb5-kdc is not installed
	kdc.AddService(t, "taxi")           // a user with a random key, for a keytab
	login := source.Kerberos{Principal: "taxi@" + hdfsRealm, Keytab: kdc.Keytab(t, "taxi"), Config: kdc.Config}
	c := hdfstest.StartTest(t, hdfstest.Options{
		Kerberos: hdfstest.KerberosFromKDC(t, kdc, hdfstest.ProtectionPrivacy),
	})
	t.Logf("KDC and Kerberized HDFS (%s) ready in %v", c.DataTransferProtection(), time.Since(began).Round(time.Millisecond))

	local := []string{tlctest.Path(t, "green_tripdata_2025-01.parquet"), tlctest.Path(t, "green_tripdata_2024-01.parquet")}
	remote := []string{"/taxi/a/green_tripdata_2025-01.parquet", "/taxi/b/green_tripdata_2024-01.parquet"}
	for i := range local {
		// Written by the superuser (nn) with mode 0644: readable by taxi.
		if err := c.CopyFromLocal(t.Context(), local[i], remote[i]); err != nil {
			t.Fatal(err)
		}
	}
	inputs := []string{c.URL(remote[0]), "hdfs:///taxi/b/*.parquet"}

	t.Run("Run", func(t *testing.T) {
		runBegan := time.Now()
		topic := kafkatest.UniqueName(t, "rides")
		t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), brokers, []string{topic}, 0) })
		sum, err := replay.Run(t.Context(), replay.Config{
			Inputs:  inputs,
			HDFS:    source.HDFSConfig{ConfDir: c.ConfDir(), Kerberos: login},
			Brokers: brokers, Topic: topic, Logger: replayLogger(t), LogEvery: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Inputs != 2 || sum.Rows != 48326+56551 {
			t.Errorf("summary %+v", sum)
		}
		checkReplayTopic(t, topic, replayCheck{files: local, markers: true, every: 1000, partitions: 3})
		t.Logf("replay.Run of %d rows from Kerberized HDFS: %v", sum.Rows, time.Since(runBegan).Round(time.Millisecond))
	})

	t.Run("Binary", func(t *testing.T) {
		bin := buildReplayBinary(t)
		binBegan := time.Now()
		topic := kafkatest.UniqueName(t, "rides")
		t.Cleanup(func() { _, _ = replay.Cleanup(context.Background(), brokers, []string{topic}, 0) })
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		args := append([]string{"--brokers", strings.Join(brokers, ","), "--topic", topic, "--progress", "none",
			"--hadoop-conf-dir", c.ConfDir(),
			"--hdfs-principal", login.Principal, "--hdfs-keytab", login.Keytab,
			"--kerberos-config", login.Config}, inputs...)
		cmd := exec.CommandContext(ctx, bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("taxi-replay %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		checkReplayTopic(t, topic, replayCheck{files: local, markers: true, every: 1000, partitions: 3})
		t.Logf("taxi-replay binary from Kerberized HDFS: %v", time.Since(binBegan).Round(time.Millisecond))
	})
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}
