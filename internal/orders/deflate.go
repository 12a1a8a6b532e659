package orders

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"sync"
)

// DEFLATE with a fixed code for records: the form docStaticV1.
//
// compress/flate builds a Huffman code for each record and writes it at
// the head of the block, about 50 of a record's 300 compressed bytes. A
// docStaticV1 doc is instead one DEFLATE block (RFC 1951, BTYPE 10)
// against the preset dictionary dictV1 whose code is always the one of
// staticLengthsV1: its header is the same for every record, so it is not
// stored. Put back in front of the stored bits (withHeader), it makes a
// stream any DEFLATE reader reads, compress/flate's included (the tests
// check each against it); inflateStatic reads the stored bits directly,
// without building the code's tables for each record as a reader of the
// header must.

// staticCode is a DEFLATE block header and the codes it declares.
type staticCode struct {
	// lit and dist are the codes of the literal/length and distance
	// symbols, bit-reversed (DEFLATE writes them from their first bit),
	// litLen and distLen their lengths.
	lit     [286]uint16
	litLen  [286]uint8
	dist    [30]uint16
	distLen [30]uint8
	// header is the block header's bits (from BFINAL on), headerBits
	// how many.
	header     []byte
	headerBits int
	// litDec and distDec decode the codes (inflateStatic).
	litDec, distDec canonicalDecoder
}

var (
	staticV1     *staticCode
	staticV1Once sync.Once
	staticV1Err  error
)

// staticCodeV1 is the code of docStaticV1, built from staticLengthsV1 once.
func staticCodeV1() (*staticCode, error) {
	staticV1Once.Do(func() { staticV1, staticV1Err = newStaticCode(staticLengthsV1) })
	return staticV1, staticV1Err
}

// newStaticCode builds the codes and block header of code lengths given as
// 316 hex digits (286 literal/length codes, then 30 distance codes).
func newStaticCode(lengths string) (*staticCode, error) {
	if len(lengths) != 286+30 {
		return nil, fmt.Errorf("static code: %d lengths, want 316", len(lengths))
	}
	all := make([]uint8, len(lengths))
	for i := range lengths {
		c := lengths[i]
		switch {
		case c >= '1' && c <= '9':
			all[i] = c - '0'
		case c >= 'a' && c <= 'f':
			all[i] = c - 'a' + 10
		default:
			return nil, fmt.Errorf("static code: length %q of symbol %d", c, i)
		}
	}
	sc := &staticCode{}
	copy(sc.litLen[:], all[:286])
	copy(sc.distLen[:], all[286:])
	if err := canonical(sc.litLen[:], sc.lit[:]); err != nil {
		return nil, fmt.Errorf("static code, literals: %w", err)
	}
	if err := canonical(sc.distLen[:], sc.dist[:]); err != nil {
		return nil, fmt.Errorf("static code, distances: %w", err)
	}
	sc.litDec, sc.distDec = newCanonicalDecoder(sc.litLen[:]), newCanonicalDecoder(sc.distLen[:])

	// The header: the lengths are sent as they are (no repeat codes), each
	// coded with a code of the lengths 0…15 built from how often each
	// occurs, at most 7 bits long.
	var freq [19]int
	for _, l := range all {
		freq[l]++
	}
	clLen := make([]uint8, 19)
	huffmanLengths(freq[:], clLen, 7)
	clCode := make([]uint16, 19)
	if err := canonical(clLen, clCode); err != nil {
		return nil, fmt.Errorf("static code, code lengths: %w", err)
	}
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	hclen := 19
	for hclen > 4 && clLen[order[hclen-1]] == 0 {
		hclen--
	}
	var w bitWriter
	w.write(1, 1) // BFINAL
	w.write(2, 2) // BTYPE 10: dynamic codes
	w.write(286-257, 5)
	w.write(30-1, 5)
	w.write(uint64(hclen-4), 4)
	for _, s := range order[:hclen] {
		w.write(uint64(clLen[s]), 3)
	}
	for _, l := range all {
		w.write(uint64(clCode[l]), uint(clLen[l]))
	}
	sc.headerBits = w.bits()
	sc.header = w.flush()
	return sc, nil
}

