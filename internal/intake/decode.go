// Package intake reads batches of order requests from outside input: the
// `enqueue submit` command and the HTTP intake (POST /v1/orders) share it.
//
// The input is one of:
//
//   - a JSON array of orders;
//   - one JSON object per line (NDJSON): every line is decoded on its own,
//     so a broken line is that order's error and the other lines still count;
//     blank lines are skipped;
//   - a single JSON object, which may span several lines; several such
//     objects one after another (a JSON stream) are read the same way.
//
// The format is told from the first non-blank byte ('[' for an array), and,
// for objects, from whether the first line holds a whole object (NDJSON) or
// not (a multi-line stream). Whitespace anywhere between values, CRLF line
// ends and a UTF-8 byte order mark at the start are accepted.
//
// Problems of one order (a field of the wrong type, an unknown field, a
// malformed NDJSON line, an order over MaxOrderBytes on its line) are that
// entry's Err; then every decoded order is checked with Validate, and an
// invalid one carries the *providers.FieldError. Problems that leave the rest
// of the input unreadable (a syntax error in an array or a multi-line
// stream, too many orders, an order too large to skip) end the batch with a
// *BatchError and no entries.
package intake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"orderflow/providers"
)

// MaxOrderBytes is the most bytes one order may take in the input.
const MaxOrderBytes = 1 << 20

// DefaultLimit is the most orders of a batch when Decode is given a limit
// of zero or less.
const DefaultLimit = 10_000

// Sentinels, matched with errors.Is through a *BatchError.
var (
	// ErrTooMany: the batch has more orders than the limit.
	ErrTooMany = errors.New("intake: too many orders")
	// ErrTooLarge: an order is larger than MaxOrderBytes.
	ErrTooLarge = errors.New("intake: order too large")
	// ErrMalformed: the input is not JSON of one of the accepted shapes.
	ErrMalformed = errors.New("intake: malformed input")
)

// Entry is one order of a batch.
type Entry struct {
	// N is the order's 1-based position in the batch (for NDJSON, among
	// the non-blank lines).
	N int
	// Req is the decoded order. When Err is set it holds what could be
	// decoded (often the outOrderId), and must not be used as an order.
	Req providers.OrderRequest
	// Err is why the order cannot be taken: a *providers.FieldError naming
	// the field (a decode or a validation problem), or a *DecodeError when
	// no field can be named.
	Err error
}

// DecodeError is an order that cannot be decoded and where no field can be
// named: malformed JSON, not an object, too large.
type DecodeError struct {
	// Reason says what is wrong, for people.
	Reason string
	// Err is the underlying error (a *json.SyntaxError, ErrTooLarge), if any.
	Err error
}

func (e *DecodeError) Error() string { return e.Reason }

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// BatchError ends a batch: the input cannot be read on from the order at
// position N (0 when the problem is not at an order).
type BatchError struct {
	N   int
	Err error
}

func (e *BatchError) Error() string {
	if e.N == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("order #%d: %v", e.N, e.Err)
}

// Unwrap returns the cause (wrapping ErrTooMany, ErrTooLarge or ErrMalformed).
func (e *BatchError) Unwrap() error { return e.Err }

// Decode reads a batch of at most limit orders (limit ≤ 0: DefaultLimit)
// from r and returns one Entry per order, in input order. An input with no
// orders (empty, blank, or "[]") gives no entries and no error. The error,
// a *BatchError, is for problems that end the batch; then no entries are
// returned.
func Decode(r io.Reader, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := skipSpace(br)
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, &BatchError{Err: fmt.Errorf("intake: read: %w", err)}
	}
	switch first {
	case '[':
		return decodeArray(br, limit)
	case '{':
		return decodeObjects(br, limit)
	}
	return nil, &BatchError{Err: fmt.Errorf("%w: want a JSON array of orders or JSON objects, got %s", ErrMalformed, quoteByte(first))}
}

// skipSpace consumes whitespace (and a leading byte order mark) and returns
// the next byte without consuming it.
func skipSpace(br *bufio.Reader) (byte, error) {
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		_ = br.UnreadByte()
		return b, nil
	}
}

func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return fmt.Sprintf("%q", rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}

// entry decodes and validates one order.
func entry(n int, raw []byte) Entry {
	e := Entry{N: n}
	e.Req, e.Err = decodeOrder(raw)
	if e.Err == nil {
		e.Err = e.Req.Validate()
	}
	return e
}

