package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readStream reads a Stream to the end into a snapshot, as DecodeBinary
// would return it; the header is taken at the end (JSONReader fills in
// members that follow the list).
func readStream(st Stream) (*Snapshot, error) {
	var gs []Goroutine
	for {
		g, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		gs = append(gs, KeepGoroutine(g))
	}
	s := *st.Header()
	if s.Goroutines != nil {
		s.Goroutines = append(s.Goroutines, gs...)
	}
	return &s, nil
}

// snapshotDiff describes the first difference of two snapshots, "" if none.
func snapshotDiff(got, want *Snapshot) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	if len(got.Goroutines) != len(want.Goroutines) || (got.Goroutines == nil) != (want.Goroutines == nil) {
		return fmt.Sprintf("%d goroutines (nil %t), want %d (nil %t)", len(got.Goroutines), got.Goroutines == nil, len(want.Goroutines), want.Goroutines == nil)
	}
	for i := range got.Goroutines {
		if !reflect.DeepEqual(got.Goroutines[i], want.Goroutines[i]) {
			return fmt.Sprintf("goroutine %d:\n got %+v\nwant %+v", i, got.Goroutines[i], want.Goroutines[i])
		}
	}
	g, w := *got, *want
	g.Goroutines, w.Goroutines = nil, nil
	return fmt.Sprintf("header:\n got %+v\nwant %+v", g, w)
}

// binaryReaders opens data with NewBinaryReader and with
// NewBinaryStreamReader over readers that return it in pieces.
func binaryReaders(data []byte) map[string]func() (*BinaryReader, error) {
	return map[string]func() (*BinaryReader, error){
		"bytes":  func() (*BinaryReader, error) { return NewBinaryReader(data) },
		"stream": func() (*BinaryReader, error) { return NewBinaryStreamReader(bytes.NewReader(data)) },
		"halves": func() (*BinaryReader, error) { return NewBinaryStreamReader(iotest.HalfReader(bytes.NewReader(data))) },
		"bytewise": func() (*BinaryReader, error) {
			return NewBinaryStreamReader(iotest.OneByteReader(bytes.NewReader(data)))
		},
	}
}

// bigCases are snapshots whose binary form exceeds a streaming reader's
// window: many goroutines, new long strings throughout, and a stack
// whose record alone is larger than the window.
func bigCases() []Snapshot {
	deep := make([]Frame, 3000)
	for i := range deep {
		deep[i] = Frame{Function: fmt.Sprintf("main.deep%04d%s", i, strings.Repeat("x", 40)), File: "/src/deep.go", Line: i, PC: uint64(0x1000 + i)}
	}
	var gs []Goroutine
	for i := range 20000 {
		g := Goroutine{ID: uint64(i + 1), State: StateWaiting, WaitReason: "chan receive", WaitingSeconds: float64(i % 97),
			CreatedBy: &Frame{Function: "main.spawn", File: "/src/main.go", Line: 3},
			Labels:    map[string]string{"req": fmt.Sprintf("r%d", i%300)},
			Frames:    []Frame{{Function: fmt.Sprintf("main.f%d", i%500), File: "/src/f.go", Line: i % 7, PC: uint64(i % 500)}}}
		if i%50 == 0 {
			g.BlockedOn = &BlockedOn{Kind: BlockedOnChan, Address: fmt.Sprintf("0x%x", 0xc000000000+i), Receivers: 1}
		}
		if i == 7000 {
			g.Frames = deep
		}
		gs = append(gs, g)
	}
	return []Snapshot{{PID: 77, Exe: "/app", Counts: Counts{Waiting: len(gs)}, Goroutines: gs}}
}

// TestBinaryReaderEqualsDecodeBinary: reading goroutine by goroutine, from
// bytes or a reader, gives what DecodeBinary gives.
func TestBinaryReaderEqualsDecodeBinary(t *testing.T) {
	for i, s := range append(binaryCases(), bigCases()...) {
		data := AppendBinary(nil, &s)
		want, err := DecodeBinary(data)
		if err != nil {
			t.Fatal(err)
		}
		for name, open := range binaryReaders(data) {
			t.Run(fmt.Sprint(i, name), func(t *testing.T) {
				r, err := open()
				if err != nil {
					t.Fatal(err)
				}
				if r.Len() != len(want.Goroutines) {
					t.Errorf("Len %d, want %d", r.Len(), len(want.Goroutines))
				}
				got, err := readStream(r)
				if err != nil {
					t.Fatal(err)
				}
				if d := snapshotDiff(got, want); d != "" {
					t.Errorf("read differs from DecodeBinary: %s", d)
				}
				if _, err := r.Next(); err != io.EOF {
					t.Errorf("Next after the end: %v, want io.EOF", err)
				}
			})
		}
	}
}

