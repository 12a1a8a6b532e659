package orders

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// readStoredJSON reads k's record as it is stored, checks that it is in
// today's form (a string "<version>:" then a docStaticV1 doc) at version,
// and returns the JSON it holds (without what the key and the version
// say), decompressed with compress/flate alone.
func readStoredJSON(t *testing.T, rdb redis.UniversalClient, k Key, version int64) string {
	t.Helper()
	ctx := context.Background()
	if typ := rdb.Type(ctx, RecordKey(k)).Val(); typ != "string" {
		t.Fatalf("record %s stored as a %s, want a string", k, typ)
	}
	v, err := rdb.Get(ctx, RecordKey(k)).Result()
	if err != nil {
		t.Fatal(err)
	}
	prefix := strconv.FormatInt(version, 10) + ":\x02"
	if !strings.HasPrefix(v, prefix) {
		t.Fatalf("record %s stored as %q…, want %q then a compressed doc", k, v[:min(len(v), 16)], prefix)
	}
	sc, err := staticCodeV1()
	if err != nil {
		t.Fatal(err)
	}
	z := withHeader(nil, v[len(prefix):], sc)
	doc, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(z), []byte(dictV1)))
	if err != nil {
		t.Fatalf("record %s: %v", k, err)
	}
	return string(doc)
}

// A record of today's release (a hash: v, and doc the plain JSON) is read,
// listed and found, updated, and written back as a compressed string, its
// retention kept; the record written back reads as it was plus the update.
func TestPlainJSONRecordIsRewrittenCompact(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		ctx := context.Background()
		st := NewStore(rdb, Config{Retention: time.Hour})

		// Written by the previous release: an ended order and a live one.
		var ended, live Record
		if err := json.Unmarshal([]byte(benchEnded), &ended); err != nil {
			t.Fatal(err)
		}
		live = *ended.Clone()
		live.OutOrderID, live.Request.OutOrderID = "me64-0339", "me64-0339"
		live.State, live.History = providers.StateShipped, live.History[:4]
		for _, r := range []*Record{&ended, &live} {
			doc, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			k := RecordKey(r.Key())
			if err := rdb.HSet(ctx, k, "v", r.Version, "doc", doc).Err(); err != nil {
				t.Fatal(err)
			}
			if r.Terminal() {
				rdb.PExpire(ctx, k, 30*time.Minute)
			}
			rdb.ZAdd(ctx, StateKey(r.Provider, r.State), redis.Z{Score: float64(st.Now().UnixMilli()), Member: r.OutOrderID})
		}

		got, err := st.Get(ctx, ended.Key())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, &ended) {
			t.Fatalf("read\n%+v\nwant\n%+v", got, &ended)
		}
		page, err := st.List(ctx, ListQuery{Provider: providers.Xportcn})
		if err != nil || len(page.Orders) != 2 {
			t.Fatalf("list: %v, %d orders", err, len(page.Orders))
		}

		// Each written back at its next change, in today's form.
		for _, r := range []*Record{&ended, &live} {
			w, err := st.Update(ctx, r.Key(), func(r *Record) error { r.Notified++; return nil })
			if err != nil || w.Version != r.Version+1 {
				t.Fatalf("update %s: %v (version %d)", r.Key(), err, w.Version)
			}
			var back Record
			if err := json.Unmarshal([]byte(readStoredJSON(t, rdb, r.Key(), r.Version+1)), &back); err != nil {
				t.Fatal(err)
			}
			want := r.Clone()
			want.Version, want.Notified, want.UpdatedAt = r.Version+1, r.Notified+1, back.UpdatedAt
			// Stored without what the key and the version prefix say.
			doc := want.Clone()
			doc.Version, doc.Provider, doc.OutOrderID, doc.Request.Provider, doc.Request.OutOrderID = 0, "", "", "", ""
			if !reflect.DeepEqual(&back, doc) {
				t.Fatalf("written back\n%+v\nwant\n%+v", &back, doc)
			}
			if again, err := st.Get(ctx, r.Key()); err != nil || !reflect.DeepEqual(again, want) {
				t.Fatalf("read back %v\n%+v\nwant\n%+v", err, again, want)
			}
		}
		if ttl := rdb.PTTL(ctx, RecordKey(ended.Key())).Val(); ttl <= 30*time.Minute || ttl > time.Hour {
			t.Fatalf("ended record's TTL %v, want the retention (1h)", ttl)
		}
		if ttl := rdb.PTTL(ctx, RecordKey(live.Key())).Val(); ttl != -1 {
			t.Fatalf("live record's TTL %v, want none", ttl)
		}

		// The compressed form is read, listed and updated again like any.
		page, err = st.List(ctx, ListQuery{Provider: providers.Xportcn})
		if err != nil || len(page.Orders) != 2 {
			t.Fatalf("list: %v, %d orders", err, len(page.Orders))
		}
		if w, err := st.Update(ctx, live.Key(), func(r *Record) error { r.PollSeq++; return nil }); err != nil || w.Version != live.Version+2 {
			t.Fatalf("second update: %v", err)
		}
		// A write from a stale version is refused against the new form too.
		stale := live.Clone()
		stale.Version = live.Version + 1
		if n, err := st.writeEvents(ctx, stale, stale.Version, stale.State, nil, nil, false); err != nil || n != wroteNot {
			t.Fatalf("stale write: answered %d, %v", n, err)
		}
	})
}

