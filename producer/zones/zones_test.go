package zones

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

func TestLoadRealFiles(t *testing.T) {
	for _, name := range []string{"taxi_zone_lookup.csv", "taxi_zone_lookup_legacy.csv"} {
		t.Run(name, func(t *testing.T) {
			zs, err := Load(t.Context(), Config{File: tlctest.Path(t, name)})
			if err != nil {
				t.Fatal(err)
			}
			if len(zs) != 265 {
				t.Fatalf("%d zones, want 265", len(zs))
			}
			for i, z := range zs {
				if z.LocationID != i+1 {
					t.Fatalf("zone %d has LocationID %d", i, z.LocationID)
				}
			}
			if z := zs[131]; z.Borough != "Queens" || z.Zone != "JFK Airport" || z.ServiceZone != "Airports" {
				t.Errorf("zone 132 = %+v", z)
			}
		})
	}
}

func TestLoadURL(t *testing.T) {
	data, err := os.ReadFile(tlctest.Path(t, "taxi_zone_lookup.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/taxi_zone_lookup.csv":
			w.Write(data)
		case "/bad.csv":
			w.Write([]byte("id,borough\r\n1,Queens\r\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	zs, err := Load(t.Context(), Config{File: srv.URL + "/taxi_zone_lookup.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if len(zs) != 265 || zs[264].Zone != "Outside of NYC" {
		t.Errorf("%d zones, last %+v", len(zs), zs[len(zs)-1])
	}
	if _, err := Load(t.Context(), Config{File: srv.URL + "/missing.csv"}); err == nil || !strings.Contains(err.Error(), "404") ||
		!strings.Contains(err.Error(), "/missing.csv") {
		t.Errorf("404: got %v", err)
	}
	if _, err := Load(t.Context(), Config{File: srv.URL + "/bad.csv"}); err == nil || !strings.Contains(err.Error(), "bad header") {
		t.Errorf("bad header over http: got %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	header := "\"LocationID\",\"Borough\",\"Zone\",\"service_zone\"\r\n"
	for _, tc := range []struct {
		name, content, substr string
	}{
		{"header.csv", "LocationID,Borough,Zone\r\n1,EWR,Newark,EWR\r\n", "bad header"},
		{"dup.csv", header + "1,\"EWR\",\"Newark Airport\",\"EWR\"\r\n1,\"Queens\",\"Jamaica Bay\",\"Boro Zone\"\r\n", "duplicate LocationID 1"},
		{"zero.csv", header + "0,\"EWR\",\"Newark Airport\",\"EWR\"\r\n", "LocationID 0 out of range"},
		{"big.csv", header + "1,\"EWR\",\"Newark Airport\",\"EWR\"\r\n1001,\"Queens\",\"Far\",\"Boro Zone\"\r\n", "LocationID 1001, \"Far\"): LocationID out of range, want 1..1000"},
		{"text.csv", header + "x,\"EWR\",\"Newark Airport\",\"EWR\"\r\n", "not an integer"},
		{"empty.csv", "", "empty input"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(t.Context(), Config{File: path})
		if err == nil || !strings.Contains(err.Error(), tc.substr) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: got %v, want an error naming the file and mentioning %q", tc.name, err, tc.substr)
		}
	}
	if _, err := Load(t.Context(), Config{File: filepath.Join(dir, "absent.csv")}); err == nil || !strings.Contains(err.Error(), "absent.csv") {
		t.Errorf("absent file: got %v", err)
	}
	// A lower bound applies too.
	path := filepath.Join(dir, "ok.csv")
	os.WriteFile(path, []byte(header+"300,\"Queens\",\"X\",\"Boro Zone\"\r\n"), 0o644)
	if _, err := Load(t.Context(), Config{File: path, MaxLocationID: 265}); err == nil || !strings.Contains(err.Error(), "want 1..265") {
		t.Errorf("max location id 265: got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{File: "z.csv", Brokers: []string{"b:1"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		change func(*Config)
		substr string
	}{
		{func(c *Config) { c.File = "" }, "file"},
		{func(c *Config) { c.Brokers = nil }, "brokers"},
		{func(c *Config) { c.Partitions = -1 }, "partitions -1"},
		{func(c *Config) { c.Replication = -3 }, "replication -3"},
		{func(c *Config) { c.MaxLocationID = -1 }, "max location id"},
	} {
		c := ok
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("got %v, want an error mentioning %q", err, tc.substr)
		}
	}
}
