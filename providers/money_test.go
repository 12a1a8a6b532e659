package providers

import (
	"strings"
	"testing"
)

func TestParseYuan(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"2.48", 248, false}, {"10", 1000, false}, {"0.5", 50, false}, {"0.05", 5, false},
		{"0", 0, false}, {"-1.20", -120, false}, {"123456789012345.99", 12345678901234599, false},
		{"", 0, true}, {".5", 0, true}, {"1.", 0, true}, {"1.234", 0, true}, {"1,5", 0, true},
		{"+1", 0, true}, {"1e3", 0, true}, {" 1", 0, true}, {"--1", 0, true}, {"NaN", 0, true},
		{"1234567890123456", 0, true}, {"0x10", 0, true}, {"1.-5", 0, true},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseYuan(c.in)
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("ParseYuan(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.err)
			}
			if err != nil && !strings.Contains(err.Error(), c.in) {
				t.Fatalf("error %q does not name the input", err)
			}
		})
	}
}

func TestFormatYuan(t *testing.T) {
	for in, want := range map[int64]string{0: "0.00", 5: "0.05", 248: "2.48", -120: "-1.20", 100000: "1000.00"} {
		if got := FormatYuan(in); got != want {
			t.Errorf("FormatYuan(%d) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseYuan: never panics, and what parses formats back to the same
// amount.
func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"2.48", "10", "-0.5", "", "1.", "999999999999999.99", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := ParseYuan(s)
		if err != nil {
			return
		}
		back, err := ParseYuan(FormatYuan(fen))
		if err != nil || back != fen {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, fen, FormatYuan(fen), back, err)
		}
	})
}