// A stored record that cannot be read is an error that names the key,
// from Get and from List, never a panic.
func TestCorruptStoredRecordIsAnError(t *testing.T) {
	good, err := encodeRecord(benchRecords(t)["ended"])
	if err != nil {
		t.Fatal(err)
	}
	sc, err := staticCodeV1()
	if err != nil {
		t.Fatal(err)
	}
	head := len("7:\x02")
	if string(good[:head]) != "7:\x02" {
		t.Fatalf("encoded as %q…", good[:head])
	}
	flipped := bytes.Clone(good)
	flipped[head+40] ^= 0xff
	cases := map[string]string{
		"garbage":        "7:\x02\xff\xfe\xfd not deflate",
		"cut short":      string(good[:len(good)/2]),
		"marker only":    "7:\x02",
		"flipped bits":   string(flipped),
		"later form":     "7:\x03" + string(good[head:]),
		"no version":     "7\x02" + string(good[head:]),
		"bad version":    "7x:" + string(good[head-1:]),
		"not JSON":       "7:\x02" + string(encodeStatic(nil, []byte("{not json"), sc, nil)),
		"flate garbage":  "7:\x01\xff\xfe\xfd not deflate",
		"flate cut":      "7:\x01" + string(deflated(t, benchEnded)[:100]),
		"flate not JSON": "7:\x01" + string(deflated(t, "{not json")),
		"empty":          "",
		"hash, bad JSON": "{\"version\":",
	}
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		ctx := context.Background()
		st := NewStore(rdb, Config{})
		for name, v := range cases {
			t.Run(name, func(t *testing.T) {
				k := Key{providers.Depal, "BAD-" + strings.ReplaceAll(name, " ", "-")}
				if name == "hash, bad JSON" {
					rdb.HSet(ctx, RecordKey(k), "v", 7, "doc", v)
				} else {
					rdb.Set(ctx, RecordKey(k), v, 0)
				}
				rdb.ZAdd(ctx, StateKey(k.Provider, providers.StateShipped), redis.Z{Score: 1, Member: k.OutOrderID})
				defer rdb.Del(ctx, StateKey(k.Provider, providers.StateShipped))
				_, err := st.Get(ctx, k)
				if err == nil || !strings.Contains(err.Error(), k.String()) || errors.Is(err, ErrNotFound) {
					t.Fatalf("Get = %v, want an error naming %s", err, k)
				}
				_, err = st.List(ctx, ListQuery{Provider: k.Provider, States: []providers.State{providers.StateShipped}})
				if err == nil || !strings.Contains(err.Error(), k.String()) {
					t.Fatalf("List = %v, want an error naming %s", err, k)
				}
				if _, err := st.Update(ctx, k, func(*Record) error { return nil }); err == nil {
					t.Fatal("Update of a corrupt record succeeded")
				}
			})
		}
	})
}

