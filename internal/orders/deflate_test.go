package orders

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// roundTrip decompresses docStaticV1 bits with compress/flate (the header
// put back) and with inflateStatic, and checks they agree.
func roundTrip(t testing.TB, z []byte) []byte {
	t.Helper()
	sc, err := staticCodeV1()
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(withHeader(nil, string(z), sc)), []byte(dictV1)))
	if err != nil {
		t.Fatalf("compress/flate: %v", err)
	}
	ours, err := inflateStatic(nil, string(z), sc)
	if err == nil {
		ours = ours[len(dictV1):]
	}
	if err != nil || !bytes.Equal(ours, out) {
		t.Fatalf("inflateStatic: %v, %d bytes; compress/flate read %d", err, len(ours), len(out))
	}
	return out
}

// Whatever the input, compress/flate's reader gives it back from the
// encoder's bits: short and empty inputs, long runs (matches of 258 at
// distance 1), every byte value, the dictionary itself, and inputs longer
// than DEFLATE's 32 kB window, where the dictionary is out of reach.
func TestEncodeStaticRoundTrip(t *testing.T) {
	sc, err := staticCodeV1()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int, alphabet string) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	var every []byte
	for i := range 256 {
		every = append(every, byte(i))
	}
	var binary []byte
	for range 5000 {
		binary = append(binary, byte(rng.Uint32()))
	}
	inputs := map[string][]byte{
		"empty":         nil,
		"one byte":      []byte("{"),
		"two bytes":     []byte("{}"),
		"run":           bytes.Repeat([]byte("a"), 1000),
		"every byte":    bytes.Repeat(every, 3),
		"binary":        binary,
		"dictionary":    []byte(dictV1 + dictV1),
		"in flight":     []byte(benchInFlight),
		"ended":         []byte(benchEnded),
		"past window":   append(random(40000, "abc{}\":,0123456789"), dictV1...),
		"long records":  []byte(strings.Repeat(benchEnded, 30)),
		"digits":        random(3000, "0123456789"),
		"utf-8":         []byte(strings.Repeat("浙江省杭州市西湖区文三路 ", 50)),
		"match at end":  []byte(benchInFlight + benchInFlight[:200]),
		"258 and more":  bytes.Repeat([]byte("0123456789"), 60),
		"dict then run": []byte(dictV1[len(dictV1)-300:] + strings.Repeat("x", 259)),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			z := encodeStatic(nil, in, sc, nil)
			if got := roundTrip(t, z); !bytes.Equal(got, in) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(in))
			}
			t.Logf("%d bytes in %d", len(in), len(z))
		})
	}
	// Appends to what dst holds.
	z := encodeStatic([]byte("7:\x02"), []byte(benchEnded), sc, nil)
	if !bytes.HasPrefix(z, []byte("7:\x02")) || !bytes.Equal(roundTrip(t, z[3:]), []byte(benchEnded)) {
		t.Fatal("encodeStatic did not append to dst")
	}
}

func FuzzEncodeStatic(f *testing.F) {
	f.Add([]byte(benchInFlight))
	f.Add([]byte(""))
	f.Add(bytes.Repeat([]byte("ab"), 300))
	f.Fuzz(func(t *testing.T, in []byte) {
		sc, err := staticCodeV1()
		if err != nil {
			t.Fatal(err)
		}
		if got := roundTrip(t, encodeStatic(nil, in, sc, nil)); !bytes.Equal(got, in) {
			t.Fatalf("read back %q, want %q", got, in)
		}
	})
}

// The length and distance codes are DEFLATE's (RFC 1951, 3.2.5).
func TestLengthAndDistanceCodes(t *testing.T) {
	for l := minMatch; l <= maxMatch; l++ {
		c := lengthCode[l-minMatch]
		if l == maxMatch && c != 28 || l < int(lengthBase[c]) || l >= int(lengthBase[c])+1<<lengthExtra[c] && c != 28 {
			t.Fatalf("length %d: code %d", l, c)
		}
	}
	for d := 1; d <= maxDistance; d++ {
		c := distCode(d)
		if d < int(distBase[c]) || d >= int(distBase[c])+1<<distExtra[c] {
			t.Fatalf("distance %d: code %d", d, c)
		}
	}
}

// A code of lengths that are not a complete prefix code is refused.
func TestStaticCodeOfBadLengths(t *testing.T) {
	for name, l := range map[string]string{
		"too few":       "8",
		"incomplete":    strings.Repeat("9", 316),
		"over-complete": strings.Repeat("1", 316),
		"not hex":       strings.Repeat("z", 316),
	} {
		if _, err := newStaticCode(l); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Whatever the bits, inflateStatic reads what compress/flate reads (the
// header put back), or fails where it fails, never panics.
func FuzzInflateStatic(f *testing.F) {
	sc, err := staticCodeV1()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodeStatic(nil, []byte(benchEnded), sc, nil))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, z []byte) {
		want, werr := io.ReadAll(flate.NewReaderDict(bytes.NewReader(withHeader(nil, string(z), sc)), []byte(dictV1)))
		got, err := inflateStatic(nil, string(z), sc)
		if err == nil {
			got = got[len(dictV1):]
		}
		if (err == nil) != (werr == nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("inflateStatic: %v, %q; compress/flate: %v, %q", err, got, werr, want)
		}
	})
}
