package cbr

import (
	"testing"
	"time"
)

// parseTimeBytes is a fast path of parseTime: whatever it accepts, parseTime
// accepts too, with the same instant and the same zone.
func FuzzParseTimeBytes(f *testing.F) {
	for _, s := range []string{
		"2022-01-30T09:28:09.334+00:00", "2022-01-30T09:28:09.334153", "2022-01-30 09:28:09", "2022-01-30T09:28:09Z",
		"2022-01-30T09:28:09+08:00", "2022-01-30T01:28:09-05:30", "2024-02-29T00:00:00", "2023-02-29T00:00:00",
		"2022-01-30T09:28:09.1234567891", "2022-01-30T24:00:00", "2022-01-30T09:28:09+24:00", "0000-01-01T00:00:00Z",
		"2022-01-30T09:28:09.Z", "2022-01-30T09:28:09+0800", "2022-01-30T09:28:09,5", "2022-1-30T09:28:09",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimeBytes([]byte(s))
		if !ok {
			return
		}
		want, err := parseTime(s)
		if err != nil {
			t.Fatalf("%q: parseTimeBytes gives %v, parseTime fails: %v", s, got, err)
		}
		gotName, gotOffset := got.Zone()
		wantName, wantOffset := want.Zone()
		if !got.Equal(want) || gotName != wantName || gotOffset != wantOffset || (got.Location() == time.UTC) != (want.Location() == time.UTC) {
			t.Fatalf("%q: parseTimeBytes gives %v (%v), parseTime %v (%v)", s, got, got.Location(), want, want.Location())
		}
	})
}

func TestParseTimeBytesTakesTheDocumentedForms(t *testing.T) {
	for _, s := range []string{"2022-01-30T09:28:09.334+00:00", "2022-01-30T09:28:09.334153", "2022-01-30T09:28:09Z",
		"2022-01-30 09:28:09", "2022-01-30T09:28:09+08:00"} {
		if _, ok := parseTimeBytes([]byte(s)); !ok {
			t.Errorf("%q is left to the slow path", s)
		}
	}
}

// Decoding an agent allocates nothing for its timestamps and one slice per
// path for exclude_paths.
func TestDecodeAllocations(t *testing.T) {
	var tm wireTime
	stamp := []byte(`"2022-01-30T09:28:09.334+00:00"`)
	if n := testing.AllocsPerRun(100, func() { _ = tm.UnmarshalJSON(stamp) }); n != 0 {
		t.Errorf("a timestamp: %v allocations, want 0", n)
	}
	var l excludeList
	data := []byte(`"*.txt, /opt/a,,/opt/b "`)
	if n := testing.AllocsPerRun(100, func() { _ = l.UnmarshalJSON(data) }); n != 2 {
		t.Errorf("exclude_paths: %v allocations, want 2 (the string, the slice)", n)
	}
	if len(l) != 3 || l[0] != "*.txt" || l[1] != "/opt/a" || l[2] != "/opt/b" {
		t.Errorf("exclude_paths = %q", l)
	}
}
