package orders

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// The stored form of a record.
//
// A record is a Redis string "<version>:<doc>" at RecordKey: the version
// the write script compares and swaps on, then the doc, a marker byte and
// the record's JSON compressed as raw DEFLATE (RFC 1951) against the
// preset dictionary dictV1:
//
//   - docStaticV1: one block coded with the fixed code staticLengthsV1,
//     without its header, which is the same for every record (deflate.go).
//     What encodeRecord writes.
//   - docFlateV1: compress/flate's own stream, with a code of its own;
//     encodeRecord falls back to it for a record the fixed code fits
//     badly (much text outside ASCII, say).
//
// The compressed JSON leaves out what the key and the version prefix say:
// its version is 0, its provider and outOrderId (and the request's, when
// they are the same) are "", and reading puts them back.
//
// Records written before that are a hash of two fields, v (the version)
// and doc (the plain JSON); they are read as they are and written back as
// a string at their next change (the write script replaces the hash).
//
// decodeRecord reads every form ever stored, encodeRecord writes today's.
// Never change what a marker means once deployed: a new form (a new
// dictionary, a new code) gets a new marker, and reading keeps the old.
const (
	docFlateV1  = 0x01
	docStaticV1 = 0x02
	// flateLevel is compress/flate's level for docFlateV1 (any level
	// reads back the same): on records, 5 to 9 make the same docs and 2
	// to 4 ones 4 to 7 % bigger for hardly less CPU.
	flateLevel = 5
	// maxDocLen bounds a decompressed doc: a longer one is corrupt (a
	// record holds bounded lists), not something to allocate for.
	maxDocLen = 4 << 20
)

// dictV1Bytes is dictV1 for flate, which only reads it.
var dictV1Bytes = []byte(dictV1)

// An encoder and a decoder hold what writing or reading one record needs,
// pooled: flate's writer is about 1 MB, its reader 40 kB.
type encoder struct {
	js  bytes.Buffer // the record's JSON
	enc *json.Encoder
	z   bytes.Buffer // compress/flate's output
	fw  *flate.Writer
}

type decoder struct {
	in  []byte // a docStaticV1 doc's window, dictV1 then the JSON
	src strings.Reader
	fr  io.ReadCloser
	buf bytes.Buffer
}

var (
	encoders = sync.Pool{New: func() any {
		e := &encoder{}
		e.enc = json.NewEncoder(&e.js)
		return e
	}}
	decoders = sync.Pool{New: func() any {
		d := &decoder{}
		d.fr = flate.NewReaderDict(&d.src, dictV1Bytes)
		return d
	}}
)

// encodeRecord is the value stored for r: "<version>:" then its doc.
func encodeRecord(r *Record) ([]byte, error) {
	sc, err := staticCodeV1()
	if err != nil {
		return nil, fmt.Errorf("orders: encode %s: %w", r.Key(), err)
	}
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	js, err := e.marshal(r)
	if err != nil {
		return nil, fmt.Errorf("orders: encode %s: %w", r.Key(), err)
	}
	out := strconv.AppendInt(make([]byte, 0, 32+len(js)/4), r.Version, 10)
	out = append(out, ':', docStaticV1)
	prefix := len(out) - 1
	out = encodeStatic(out, js, sc, nil)
	// Records compress to a fifth or less; one the fixed code fits worse
	// may do better with a code of its own.
	if len(out)-prefix > len(js)/4 {
		if err := e.deflate(js); err != nil {
			return nil, fmt.Errorf("orders: encode %s: %w", r.Key(), err)
		}
		if e.z.Len()+1 < len(out)-prefix {
			out = append(append(out[:prefix], docFlateV1), e.z.Bytes()...)
		}
	}
	if e.js.Cap() > 64<<10 {
		*e = encoder{fw: e.fw} // do not keep a huge record's buffers in the pool
		e.enc = json.NewEncoder(&e.js)
	}
	return out, nil
}