// canonical assigns DEFLATE's canonical codes (RFC 1951, 3.2.2) to lengths,
// bit-reversed, after checking they make a complete code, as
// compress/flate's reader requires.
func canonical(lengths []uint8, codes []uint16) error {
	var count [16]int
	for _, l := range lengths {
		if l > 15 {
			return errors.New("a code longer than 15 bits")
		}
		count[l]++
	}
	count[0] = 0
	var next [16]int
	code, left := 0, 1
	for l := 1; l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
		left = left<<1 - count[l]
		if left < 0 {
			return errors.New("over-subscribed")
		}
	}
	if left != 0 {
		return errors.New("incomplete")
	}
	for i, l := range lengths {
		if l > 0 {
			codes[i] = bits.Reverse16(uint16(next[l])) >> (16 - l)
			next[l]++
		}
	}
	return nil
}

// huffmanLengths sets lengths to a Huffman code's for freq, none longer
// than limit (when one is, the counts are halved and it is built again).
// Symbols of count 0 get no code.
func huffmanLengths(freq []int, lengths []uint8, limit int) {
	f := append([]int(nil), freq...)
	for {
		type node struct{ w, left, right, sym int }
		var nodes []node
		var live []int
		for s, c := range f {
			lengths[s] = 0
			if c > 0 {
				nodes = append(nodes, node{c, -1, -1, s})
				live = append(live, len(nodes)-1)
			}
		}
		if len(live) == 1 {
			lengths[nodes[0].sym] = 1
			return
		}
		for len(live) > 1 {
			sort.SliceStable(live, func(i, j int) bool { return nodes[live[i]].w < nodes[live[j]].w })
			a, b := live[0], live[1]
			nodes = append(nodes, node{nodes[a].w + nodes[b].w, a, b, -1})
			live = append(live[2:], len(nodes)-1)
		}
		long := false
		var walk func(n, depth int)
		walk = func(n, depth int) {
			if nodes[n].sym >= 0 {
				lengths[nodes[n].sym] = uint8(depth)
				long = long || depth > limit
				return
			}
			walk(nodes[n].left, depth+1)
			walk(nodes[n].right, depth+1)
		}
		walk(live[0], 0)
		if !long {
			return
		}
		for s := range f {
			if f[s] > 0 {
				f[s] = (f[s] + 1) / 2
			}
		}
	}
}

// bitWriter packs bits from the lowest of each byte, as DEFLATE does.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

func (w *bitWriter) bits() int { return len(w.out)*8 + int(w.nacc) }

// flush writes out the last partial byte and returns everything.
func (w *bitWriter) flush() []byte {
	if w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
	return w.out
}

// DEFLATE's length and distance codes: the first length or distance of
// each, and its number of extra bits.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// lengthCode[l-3] is the length code (0…28, before adding 257) of
	// match length l.
	lengthCode [256]uint8
)

func init() {
	for c := range 28 {
		for l := int(lengthBase[c]); l < int(lengthBase[c])+1<<lengthExtra[c]; l++ {
			lengthCode[l-3] = uint8(c)
		}
	}
	lengthCode[maxMatch-3] = 28 // 258 has a code of its own
}

// distCode is the distance code of distance d (1…32768).
func distCode(d int) int {
	if d <= 4 {
		return d - 1
	}
	// Two codes per power of two above 4.
	n := bits.Len(uint(d-1)) - 1 // d-1 in [2^n, 2^(n+1))
	return 2*n + (d-1)>>(n-1)&1
}

const (
	minMatch    = 3
	maxMatch    = 258
	maxDistance = 1 << 15
	hashBits    = 12
	// maxChain is how many earlier occurrences a match search looks at;
	// niceMatch a length good enough to stop looking, and to take without
	// looking one byte further for a longer one.
	maxChain  = 48
	niceMatch = 64
)

func hash3(b []byte) uint32 {
	return (uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])) * 0x9E3779B1 >> (32 - hashBits)
}

// dictIndex is the hash chains of a dictionary's positions, built once and
// copied into each matcher.
type dictIndex struct {
	dict []byte
	head [1 << hashBits]int32
	prev []int32
}

func newDictIndex(dict string) *dictIndex {
	x := &dictIndex{dict: []byte(dict), prev: make([]int32, len(dict))}
	for i := range x.head {
		x.head[i] = -1
	}
	for i := 0; i+minMatch <= len(x.dict); i++ {
		h := hash3(x.dict[i:])
		x.prev[i] = x.head[h]
		x.head[h] = int32(i)
	}
	return x
}

