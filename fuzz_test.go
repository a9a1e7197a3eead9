package vda

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzLayout(f *testing.F) {
	f.Add(uint64(32<<20), uint64(32<<20), 2, 64)
	f.Add(uint64(64<<20), uint64(0), 2, 64)
	f.Add(uint64(8192), uint64(1<<40), 32, 4)
	f.Add(uint64(1<<50), uint64(1<<50), 1, 1024)
	f.Fuzz(func(t *testing.T, size, physical uint64, stripes, stripKB int) {
		l, err := Layout(size, physical, stripes, stripKB)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if physical == 0 {
			physical = size
		}
		switch {
		case size%l.ClusterBytes != 0 || l.ClusterBytes > MaxDAClusterBytes || l.ClusterBytes < MinDAClusterBytes:
			t.Fatalf("cluster %d for size %d", l.ClusterBytes, size)
		case l.VDSizeBytes%PDClusterBytes != 0 || l.VDSizeBytes%(uint64(stripKB)*1024) != 0:
			t.Fatalf("vd size %d", l.VDSizeBytes)
		case LvstoreDataBytes(l.RaidBytes, l.ClusterBytes) < physical:
			t.Fatalf("raid %d cannot hold %d", l.RaidBytes, physical)
		case l.RaidBytes > uint64(stripes)*l.VDSizeBytes:
			t.Fatalf("raid %d larger than its members", l.RaidBytes)
		}
	})
}

func FuzzParsePDConf(f *testing.F) {
	for _, s := range []string{`{"type":"malloc","size":134217728}`, `{"type":"aio","filename":"/dev/sdb"}`,
		`{"type":"nvme","traddr":"0000:01:00.0"}`, `{"type":"malloc","size":1e9}`, `{}`, `null`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParsePDConf(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ParsePDConf(string(b)); err != nil || again != c {
			t.Fatalf("%s does not round-trip: %+v %v", b, again, err)
		}
		if c.Type == PDMalloc && LvstoreDataBytes(c.SizeBytes, PDClusterBytes) == 0 {
			t.Fatalf("accepted a malloc PD without room: %d", c.SizeBytes)
		}
	})
}

func FuzzParseDAConf(f *testing.F) {
	for _, s := range []string{`{"stripe_count":2, "stripe_size_kb":64}`, `{"stripe_count":-1,"stripe_size_kb":64}`,
		`{"stripe_count":2}`, `{"stripe_count":1e3,"stripe_size_kb":4}`, `{"stripe_count":2,"stripe_size_kb":64} x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseDAConf(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, err := Layout(32<<20, 0, c.StripeCount, c.StripeSizeKB); err != nil {
			t.Fatalf("accepted %+v but Layout refuses it: %v", c, err)
		}
	})
}

func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"", "rack 1", "a\x00b", "\xff", "ünïcode"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateDescription(s)
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && len(s) > MaxDescriptionBytes {
			t.Fatalf("accepted %d bytes", len(s))
		}
		if _, err := ParseInitiatorNQN(s); err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("unexpected error %v", err)
		}
		if _, err := ParseListenerConf(s); err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
