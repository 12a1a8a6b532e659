package orders

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderflow/providers"
)

var genStatic = flag.String("gen-static", "", "make staticLengthsV1 from the records (one JSON a line) of the files matching this glob, and print it")

// TestGenerateStaticLengths made staticLengthsV1, once, from the JSON of
// 4,000 records of one `go run ./cmd/bench -only memory` run (2,000 in
// flight, 2,000 ended: its hash-max-listpack-value 4096 half, dumped with
// HGET … doc before the compact form existed), a tenth of them given a
// Chinese address and name and a seventh a failure, a parking or a
// person's decision, so that such text and entries are coded well too. It
// compresses each as encodeRecord does, counts the symbols written, gives
// every symbol one more (so that anything can be coded) and builds a
// Huffman code of at most 15 bits; four rounds, each compressing with the
// code of the one before. NEVER replace staticLengthsV1 once deployed: a
// new code is a new form with its own marker.
//
//	go test ./internal/orders -run TestGenerateStaticLengths -gen-static='/tmp/records_*4096.txt' -v
func TestGenerateStaticLengths(t *testing.T) {
	if *genStatic == "" {
		t.Skip("-gen-static not set")
	}
	files, err := filepath.Glob(*genStatic)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files %q: %v", *genStatic, err)
	}
	e := encoders.Get().(*encoder)
	var docs [][]byte
	n := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(f)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			if !strings.HasPrefix(s.Text(), "{") {
				continue
			}
			r, err := decodeRecord(Key{}, s.Text())
			if err != nil {
				t.Fatal(err)
			}
			n++
			vary(r, n)
			js, err := e.marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, append([]byte(nil), js...))
		}
		_ = f.Close()
	}
	// Round 0 parses with a code of all symbols alike.
	var c symbolCounts
	lengths := ""
	for round := range 4 {
		var lit [286]uint8
		var dist [30]uint8
		lf, df := make([]int, 286), make([]int, 30)
		for i := range lf {
			lf[i] = 1 + c.lit[i]
		}
		for i := range df {
			df[i] = 1 + c.dist[i]
		}
		huffmanLengths(lf, lit[:], 15)
		huffmanLengths(df, dist[:], 15)
		var b strings.Builder
		for _, l := range append(lit[:], dist[:]...) {
			fmt.Fprintf(&b, "%x", l)
		}
		lengths = b.String()
		sc, err := newStaticCode(lengths)
		if err != nil {
			t.Fatal(err)
		}
		c = symbolCounts{}
		total := 0
		for _, d := range docs {
			total += len(encodeStatic(nil, d, sc, &c))
		}
		t.Logf("round %d: %d records, %.1f bytes each (header %d bits, not stored)", round, len(docs), float64(total)/float64(len(docs)), sc.headerBits)
	}
	fmt.Printf("const staticLengthsV1 = %q\n", lengths)
}

// vary gives some records of the corpus a Chinese address, or an entry of
// a kind the bench's orders do not have.
func vary(r *Record, n int) {
	at := r.UpdatedAt.Add(time.Second)
	if n%10 == 0 {
		a := &r.Request.Address
		a.FullName, a.Province, a.City, a.District, a.Town = "李雷", "浙江省", "杭州市", "西湖区", "文新街道"
		a.Address = fmt.Sprintf("文三路%d号%d幢%d室", n%300, n%17, 100+n%900)
	}
	switch n % 21 {
	case 3:
		r.Fail("RETRIES_EXHAUSTED", "provider answered HTTP 503 Service Unavailable", at)
	case 10:
		r.Park("PRICE_GUARD", at)
		r.Error = &ErrorInfo{Code: "PRICE_GUARD", Message: "total above maxTotal", Total: "31.20", MaxTotal: "30.00"}
	case 17:
		r.Park("CREATE_UNKNOWN", at)
		r.History = append(r.History, Transition{State: providers.StateNeedsReview, At: at, Event: EntryDecision,
			Actor: "ops@example.com", Action: "recheck", Reason: "checked with the provider"})
	}
}