// marshal is the JSON compressed for r, without what the key and the
// version prefix say (see above).
func (e *encoder) marshal(r *Record) ([]byte, error) {
	c := *r // only its own fields change: a shallow copy will do
	c.Version, c.Provider, c.OutOrderID = 0, "", ""
	// An order's request names its key (intake refuses one that does not
	// name a provider and an outOrderId), so "" is never its own.
	if c.Request.Provider == r.Provider && c.Request.OutOrderID == r.OutOrderID {
		c.Request.Provider, c.Request.OutOrderID = "", ""
	}
	e.js.Reset()
	// The encoder ends the JSON with a newline, which decoding skips.
	if err := e.enc.Encode(&c); err != nil {
		return nil, err
	}
	return e.js.Bytes(), nil
}

// deflate compresses js into e.z with compress/flate (docFlateV1).
func (e *encoder) deflate(js []byte) error {
	e.z.Reset()
	if e.fw == nil {
		fw, err := flate.NewWriterDict(&e.z, flateLevel, dictV1Bytes)
		if err != nil {
			return err
		}
		e.fw = fw
	} else {
		e.fw.Reset(&e.z)
	}
	if _, err := e.fw.Write(js); err != nil {
		return err
	}
	return e.fw.Close()
}

// decodeRecord reads the record of key k as stored, in every form ever
// written (the value of the string, or the doc field of a hash of an
// earlier release), and brings it to today's form. A doc it cannot read
// is an error naming the key.
func decodeRecord(k Key, stored string) (*Record, error) {
	doc, version := stored, int64(-1)
	if stored != "" && stored[0] >= '0' && stored[0] <= '9' {
		v, rest, ok := strings.Cut(stored, ":")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("orders: decode %s: no version before the doc", k)
		}
		doc, version = rest, n
	}
	var r Record
	switch {
	case doc == "":
		return nil, fmt.Errorf("orders: decode %s: empty doc", k)
	case doc[0] == docStaticV1 || doc[0] == docFlateV1:
		if err := inflate(doc, &r); err != nil {
			return nil, fmt.Errorf("orders: decode %s: compressed doc (form %#02x): %w", k, doc[0], err)
		}
		// What the key says, left out of the doc.
		if r.Provider == "" && r.OutOrderID == "" {
			r.Provider, r.OutOrderID = k.Provider, k.OutOrderID
		}
		if r.Request.Provider == "" && r.Request.OutOrderID == "" {
			r.Request.Provider, r.Request.OutOrderID = r.Provider, r.OutOrderID
		}
	case doc[0] < ' ' && !strings.ContainsRune("\t\n\r", rune(doc[0])):
		return nil, fmt.Errorf("orders: decode %s: unknown stored form %#02x (written by a later release?)", k, doc[0])
	default: // the plain JSON of earlier releases
		if err := json.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("orders: decode %s: %w", k, err)
		}
	}
	if version >= 0 {
		r.Version = version // the one the write script compares
	}
	r.migrate()
	return &r, nil
}

var errDocTooLong = fmt.Errorf("longer than %d bytes decompressed", maxDocLen)

// inflate decompresses a docStaticV1 or docFlateV1 doc (marker included)
// and unmarshals its JSON into r.
func inflate(doc string, r *Record) error {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	var js []byte
	if doc[0] == docStaticV1 {
		sc, err := staticCodeV1()
		if err != nil {
			return err
		}
		if d.in, err = inflateStatic(d.in, doc[1:], sc); err != nil {
			return err
		}
		js = d.in[len(dictV1):]
	} else {
		d.src.Reset(doc[1:])
		if err := d.fr.(flate.Resetter).Reset(&d.src, dictV1Bytes); err != nil {
			return err
		}
		d.buf.Reset()
		_, err := d.buf.ReadFrom(io.LimitReader(d.fr, maxDocLen+1))
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errCutShort
		}
		if err != nil {
			return err
		}
		if d.buf.Len() > maxDocLen {
			return errDocTooLong
		}
		js = d.buf.Bytes()
	}
	err := json.Unmarshal(js, r)
	if cap(d.in) > 64<<10 || d.buf.Cap() > 64<<10 {
		*d = decoder{fr: d.fr} // do not keep a huge buffer in the pool
	}
	return err
}
