package snapshot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Stream is a snapshot read one goroutine at a time, so that a snapshot of
// a million goroutines is never held whole: BinaryReader and JSONReader.
type Stream interface {
	// Header is the snapshot without its goroutines. Its Goroutines is nil
	// when the snapshot's list is nil, else empty but not nil (as WriteJSON
	// writes null or a list). The pointer stays the same while reading.
	Header() *Snapshot
	// Next returns the next goroutine, or io.EOF after the last one. The
	// goroutine, its CreatedBy and its BlockedOn are valid until the
	// following call (KeepGoroutine copies them); its Frames and Labels
	// stay valid but may be shared with other goroutines: do not modify them.
	Next() (*Goroutine, error)
}

// KeepGoroutine returns a copy of g, a goroutine a Stream returned, that
// stays valid after the Stream's next call: its CreatedBy and BlockedOn
// are copied too.
func KeepGoroutine(g *Goroutine) Goroutine {
	k := *g
	if g.CreatedBy != nil {
		c := *g.CreatedBy
		k.CreatedBy = &c
	}
	if g.BlockedOn != nil {
		b := *g.BlockedOn
		k.BlockedOn = &b
	}
	return k
}

// Window sizes of a BinaryReader reading from an io.Reader.
const (
	// binWindow is the data a streaming BinaryReader reads ahead.
	binWindow = 64 << 10
	// binRefill is the read-ahead below which it reads more.
	binRefill = 16 << 10
	// binMaxRecord bounds one goroutine (its new strings and stack
	// included) or the header: a record that does not decode within it is
	// reported, not read into memory indefinitely.
	binMaxRecord = 4 << 20
)

// BinaryReader reads a snapshot in the binary form (AppendBinary) one
// goroutine at a time, without building its goroutine slice. Strings,
// stacks and label sets are interned as in DecodeBinary, so its memory
// grows with the distinct ones, not with the goroutines. It reads the
// same data as DecodeBinary and fails on the same inputs.
type BinaryReader struct {
	d binDecoder
	// src is the data past the window; nil once it is all in the window.
	src io.Reader
	// buf backs the window when reading from src.
	buf []byte
	// win is the window as filled last; d.b is its unread part, which
	// starts at byte base+len(win)-len(d.b) of the data.
	win  []byte
	base int64
	head Snapshot
	// n is the goroutines the data holds; read of them are read.
	n, read int
	// g is the goroutine Next returns; creator and blocked its CreatedBy
	// and BlockedOn, if any.
	g       Goroutine
	creator Frame
	blocked BlockedOn
	err     error
}

var _ Stream = (*BinaryReader)(nil)