var dictIndexV1 = sync.OnceValue(func() *dictIndex { return newDictIndex(dictV1) })

// symbolCounts counts the symbols an encoding wrote (to make a code).
type symbolCounts struct {
	lit  [286]int
	dist [30]int
}

// A matcher finds earlier occurrences of the bytes at a position of
// dictionary ‖ input through hash chains.
type matcher struct {
	win  []byte
	head [1 << hashBits]int32
	prev []int32
	// litBits[k] is the bits of the input's first k bytes as literals.
	litBits []int32
	nd      int
	sc      *staticCode
}

var matchers = sync.Pool{New: func() any { return &matcher{} }}

func (m *matcher) insert(i int) {
	if i+minMatch <= len(m.win) {
		h := hash3(m.win[i:])
		m.prev[i] = m.head[h]
		m.head[h] = int32(i)
	}
}

// find is the longest earlier match at i, and its distance; length 0 when
// there is none.
func (m *matcher) find(i int) (length, dist int) {
	win := m.win
	if i+minMatch > len(win) {
		return 0, 0
	}
	limit := min(maxMatch, len(win)-i)
	for j, n := m.head[hash3(win[i:])], 0; j >= 0 && n < maxChain; j, n = m.prev[j], n+1 {
		p := int(j)
		if i-p > maxDistance {
			break
		}
		if win[p+length] != win[i+length] {
			continue // cannot be longer
		}
		l := matchLen(win[p:], win[i:i+limit])
		if l > length {
			length, dist = l, i-p
			if l >= min(limit, niceMatch) {
				break
			}
		}
	}
	if length < minMatch {
		return 0, 0
	}
	return length, dist
}

// matchLen is how many bytes a and b (the shorter) start with alike.
func matchLen(a, b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)/8
		}
		n += 8
	}
	for n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// saves reports whether a match of length l at distance d from i takes
// fewer bits than its bytes as literals.
func (m *matcher) saves(i, l, d int) bool {
	if l == 0 {
		return false
	}
	lc, dc := lengthCode[l-minMatch], distCode(d)
	bits := int32(m.sc.litLen[257+int(lc)]) + int32(lengthExtra[lc]) + int32(m.sc.distLen[dc]) + int32(distExtra[dc])
	return bits < m.litBits[i+l-m.nd]-m.litBits[i-m.nd]
}

// encodeStatic appends to dst the docStaticV1 bits of src (the JSON),
// without the block header, and counts its symbols in cnt unless nil: a
// greedy parse, looking one byte ahead for a longer match, with matches
// only where they take fewer bits than literals.
func encodeStatic(dst, src []byte, sc *staticCode, cnt *symbolCounts) []byte {
	x := dictIndexV1()
	m := matchers.Get().(*matcher)
	defer matchers.Put(m)
	m.sc, m.nd = sc, len(x.dict)
	m.win = append(append(m.win[:0], x.dict...), src...)
	m.head = x.head
	m.prev = append(m.prev[:0], x.prev...)
	m.prev = append(m.prev, make([]int32, len(src))...)
	m.litBits = append(m.litBits[:0], 0)
	for k, b := range src {
		m.litBits = append(m.litBits, m.litBits[k]+int32(sc.litLen[b]))
	}
	w := bitWriter{out: dst}
	win, i := m.win, m.nd
	l, d := m.find(i)
	for i < len(win) {
		if !m.saves(i, l, d) {
			w.write(uint64(sc.lit[win[i]]), uint(sc.litLen[win[i]]))
			if cnt != nil {
				cnt.lit[win[i]]++
			}
			m.insert(i)
			i++
			l, d = m.find(i)
			continue
		}
		m.insert(i)
		if l < niceMatch {
			// A longer match at the next byte wins over this one.
			if l2, d2 := m.find(i + 1); l2 > l && m.saves(i+1, l2, d2) {
				w.write(uint64(sc.lit[win[i]]), uint(sc.litLen[win[i]]))
				if cnt != nil {
					cnt.lit[win[i]]++
				}
				i++
				l, d = l2, d2
				continue
			}
		}
		lc, dc := lengthCode[l-minMatch], distCode(d)
		w.write(uint64(sc.lit[257+int(lc)]), uint(sc.litLen[257+int(lc)]))
		w.write(uint64(l-int(lengthBase[lc])), uint(lengthExtra[lc]))
		w.write(uint64(sc.dist[dc]), uint(sc.distLen[dc]))
		w.write(uint64(d-int(distBase[dc])), uint(distExtra[dc]))
		if cnt != nil {
			cnt.lit[257+int(lc)]++
			cnt.dist[dc]++
		}
		for k := 1; k < l; k++ {
			m.insert(i + k)
		}
		i += l
		l, d = m.find(i)
	}
	w.write(uint64(sc.lit[256]), uint(sc.litLen[256])) // end of block
	if cnt != nil {
		cnt.lit[256]++
	}
	if cap(m.win) > 64<<10 {
		*m = matcher{} // do not keep a huge record's buffers in the pool
	}
	return w.flush()
}

