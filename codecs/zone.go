package codecs

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Zone is one row of TLC's taxi zone lookup table.
type Zone struct {
	LocationID  int    `json:"LocationID"`
	Borough     string `json:"Borough"`
	Zone        string `json:"Zone"`
	ServiceZone string `json:"service_zone"`
}

// zoneHeader is the exact header of both TLC zone lookup files (after CSV unquoting).
var zoneHeader = [4]string{"LocationID", "Borough", "Zone", "service_zone"}

// ParseZoneCSV reads a TLC zone lookup CSV (taxi_zone_lookup.csv or the legacy
// taxi+_zone_lookup.csv): the exact header LocationID,Borough,Zone,service_zone (quoted or not),
// CRLF or LF line ends, quoted fields, a UTF-8 byte order mark tolerated. Every data row needs
// 4 fields and a decimal LocationID in 1..MaxLocationID (the range DecodeRideFacts accepts) that
// no earlier row had. Errors name the line. Zones
// are returned in file order; an input without data rows is an error.
func ParseZoneCSV(r io.Reader) ([]Zone, error) {
	cr := csv.NewReader(&bomSkipper{r: r})
	cr.FieldsPerRecord = -1 // field count is checked below with a better message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("zone csv: empty input, want header LocationID,Borough,Zone,service_zone")
	}
	if err != nil {
		return nil, fmt.Errorf("zone csv: %w", err)
	}
	if len(header) != len(zoneHeader) || [4]string(header) != zoneHeader {
		return nil, fmt.Errorf("zone csv: line 1: bad header %q, want %q", header, zoneHeader[:])
	}
	var zones []Zone
	seen := make(map[int]int) // LocationID -> line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("zone csv: %w", err) // csv.ParseError names the line
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 4 {
			return nil, fmt.Errorf("zone csv: line %d: %d fields, want 4", line, len(rec))
		}
		id, err := strconv.Atoi(rec[0])
		if err != nil {
			return nil, fmt.Errorf("zone csv: line %d: LocationID %q is not an integer", line, rec[0])
		}
		if id <= 0 || int64(id) > MaxLocationID {
			return nil, fmt.Errorf("zone csv: line %d: LocationID %d out of range, want 1..%d", line, id, MaxLocationID)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("zone csv: line %d: duplicate LocationID %d (first on line %d)", line, id, prev)
		}
		seen[id] = line
		zones = append(zones, Zone{LocationID: id, Borough: rec[1], Zone: rec[2], ServiceZone: rec[3]})
	}
	if len(zones) == 0 {
		return nil, errors.New("zone csv: no zones after the header")
	}
	return zones, nil
}

// bomSkipper drops a leading UTF-8 byte order mark.
type bomSkipper struct {
	r    io.Reader
	done bool
	buf  []byte
}

func (b *bomSkipper) Read(p []byte) (int, error) {
	if !b.done {
		b.done = true
		head := make([]byte, 3)
		n, err := io.ReadFull(b.r, head)
		head = head[:n]
		if !bytes.Equal(head, []byte("\xef\xbb\xbf")) {
			b.buf = head
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	if len(b.buf) > 0 {
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		return n, nil
	}
	return b.r.Read(p)
}

// ZoneKey is the taxi-zones topic key of a zone: its LocationID in decimal ("132").
func ZoneKey(locationID int) string { return strconv.Itoa(locationID) }

// AppendZoneJSON appends the zone's JSON value (docs/design.md, taxi-zones topic):
// {"LocationID":132,"Borough":"Queens","Zone":"JFK Airport","service_zone":"Airports"}.
func AppendZoneJSON(dst []byte, z Zone) []byte {
	dst = append(dst, `{"LocationID":`...)
	dst = strconv.AppendInt(dst, int64(z.LocationID), 10)
	dst = append(dst, `,"Borough":`...)
	dst = appendJSONString(dst, z.Borough)
	dst = append(dst, `,"Zone":`...)
	dst = appendJSONString(dst, z.Zone)
	dst = append(dst, `,"service_zone":`...)
	dst = appendJSONString(dst, z.ServiceZone)
	return append(dst, '}')
}

// DecodeZone parses a zone JSON value strictly: unknown fields are an error and LocationID must
// be in 1..MaxLocationID.
func DecodeZone(data []byte) (Zone, error) {
	var z Zone
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&z); err != nil {
		return Zone{}, fmt.Errorf("zone json: %w", err)
	}
	if dec.More() {
		return Zone{}, errors.New("zone json: trailing data after the object")
	}
	if z.LocationID <= 0 || int64(z.LocationID) > MaxLocationID {
		return Zone{}, fmt.Errorf("zone json: LocationID %d out of range, want 1..%d", z.LocationID, MaxLocationID)
	}
	return z, nil
}
