package synth

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins the generated content: the SHA-256 of two small files and the first rows in
// readable form. A change here means the same Config now gives another file; if that is
// intended, bump CreatedBy's version and run `go test ./producer/synth -run Golden -update`.
func TestGolden(t *testing.T) {
	var b strings.Builder
	for _, order := range []Order{OrderSorted, OrderTLC} {
		cfg := DefaultConfig(10_000)
		cfg.Order = order
		cfg.OutlierRate = 1e-3
		data, _ := writeToBuffer(t, cfg)
		fmt.Fprintf(&b, "%s 10000 rows sha256 %x\n", order, sha256.Sum256(data))
		for i, r := range mustRides(t, cfg)[:3] {
			fmt.Fprintf(&b, "  row %d: %+v\n", i, r)
		}
	}
	path := filepath.Join("testdata", "golden.txt")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("generated content changed; bump CreatedBy and run with -update if intended.\ngot:\n%s\nwant:\n%s", got, want)
	}
}
