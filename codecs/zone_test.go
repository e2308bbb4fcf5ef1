package codecs_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/producer/tlc/tlctest"
)

func TestParseZoneCSVRealFiles(t *testing.T) {
	for _, tc := range []struct {
		file  string
		last2 [2]codecs.Zone
	}{
		{"taxi_zone_lookup.csv", [2]codecs.Zone{
			{LocationID: 264, Borough: "Unknown", Zone: "N/A", ServiceZone: "N/A"},
			{LocationID: 265, Borough: "N/A", Zone: "Outside of NYC", ServiceZone: "N/A"}}},
		{"taxi_zone_lookup_legacy.csv", [2]codecs.Zone{
			{LocationID: 264, Borough: "Unknown", Zone: "NV", ServiceZone: "N/A"},
			{LocationID: 265, Borough: "Unknown", Zone: "NA", ServiceZone: "N/A"}}},
	} {
		f, err := os.Open(tlctest.Path(t, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		zones, err := codecs.ParseZoneCSV(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if len(zones) != 265 {
			t.Fatalf("%s: %d zones, want 265", tc.file, len(zones))
		}
		boroughs := map[string]int{}
		services := map[string]int{}
		for i, z := range zones[:263] {
			if z.LocationID != i+1 {
				t.Fatalf("%s: zone %d has LocationID %d", tc.file, i, z.LocationID)
			}
			boroughs[z.Borough]++
			services[z.ServiceZone]++
		}
		// SOURCES.md: EWR 1, Queens 69, Bronx 43, Manhattan 69, Staten Island 20, Brooklyn 61 (+264, 265).
		wantB := map[string]int{"EWR": 1, "Queens": 69, "Bronx": 43, "Manhattan": 69, "Staten Island": 20, "Brooklyn": 61}
		if diff := cmp.Diff(wantB, boroughs); diff != "" {
			t.Errorf("%s: boroughs of 1..263 (-want +got):\n%s", tc.file, diff)
		}
		services[zones[263].ServiceZone]++
		services[zones[264].ServiceZone]++
		wantS := map[string]int{"EWR": 1, "Boro Zone": 205, "Yellow Zone": 55, "Airports": 2, "N/A": 2}
		if diff := cmp.Diff(wantS, services); diff != "" {
			t.Errorf("%s: service zones (-want +got):\n%s", tc.file, diff)
		}
		if diff := cmp.Diff(tc.last2, [2]codecs.Zone(zones[263:])); diff != "" {
			t.Errorf("%s: zones 264, 265 (-want +got):\n%s", tc.file, diff)
		}
		if zones[131] != (codecs.Zone{LocationID: 132, Borough: "Queens", Zone: "JFK Airport", ServiceZone: "Airports"}) {
			t.Errorf("%s: zone 132 = %+v", tc.file, zones[131])
		}
	}
}

func TestParseZoneCSVVariants(t *testing.T) {
	want := []codecs.Zone{{1, "EWR", "Newark Airport", "EWR"}, {2, "Queens", "Jamaica Bay", "Boro Zone"},
		{7, "Queens", `Astoria, "the" place`, "Boro Zone"}}
	for name, in := range map[string]string{
		"quoted CRLF": "\"LocationID\",\"Borough\",\"Zone\",\"service_zone\"\r\n1,\"EWR\",\"Newark Airport\",\"EWR\"\r\n" +
			"2,\"Queens\",\"Jamaica Bay\",\"Boro Zone\"\r\n7,\"Queens\",\"Astoria, \"\"the\"\" place\",\"Boro Zone\"\r\n",
		"unquoted LF no final newline": "LocationID,Borough,Zone,service_zone\n1,EWR,Newark Airport,EWR\n" +
			"2,Queens,Jamaica Bay,Boro Zone\n7,Queens,\"Astoria, \"\"the\"\" place\",Boro Zone",
		"BOM": "\ufeffLocationID,Borough,Zone,service_zone\n1,EWR,Newark Airport,EWR\n2,Queens,Jamaica Bay,Boro Zone\n" +
			"7,Queens,\"Astoria, \"\"the\"\" place\",Boro Zone\n",
	} {
		got, err := codecs.ParseZoneCSV(strings.NewReader(in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestParseZoneCSVErrors(t *testing.T) {
	const h = "\"LocationID\",\"Borough\",\"Zone\",\"service_zone\"\r\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty input"},
		{"header only", h, "no zones"},
		{"bad header", "\"LocationID\",\"Borough\",\"Zone\",\"ServiceZone\"\r\n1,a,b,c\r\n", "line 1: bad header"},
		{"short header", "LocationID,Borough,Zone\r\n", "line 1: bad header"},
		{"duplicate", h + "1,a,b,c\r\n2,a,b,c\r\n1,x,y,z\r\n", "line 4: duplicate LocationID 1 (first on line 2)"},
		{"zero", h + "1,a,b,c\r\n0,a,b,c\r\n", "line 3: LocationID 0 out of range"},
		{"negative", h + "-5,a,b,c\r\n", "line 2: LocationID -5 out of range"},
		{"too big", h + "65536,a,b,c\r\n", "line 2: LocationID 65536 out of range, want 1..65535"},
		{"not a number", h + "x1,a,b,c\r\n", `line 2: LocationID "x1" is not an integer`},
		{"too few fields", h + "1,a,b,c\r\n2,a,b\r\n", "line 3: 3 fields, want 4"},
		{"too many fields", h + "1,a,b,c,d\r\n", "line 2: 5 fields, want 4"},
		{"bad quote", h + "1,\"a,b,c\r\n", "line 2"},
	} {
		_, err := codecs.ParseZoneCSV(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestZoneJSON(t *testing.T) {
	z := codecs.Zone{LocationID: 132, Borough: "Queens", Zone: "JFK Airport", ServiceZone: "Airports"}
	const want = `{"LocationID":132,"Borough":"Queens","Zone":"JFK Airport","service_zone":"Airports"}`
	got := codecs.AppendZoneJSON(nil, z)
	if string(got) != want {
		t.Fatalf("AppendZoneJSON = %s; want %s", got, want)
	}
	// encoding/json writes the same bytes for zones.
	if js, err := json.Marshal(z); err != nil || string(js) != want {
		t.Fatalf("json.Marshal = %s, %v", js, err)
	}
	back, err := codecs.DecodeZone(got)
	if err != nil || back != z {
		t.Fatalf("Decode = %+v, %v", back, err)
	}
	if codecs.ZoneKey(132) != "132" {
		t.Fatalf("ZoneKey(132) = %q", codecs.ZoneKey(132))
	}
	odd := codecs.Zone{LocationID: 7, Borough: "Q\"u\\e", Zone: "é\n", ServiceZone: ""}
	b := codecs.AppendZoneJSON(nil, odd)
	if back, err := codecs.DecodeZone(b); err != nil || back != odd {
		t.Fatalf("round trip of %+v via %s: %+v, %v", odd, b, back, err)
	}
	for _, bad := range []string{``, `{}`, `{"LocationID":0,"Borough":"x"}`, `{"LocationID":1,"Extra":1}`,
		`{"LocationID":"1"}`, `{"LocationID":1} {}`, `[1]`, `{"LocationID":65536}`} {
		if _, err := codecs.DecodeZone([]byte(bad)); err == nil {
			t.Errorf("DecodeZone(%s) succeeded", bad)
		}
	}
}

func TestRealZonesJSONRoundTrip(t *testing.T) {
	data, err := os.ReadFile(tlctest.Path(t, "taxi_zone_lookup.csv"))
	if err != nil {
		t.Fatal(err)
	}
	zones, err := codecs.ParseZoneCSV(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range zones {
		v, err := codecs.DecodeZone(codecs.AppendZoneJSON(nil, z))
		if err != nil || v != z {
			t.Fatalf("%+v: round trip gave %+v, %v", z, v, err)
		}
	}
}