// withHeader appends to dst the DEFLATE stream of docStaticV1 bits z: the
// block header, then z shifted to follow it.
func withHeader(dst []byte, z string, sc *staticCode) []byte {
	full, rest := sc.headerBits/8, uint(sc.headerBits%8)
	dst = append(dst, sc.header[:full]...)
	var acc uint
	if rest > 0 {
		acc = uint(sc.header[full]) & (1<<rest - 1)
	}
	for i := 0; i < len(z); i++ {
		acc |= uint(z[i]) << rest
		dst = append(dst, byte(acc))
		acc >>= 8
	}
	if rest > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// canonicalDecoder decodes a canonical code a bit at a time (as zlib's
// puff does): count[l] codes of length l, their symbols in code order.
type canonicalDecoder struct {
	count  [16]uint16
	symbol []uint16
}

func newCanonicalDecoder(lengths []uint8) canonicalDecoder {
	var d canonicalDecoder
	for _, l := range lengths {
		d.count[l]++
	}
	d.count[0] = 0
	var offs [16]uint16
	for l := 1; l < 16; l++ {
		offs[l] = offs[l-1] + d.count[l-1]
	}
	d.symbol = make([]uint16, len(lengths))
	for s, l := range lengths {
		if l > 0 {
			d.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	return d
}

var (
	errCutShort = errors.New("cut short")
	errFarBack  = errors.New("a match before the start")
)

// bitReader reads bits from the lowest of each byte, as DEFLATE writes
// them.
type bitReader struct {
	in  string
	pos int
	acc uint64
	n   uint
}

func (r *bitReader) bits(n uint) (int, error) {
	for r.n < n {
		if r.pos == len(r.in) {
			return 0, errCutShort
		}
		r.acc |= uint64(r.in[r.pos]) << r.n
		r.pos++
		r.n += 8
	}
	v := int(r.acc & (1<<n - 1))
	r.acc >>= n
	r.n -= n
	return v, nil
}

func (d *canonicalDecoder) decode(r *bitReader) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := int(d.count[l])
		if code-first < count {
			return int(d.symbol[index+code-first]), nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errors.New("no such code") // cannot be: the codes are complete
}

// inflateStatic decodes docStaticV1 bits z into the window win (reused):
// it answers the window, dictV1 then the bytes decoded.
func inflateStatic(win []byte, z string, sc *staticCode) ([]byte, error) {
	win = append(win[:0], dictV1...)
	nd := len(win)
	r := bitReader{in: z}
	for {
		sym, err := sc.litDec.decode(&r)
		if err != nil {
			return nil, err
		}
		switch {
		case sym < 256:
			if len(win)-nd == maxDocLen {
				return nil, errDocTooLong
			}
			win = append(win, byte(sym))
			continue
		case sym == 256:
			return win, nil
		}
		c := sym - 257
		extra, err := r.bits(uint(lengthExtra[c]))
		if err != nil {
			return nil, err
		}
		l := int(lengthBase[c]) + extra
		ds, err := sc.distDec.decode(&r)
		if err != nil {
			return nil, err
		}
		if extra, err = r.bits(uint(distExtra[ds])); err != nil {
			return nil, err
		}
		d := int(distBase[ds]) + extra
		if d > len(win) {
			return nil, errFarBack
		}
		if len(win)-nd+l > maxDocLen {
			return nil, errDocTooLong
		}
		if d >= l {
			win = append(win, win[len(win)-d:len(win)-d+l]...)
			continue
		}
		for range l {
			win = append(win, win[len(win)-d])
		}
	}
}