func deflated(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriterDict(&b, flateLevel, []byte(dictV1))
	_, _ = w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dictV1 and staticLengthsV1 must never change: every record written with
// them would no longer read.
func TestStoredFormsV1AreUnchanged(t *testing.T) {
	for name, c := range map[string]struct{ text, sum string }{
		"dictV1":          {dictV1, "b6dce89ba18bcf2d21d6cfd13b4943585f12ef4c0a8d03a2138ae33f58203fad"},
		"staticLengthsV1": {staticLengthsV1, "aedbabe2a3c076ae9a295f97f51afb59ec32f76956481a7ac9913b27517a4af8"},
	} {
		sum := sha256.Sum256([]byte(c.text))
		if got := hex.EncodeToString(sum[:]); got != c.sum {
			t.Errorf("%s changed (sha256 %s): records written with it no longer read; add a new form with its own marker instead", name, got)
		}
	}
}

// A record of every field set reads back as it was written, and smaller
// than its JSON.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 14, 55, 18, 960792353, time.UTC)
	r := benchRecords(t)["ended"]
	fillZero(reflect.ValueOf(r).Elem(), at)
	r.Parcel, r.ParcelStatus = nil, "" // moved into Parcels on read
	plain, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte(`:""`)) || bytes.Contains(plain, []byte(`:0,`)) {
		t.Fatalf("fillZero left a zero value: %s", plain)
	}
	stored, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) >= len(plain)/2 {
		t.Errorf("stored %d bytes for %d of JSON", len(stored), len(plain))
	}
	got, err := decodeRecord(r.Key(), string(stored))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, r)
	}
	// The same concurrently (pooled encoders and decoders).
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			for j := range 50 {
				c := r.Clone()
				c.Version = int64(i*1000 + j)
				s, err := encodeRecord(c)
				if err == nil {
					var back *Record
					if back, err = decodeRecord(c.Key(), string(s)); err == nil && !reflect.DeepEqual(back, c) {
						err = fmt.Errorf("version %d read back differs", c.Version)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A record the fixed code fits badly (here a long decision reason of
// Chinese text) is stored with compress/flate's own code when that is
// smaller, and reads back the same.
func TestRecordOfUnusualTextFallsBackToFlate(t *testing.T) {
	r := benchRecords(t)["ended"]
	var b strings.Builder
	for i := range 600 {
		b.WriteRune(rune(0x4e00 + (i*7919)%20000))
	}
	r.History = append(r.History, Transition{State: r.State, At: r.UpdatedAt, Event: EntryDecision,
		Actor: "ops", Action: "close", Reason: b.String()})
	stored, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stored, []byte("7:\x01")) {
		t.Fatalf("stored as %q…, want the docFlateV1 form", stored[:3])
	}
	got, err := decodeRecord(r.Key(), string(stored))
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("read back %v\n%+v\nwant\n%+v", err, got, r)
	}
}

// fillZero sets every zero field under v (strings, numbers, bools, times,
// pointers, one-element slices) to something.
func fillZero(v reflect.Value, at time.Time) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.IsZero() {
				v.Set(reflect.ValueOf(at))
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillZero(v.Field(i), at)
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillZero(v.Elem(), at)
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			fillZero(v.Index(i), at)
		}
	case reflect.String:
		if v.String() == "" {
			v.SetString("x <&> \u00e9\u4e2d")
		}
	case reflect.Int, reflect.Int64:
		if v.Int() == 0 {
			v.SetInt(-3)
		}
	case reflect.Bool:
		v.SetBool(true)
	}
}

// Whatever is stored, reading it answers a record or an error, never a
// panic.
func FuzzDecodeRecord(f *testing.F) {
	good, err := encodeRecord(benchRecords(f)["inflight"])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(good))
	f.Add(benchInFlight)
	f.Add("3:\x02")
	f.Add("3:\x02\x00\x00\xff\xff")
	f.Add("3:\x01\x00\x00\xff\xff")
	f.Fuzz(func(t *testing.T, stored string) {
		r, err := decodeRecord(Key{"depal", "F"}, stored)
		if err == nil && r == nil {
			t.Fatal("no record and no error")
		}
	})
}