// decodeArray reads a JSON array of orders (the '[' not yet consumed).
func decodeArray(br *bufio.Reader, limit int) ([]Entry, error) {
	cr := &capReader{r: br}
	dec := json.NewDecoder(cr)
	cr.offset = dec.InputOffset
	if _, err := dec.Token(); err != nil { // '['
		return nil, batchErr(0, err)
	}
	var out []Entry
	for n := 1; dec.More(); n++ {
		if n > limit {
			return nil, &BatchError{N: n, Err: fmt.Errorf("%w: at most %d in a batch", ErrTooMany, limit)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, batchErr(n, err)
		}
		if len(raw) > MaxOrderBytes {
			return nil, batchErr(n, ErrTooLarge)
		}
		out = append(out, entry(n, raw))
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, batchErr(len(out)+1, err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, batchErr(0, err)
		}
		return nil, &BatchError{Err: fmt.Errorf("%w: unexpected %v after the array", ErrMalformed, tok)}
	}
	return out, nil
}

// decodeObjects reads NDJSON or a stream of (multi-line) objects; the
// first '{' is not yet consumed.
func decodeObjects(br *bufio.Reader, limit int) ([]Entry, error) {
	line, tooLong, err := readLine(br)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, &BatchError{Err: fmt.Errorf("intake: read: %w", err)}
	}
	if !tooLong && incomplete(line) {
		return decodeStream(io.MultiReader(bytes.NewReader(line), br), limit)
	}
	out := []Entry{lineEntry(1, line, tooLong)}
	for n := 2; err == nil; {
		line, tooLong, err = readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &BatchError{N: n, Err: fmt.Errorf("intake: read: %w", err)}
		}
		if !tooLong && len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if n > limit {
			return nil, &BatchError{N: n, Err: fmt.Errorf("%w: at most %d in a batch", ErrTooMany, limit)}
		}
		out = append(out, lineEntry(n, line, tooLong))
		n++
	}
	return out, nil
}

// incomplete reports whether line (with its newline) starts a JSON value
// that continues on the next lines.
func incomplete(line []byte) bool {
	var v json.RawMessage
	err := json.NewDecoder(bytes.NewReader(line)).Decode(&v)
	return errors.Is(err, io.ErrUnexpectedEOF)
}

func lineEntry(n int, line []byte, tooLong bool) Entry {
	if tooLong {
		return Entry{N: n, Err: &DecodeError{Reason: fmt.Sprintf("order larger than %d bytes", MaxOrderBytes), Err: ErrTooLarge}}
	}
	return entry(n, line)
}

// readLine returns the next line (with its newline, if any). A line longer
// than MaxOrderBytes is consumed to its end and reported as tooLong with no
// content. err is io.EOF at the end of the input.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > MaxOrderBytes+2 { // room for CRLF
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, tooLong, err
	}
}

// decodeStream reads JSON values one after another (whitespace between).
func decodeStream(r io.Reader, limit int) ([]Entry, error) {
	cr := &capReader{r: r}
	dec := json.NewDecoder(cr)
	cr.offset = dec.InputOffset
	var out []Entry
	for n := 1; ; n++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if n > limit {
			return nil, &BatchError{N: n, Err: fmt.Errorf("%w: at most %d in a batch", ErrTooMany, limit)}
		}
		if err != nil {
			return nil, batchErr(n, err)
		}
		if len(raw) > MaxOrderBytes {
			return nil, batchErr(n, ErrTooLarge)
		}
		out = append(out, entry(n, raw))
	}
}

// batchErr turns a decoder error into a *BatchError.
func batchErr(n int, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, ErrTooLarge):
		return &BatchError{N: n, Err: fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, MaxOrderBytes)}
	case errors.As(err, &se):
		return &BatchError{N: n, Err: fmt.Errorf("%w: %w (at byte %d)", ErrMalformed, se, se.Offset)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &BatchError{N: n, Err: fmt.Errorf("%w: unexpected end of input", ErrMalformed)}
	}
	return &BatchError{N: n, Err: fmt.Errorf("intake: read: %w", err)}
}

// capReader hands a json.Decoder at most MaxOrderBytes (and some slack for
// whitespace) beyond what it has consumed, so one huge value cannot make it
// buffer the whole input.
type capReader struct {
	r      io.Reader
	read   int64
	offset func() int64
}

const capSlack = 64 << 10

func (c *capReader) Read(p []byte) (int, error) {
	room := int64(MaxOrderBytes+capSlack) - (c.read - c.offset())
	if room <= 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}