// TestBinaryReaderBadInput: what DecodeBinary rejects, the reader rejects
// (at the header or at some Next), from bytes or a reader.
func TestBinaryReaderBadInput(t *testing.T) {
	cases := binaryCases()
	data := AppendBinary(nil, &cases[2])
	big := bigCases()
	bigData := AppendBinary(nil, &big[0])
	inputs := map[string][]byte{
		"empty":         nil,
		"json":          []byte(`{"pid":1}`),
		"trailing":      append(append([]byte{}, data...), 0),
		"huge count":    hugeCount(),
		"bad reference": append([]byte(binaryMagic), 0, 2, 5),
		"big truncated": bigData[:len(bigData)-100],
		"big trailing":  append(append([]byte{}, bigData...), 1, 2, 3),
	}
	for n := range len(data) {
		inputs[fmt.Sprint("first ", n)] = data[:n]
	}
	for name, in := range inputs {
		if _, err := DecodeBinary(in); err == nil {
			t.Fatalf("%s: DecodeBinary succeeded", name)
		}
		for how, open := range binaryReaders(in) {
			if how == "bytewise" && len(in) > 1000 {
				continue
			}
			r, err := open()
			if err == nil {
				_, err = readStream(r)
			}
			if err == nil || err == io.EOF {
				t.Errorf("%s (%s): read without error", name, how)
			}
		}
	}
}

// TestBinaryReaderSourceError: the data source's error is returned, wrapped.
func TestBinaryReaderSourceError(t *testing.T) {
	big := bigCases()
	data := AppendBinary(nil, &big[0])
	boom := errors.New("boom")
	r, err := NewBinaryStreamReader(io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readStream(r); !errors.Is(err, boom) {
		t.Errorf("read: %v, want %v wrapped", err, boom)
	}
}

// TestJSONReader: reading the JSON form goroutine by goroutine gives what
// json.Unmarshal gives, whatever the order of the members.
func TestJSONReader(t *testing.T) {
	inputs := map[string]string{
		"no list":          `{"pid":3,"counts":{"running":1}}`,
		"null list":        `{"pid":3,"goroutines":null,"dropped":2}`,
		"empty list":       `{"pid":3,"goroutines":[]}`,
		"list first":       `{"goroutines":[{"id":1,"state":"running"},null],"pid":3,"Exe":"/x","sample_stride":4}`,
		"nested unknowns":  ` {"pid":3,"extra":{"goroutines":[1]},"goroutines":[{"id":2,"labels":{"a":"b"},"frames":[]}]} `,
		"case-insensitive": `{"PID":3,"Goroutines":[{"id":9}]}`,
	}
	for i, s := range append(binaryCases(), bigCases()...) {
		var b bytes.Buffer
		if err := WriteJSON(&b, &s); err != nil {
			t.Fatal(err)
		}
		inputs[fmt.Sprint("case ", i)] = b.String()
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var want Snapshot
			if err := json.Unmarshal([]byte(in), &want); err != nil {
				t.Fatal(err)
			}
			r, err := NewJSONReader(iotest.HalfReader(strings.NewReader(in)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readStream(r)
			if err != nil {
				t.Fatal(err)
			}
			if d := snapshotDiff(got, &want); d != "" {
				t.Errorf("read differs from json.Unmarshal: %s", d)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"pid":1`, `{"pid":1,"goroutines":[{"id":1}`, `{"goroutines":7}`,
		`{"goroutines":[],"goroutines":[]}`, `{"pid":1} {}`, `{"goroutines":[{"id":"x"}]}`} {
		r, err := NewJSONReader(strings.NewReader(bad))
		if err == nil {
			_, err = readStream(r)
		}
		if err == nil {
			t.Errorf("%q: read without error", bad)
		}
	}
}

// TestWriteJSONStream: writing from a Stream gives WriteJSON's bytes, for
// every snapshot read from its binary and from its JSON form.
func TestWriteJSONStream(t *testing.T) {
	for i, s := range append(binaryCases(), bigCases()...) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var want bytes.Buffer
			if err := WriteJSON(&want, &s); err != nil {
				t.Fatal(err)
			}
			br, err := NewBinaryReader(AppendBinary(nil, &s))
			if err != nil {
				t.Fatal(err)
			}
			jr, err := NewJSONReader(bytes.NewReader(want.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			for name, st := range map[string]Stream{"binary": br, "json": jr} {
				var got bytes.Buffer
				if err := WriteJSONStream(&got, st.Header(), st.Next); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("%s: WriteJSONStream differs from WriteJSON:\n got %.300s\nwant %.300s", name, got.Bytes(), want.Bytes())
				}
			}
		})
	}
}

// TestWriteFoldedStream: folding from a Stream gives WriteFolded's bytes.
func TestWriteFoldedStream(t *testing.T) {
	for i, s := range append(binaryCases(), bigCases()...) {
		var want, got bytes.Buffer
		if err := WriteFolded(&want, &s); err != nil {
			t.Fatal(err)
		}
		r, err := NewBinaryReader(AppendBinary(nil, &s))
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFoldedStream(&got, r.Next); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("case %d: WriteFoldedStream differs from WriteFolded:\n got %.300s\nwant %.300s", i, got.Bytes(), want.Bytes())
		}
	}
}

func FuzzBinaryReader(f *testing.F) {
	for _, s := range binaryCases() {
		f.Add(AppendBinary(nil, &s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := DecodeBinary(data)
		for name, open := range binaryReaders(data) {
			r, err := open()
			var got *Snapshot
			if err == nil {
				got, err = readStream(r)
			}
			if (err != nil) != (werr != nil) {
				t.Fatalf("%s: reader error %v, DecodeBinary error %v", name, err, werr)
			}
			if err == nil {
				if d := snapshotDiff(got, want); d != "" {
					t.Fatalf("%s: reader differs from DecodeBinary: %s", name, d)
				}
			}
		}
	})
}