// NewBinaryReader reads the header of the binary snapshot data; Next
// reads its goroutines.
func NewBinaryReader(data []byte) (*BinaryReader, error) {
	if !IsBinary(data) {
		return nil, errNotBinary()
	}
	r := &BinaryReader{win: data[len(binaryMagic):], base: int64(len(binaryMagic))}
	r.d.b = r.win
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

// NewBinaryStreamReader is NewBinaryReader for data read from src as
// needed, a window of 64 KiB at a time (more for a goroutine whose new
// stack and strings take more, up to 4 MiB). Errors of src are returned
// wrapped.
func NewBinaryStreamReader(src io.Reader) (*BinaryReader, error) {
	r := &BinaryReader{src: src, base: int64(len(binaryMagic))}
	var magic [len(binaryMagic)]byte
	if _, err := io.ReadFull(src, magic[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errNotBinary()
		}
		return nil, fmt.Errorf("decode binary snapshot: %w", err)
	}
	if !IsBinary(magic[:]) {
		return nil, errNotBinary()
	}
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

func errNotBinary() error {
	return fmt.Errorf("decode binary snapshot: no %q header; is this a goroscope store entry of kind snapshot?", binaryMagic[:7])
}

// Header returns the snapshot's fields (see Stream).
func (r *BinaryReader) Header() *Snapshot { return &r.head }

// Len is the number of goroutines the snapshot holds.
func (r *BinaryReader) Len() int { return r.n }

// readHeader reads the fields and the goroutine count.
func (r *BinaryReader) readHeader() error {
	var n uint64
	var nilList bool
	err := r.decode(func() {
		var s *Snapshot
		s, nilList = r.d.header()
		r.head = *s
		if r.src == nil { // all data at hand: check the count, as DecodeBinary does
			n = uint64(r.d.count("goroutine", binGoroutineMin))
		} else {
			n = r.d.uint()
		}
	})
	if err != nil {
		return fmt.Errorf("decode binary snapshot header: %w", err)
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("decode binary snapshot header: goroutine count %d is not plausible", n)
	}
	r.n = int(n)
	if !nilList || r.n > 0 {
		r.head.Goroutines = []Goroutine{}
	}
	return nil
}

// Next returns the next goroutine, or io.EOF after the last one (see Stream).
func (r *BinaryReader) Next() (*Goroutine, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.read == r.n {
		r.err = r.end()
		return nil, r.err
	}
	if err := r.decode(func() { r.g = r.d.goroutine(&r.creator, &r.blocked) }); err != nil {
		r.err = fmt.Errorf("decode binary snapshot: goroutine %d of %d: %w", r.read+1, r.n, err)
		return nil, r.err
	}
	r.read++
	return &r.g, nil
}

// end checks that the data ends after the last goroutine: io.EOF if so.
func (r *BinaryReader) end() error {
	if len(r.d.b) == 0 && r.src != nil {
		if err := r.fill(0); err != nil {
			return fmt.Errorf("decode binary snapshot: after goroutine %d: %w", r.n, err)
		}
	}
	if len(r.d.b) != 0 {
		return fmt.Errorf("decode binary snapshot: trailing data after goroutine %d, at byte %d", r.n, r.offset())
	}
	return io.EOF
}

// offset is the position of the next unread byte in the data.
func (r *BinaryReader) offset() int64 { return r.base + int64(len(r.win)-len(r.d.b)) }

// decode runs read, which decodes one record with r.d. Reading from src,
// a record that fails before the end of the data may just not be in the
// window yet: the decoder is rolled back to the record's start and read
// runs again over a window twice as large. The error, if any, names the
// byte the record starts at.
func (r *BinaryReader) decode(read func()) error {
	for {
		if r.src != nil && len(r.d.b) < binRefill {
			if err := r.fill(0); err != nil {
				return fmt.Errorf("at byte %d: %w", r.offset(), err)
			}
		}
		start, strs, stacks, labels := r.d.b, len(r.d.strs), len(r.d.stacks), len(r.d.labels)
		read()
		if r.d.err == nil {
			return nil
		}
		err := r.d.err
		r.d.b, r.d.err = start, nil
		r.d.strs, r.d.stacks, r.d.labels = r.d.strs[:strs], r.d.stacks[:stacks], r.d.labels[:labels]
		if r.src == nil {
			return fmt.Errorf("at byte %d: %w", r.offset(), err)
		}
		if len(r.d.b) >= binMaxRecord {
			return fmt.Errorf("at byte %d: %w within %d MiB, the limit of one record", r.offset(), err, binMaxRecord>>20)
		}
		if err := r.fill(min(2*len(r.d.b), binMaxRecord)); err != nil {
			return fmt.Errorf("at byte %d: %w", r.offset(), err)
		}
	}
}

// fill moves the unread bytes to the start of the window and reads from
// src until the window holds want bytes (at least binWindow) or src ends.
func (r *BinaryReader) fill(want int) error {
	want = max(want, binWindow)
	r.base += int64(len(r.win) - len(r.d.b))
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	n := copy(r.buf[:cap(r.buf)], r.d.b)
	m, err := io.ReadAtLeast(r.src, r.buf[n:cap(r.buf)], min(want, cap(r.buf))-n)
	r.win = r.buf[:n+m]
	r.d.b = r.win
	switch err {
	case nil:
	case io.EOF, io.ErrUnexpectedEOF: // src's own end, as ReadAtLeast tells it
		r.src = nil
	default:
		return err
	}
	return nil
}

// JSONReader reads a snapshot in the JSON form (WriteJSON, json.Marshal)
// one goroutine at a time, as encoding/json's token stream, for stores
// written before the binary form. It decodes what json.Unmarshal decodes
// into a Snapshot, except that the goroutine list may appear only once.
type JSONReader struct {
	dec *json.Decoder
	// fields are the members of the snapshot object read so far, other
	// than the goroutine list, each preceded by a comma.
	fields []byte
	head   Snapshot
	// inList is set while the goroutine list is being read; listed once
	// it was seen.
	inList, listed bool
	n              int
	g              Goroutine
	err            error
}

var _ Stream = (*JSONReader)(nil)

// NewJSONReader reads the JSON snapshot of src up to its goroutine list.
// Header then holds the members that precede the list, which in the form
// WriteJSON writes are all but dropped and sample_stride: those are read
// when Next reaches them, after the last goroutine.
func NewJSONReader(src io.Reader) (*JSONReader, error) {
	r := &JSONReader{dec: json.NewDecoder(src)}
	t, err := r.dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decode JSON snapshot: %w", err)
	}
	if t != json.Delim('{') {
		return nil, fmt.Errorf("decode JSON snapshot: starts with %v, not an object", t)
	}
	if err := r.members(); err != nil {
		return nil, fmt.Errorf("decode JSON snapshot: %w", err)
	}
	return r, nil
}

// Header returns the snapshot's fields (see Stream and NewJSONReader).
func (r *JSONReader) Header() *Snapshot { return &r.head }

// Next returns the next goroutine, or io.EOF after the last one (see Stream).
func (r *JSONReader) Next() (*Goroutine, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.inList {
		r.err = io.EOF
		return nil, r.err
	}
	if r.dec.More() {
		r.g = Goroutine{}
		if err := r.dec.Decode(&r.g); err != nil {
			r.err = fmt.Errorf("decode JSON snapshot: goroutine %d: %w", r.n+1, err)
			return nil, r.err
		}
		r.n++
		return &r.g, nil
	}
	if _, err := r.dec.Token(); err != nil { // the list's ]
		r.err = fmt.Errorf("decode JSON snapshot: after goroutine %d: %w", r.n, err)
		return nil, r.err
	}
	r.inList = false
	if err := r.members(); err != nil {
		r.err = fmt.Errorf("decode JSON snapshot: after the goroutines: %w", err)
		return nil, r.err
	}
	r.err = io.EOF
	return nil, r.err
}

// members reads the snapshot object's members up to the start of the
// goroutine list or the end of the object (and of the data), then decodes
// the header from those read.
func (r *JSONReader) members() error {
	for r.dec.More() {
		t, err := r.dec.Token()
		if err != nil {
			return err
		}
		key, ok := t.(string)
		if !ok {
			return fmt.Errorf("member name %v is not a string", t)
		}
		if strings.EqualFold(key, "goroutines") { // json.Unmarshal matches names so
			return r.list()
		}
		var v json.RawMessage
		if err := r.dec.Decode(&v); err != nil {
			return fmt.Errorf("member %q: %w", key, err)
		}
		k, err := json.Marshal(key)
		if err != nil {
			return err
		}
		r.fields = append(append(append(append(r.fields, ','), k...), ':'), v...)
	}
	if _, err := r.dec.Token(); err != nil { // the object's }
		return err
	}
	if t, err := r.dec.Token(); err != io.EOF {
		if err != nil {
			return err
		}
		return fmt.Errorf("data after the snapshot object: %v", t)
	}
	return r.decodeHeader()
}

// list reads the start of the goroutine list: null, or [ to read from.
func (r *JSONReader) list() error {
	if r.listed {
		return errors.New("a second goroutine list")
	}
	r.listed = true
	t, err := r.dec.Token()
	if err != nil {
		return err
	}
	switch t {
	case nil:
		r.head.Goroutines = nil
		return r.members()
	case json.Delim('['):
		r.head.Goroutines = []Goroutine{}
		r.inList = true
		return r.decodeHeader()
	}
	return fmt.Errorf("goroutines is %v, not a list", t)
}

// decodeHeader sets the header's fields from the members read so far.
func (r *JSONReader) decodeHeader() error {
	obj := make([]byte, 0, len(r.fields)+2)
	obj = append(obj, '{')
	if len(r.fields) > 0 {
		obj = append(obj, r.fields[1:]...)
	}
	obj = append(obj, '}')
	var h Snapshot
	if err := json.Unmarshal(obj, &h); err != nil {
		return err
	}
	h.Goroutines = r.head.Goroutines
	r.head = h
	return nil
}

// WriteJSONStream writes what WriteJSON writes for the snapshot that has
// head's fields and the goroutines next returns until io.EOF: a list when
// head.Goroutines is not nil, else null (next must then return none). It
// marshals the members the JSON form puts before the list when it starts
// and those after it (dropped, sample_stride) once next returned io.EOF,
// so that a Stream may fill those in as it reads (JSONReader does).
// Goroutines are encoded one at a time into a reused buffer.
func WriteJSONStream(w io.Writer, head *Snapshot, next func() (*Goroutine, error)) error {
	before, _, err := jsonAround(head)
	if err != nil {
		return err
	}
	listed := head.Goroutines != nil
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(before)
	if listed {
		bw.WriteByte('[')
	} else {
		bw.WriteString("null")
	}
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	for n := 0; ; n++ {
		g, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !listed {
			return errors.New("write JSON snapshot: a goroutine for a snapshot whose list is null")
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		one.Reset()
		if err := enc.Encode(g); err != nil {
			return fmt.Errorf("write JSON snapshot: goroutine %d: %w", g.ID, err)
		}
		if _, err := bw.Write(bytes.TrimSuffix(one.Bytes(), []byte{'\n'})); err != nil {
			return err
		}
	}
	if listed {
		bw.WriteByte(']')
	}
	_, after, err := jsonAround(head)
	if err != nil {
		return err
	}
	bw.Write(after)
	bw.WriteByte('\n')
	return bw.Flush()
}

// jsonAround returns the JSON form of s without its goroutines, split
// around the goroutine list's value: what precedes it and what follows.
func jsonAround(s *Snapshot) (before, after []byte, err error) {
	h := *s
	h.Goroutines = nil
	b, err := json.Marshal(&h)
	if err != nil {
		return nil, nil, fmt.Errorf("write JSON snapshot: %w", err)
	}
	// The list is never the first member, and a string holding this text
	// would have its quotes escaped: this is the member itself.
	const member = `,"goroutines":null`
	i := bytes.Index(b, []byte(member))
	if i < 0 {
		return nil, nil, fmt.Errorf("write JSON snapshot: no %s member in %.80s", member[1:], b)
	}
	return b[:i+len(member)-len("null")], b[i+len(member):], nil
}

// WriteFoldedStream writes what WriteFolded writes for a snapshot whose
// goroutines next returns until io.EOF, holding a count per distinct
// folded stack only. Its stacks are WriteFolded's: state and wait reason,
// then the frames root first.
func WriteFoldedStream(w io.Writer, next func() (*Goroutine, error)) error {
	counts := map[string]*int64{} // updated through a lookup, which does not copy its key
	var key []byte
	for {
		g, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		key = append(key[:0], g.State...)
		if g.WaitReason != "" {
			key = append(append(key, ": "...), g.WaitReason...)
		}
		for j := len(g.Frames) - 1; j >= 0; j-- {
			key = append(append(key, ';'), FoldedName(g.Frames[j].Function)...)
		}
		if n := counts[string(key)]; n != nil {
			*n++
		} else {
			one := int64(1)
			counts[string(key)] = &one
		}
	}
	f := make(Folded, len(counts))
	for k, n := range counts {
		f[k] = *n
	}
	return f.Write(w)
}
