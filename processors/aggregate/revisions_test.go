package aggregate

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Allowed lateness: a closed window stays for revisions until the watermark passes
// its end + lateness; sums for it emit a revision with the merged sums; a borough
// new to the window starts at revision 1; after the lateness the window leaves and
// its sums are dropped. The state round-trips through its encoding at every step.
func TestStateRevisions(t *testing.T) {
	h13, h14, h15, h16 := wall(t, "2024-01-01 13:00:00"), wall(t, "2024-01-01 14:00:00"), wall(t, "2024-01-01 15:00:00"), wall(t, "2024-01-01 16:00:00")
	w13 := window.Window{StartMs: h13, EndMs: h14}
	one := Sums{Count: 1, PassengerSum: 1, PassengerCount: 1, FareCents: 100, TotalCents: 150}
	two := Sums{Count: 2, PassengerSum: 2, PassengerCount: 2, FareCents: 200, TotalCents: 300}
	lateness := h16 - h14 // 2 h

	var s State
	roundTrip := func(step string) {
		t.Helper()
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: decode: %v", step, err)
		}
		b2, _ := back.MarshalBinary()
		if string(b) != string(b2) {
			t.Fatalf("%s: encoding not stable", step)
		}
		s = back
	}
	s.Apply(Partial{Partition: 0, Watermark: h14, HasWatermark: true, Entries: []Entry{{w13, "Queens", one}}}, lateness)
	final := s.Close(h14, lateness)
	if diff := cmp.Diff([]Result{{Window: w13, Borough: "Queens", Sums: one}}, final); diff != "" {
		t.Fatalf("final (-want +got):\n%s", diff)
	}
	if s.Len() != 1 || len(s.OpenEntries()) != 0 {
		t.Fatalf("after close: %d cells, %d open; want the closed window kept", s.Len(), len(s.OpenEntries()))
	}
	roundTrip("kept")

	a := s.Apply(Partial{Partition: 0, Watermark: h15, HasWatermark: true, Entries: []Entry{{w13, "Queens", one}, {w13, "Bronx", two}}}, lateness)
	want := []Result{{Window: w13, Borough: "Bronx", Sums: two, Revision: 1}, {Window: w13, Borough: "Queens", Sums: two, Revision: 1}}
	if diff := cmp.Diff(want, a.Revised); diff != "" || a.RevisedRides != 3 || a.DroppedRides != 0 {
		t.Fatalf("revisions (-want +got):\n%s\nrevised rides %d dropped %d", diff, a.RevisedRides, a.DroppedRides)
	}
	if again := s.Close(h15, lateness); again != nil {
		t.Fatalf("Close emitted the closed window again: %v", again)
	}
	roundTrip("revised")
	a = s.Apply(Partial{Partition: 0, Entries: []Entry{{w13, "Queens", one}}}, lateness)
	if len(a.Revised) != 1 || a.Revised[0].Revision != 2 || a.Revised[0].Sums.Count != 3 {
		t.Fatalf("second revision %+v", a.Revised)
	}
	if a.Revised[0].Status() != "revised" || final[0].Status() != "final" {
		t.Errorf("status %q / %q", a.Revised[0].Status(), final[0].Status())
	}
	// The watermark reaches end + lateness: the window leaves; later sums are dropped.
	s.Close(h16, lateness)
	if s.Len() != 0 {
		t.Fatalf("%d cells after end + lateness", s.Len())
	}
	roundTrip("left")
	if a := s.Apply(Partial{Partition: 0, Entries: []Entry{{w13, "Queens", one}}}, lateness); a.DroppedRides != 1 || a.Revised != nil {
		t.Fatalf("sums after the lateness: %+v", a)
	}
}

// The encoding of kept windows is canonical: the flag is set exactly when a closed
// window is kept, and an open window has no revision.
func TestStateEncodingKeptFlag(t *testing.T) {
	h13, h14 := wall(t, "2024-01-01 13:00:00"), wall(t, "2024-01-01 14:00:00")
	w13 := window.Window{StartMs: h13, EndMs: h14}
	var s State
	s.Apply(Partial{Partition: 0, Watermark: h13, HasWatermark: true, Entries: []Entry{{w13, "Queens", Sums{Count: 1}}}}, 0)
	open, _ := s.MarshalBinary()
	if open[2]&flagKept != 0 {
		t.Fatal("flag of kept windows set with none kept")
	}
	// Setting the flag by hand (and the CRC) must be refused: no kept window.
	forged := append([]byte(nil), open[:len(open)-4]...)
	forged[2] |= flagKept
	forged = append(forged, 0) // a revision for the one cell
	forged = withCRC(forged)
	var back State
	if err := back.UnmarshalBinary(forged); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("forged flag: err %v, want ErrCorrupt", err)
	}
}

// Results written before revisions existed (no "revision") read as revision 0.
func TestResultJSONRevision(t *testing.T) {
	r := Result{Window: window.Window{StartMs: 0, EndMs: 3_600_000}, Borough: "Queens", Sums: Sums{Count: 1}, Revision: 3}
	var back Result
	if err := back.UnmarshalJSON(r.AppendJSON(nil)); err != nil || back != r {
		t.Fatalf("round trip %+v, %v; want %+v", back, err, r)
	}
	old := []byte(`{"window":{"start_ms":0,"end_ms":3600000},"borough":"Queens","sums":{"count":1}}`)
	if err := back.UnmarshalJSON(old); err != nil || back.Revision != 0 {
		t.Fatalf("old result: %+v, %v", back, err)
	}
	if err := back.UnmarshalJSON([]byte(`{"window":{"start_ms":0,"end_ms":1},"borough":"Q","sums":{},"revision":-1}`)); err == nil {
		t.Fatal("negative revision accepted")
	}
}
