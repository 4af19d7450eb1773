package snapshot

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
)

// WriteJSON writes s in goroscope's JSON snapshot form (see
// docs/snapshot-json.md), followed by a newline. It streams one goroutine
// at a time, so a snapshot of 100k goroutines is never held encoded in
// memory whole; the output equals json.Marshal(s).
func WriteJSON(w io.Writer, s *Snapshot) error {
	head := *s
	head.Goroutines, head.Dropped, head.Stride = nil, 0, 0
	b, err := json.Marshal(&head)
	if err != nil {
		return err
	}
	// b ends in `"goroutines":null}`: reopen it to stream the list.
	const tail = `"goroutines":null}`
	if len(b) < len(tail) || string(b[len(b)-len(tail):]) != tail {
		return json.NewEncoder(w).Encode(s) // a changed struct layout: the slow way
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if s.Goroutines == nil {
		bw.Write(b[:len(b)-1])
	} else {
		bw.Write(b[:len(b)-len(tail)])
		bw.WriteString(`"goroutines":[`)
	}
	for i := range s.Goroutines {
		if i > 0 {
			bw.WriteByte(',')
		}
		g, err := json.Marshal(&s.Goroutines[i])
		if err != nil {
			return err
		}
		bw.Write(g)
	}
	if s.Goroutines != nil {
		bw.WriteByte(']')
	}
	if s.Dropped != 0 {
		bw.WriteString(`,"dropped":` + strconv.Itoa(s.Dropped))
	}
	if s.Stride != 0 {
		bw.WriteString(`,"sample_stride":` + strconv.Itoa(s.Stride))
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// MarshalJSON writes channel facts only for channels: a sync wait has just
// its kind and address.
func (b BlockedOn) MarshalJSON() ([]byte, error) {
	if b.Kind != BlockedOnChan {
		return json.Marshal(struct {
			Kind    string `json:"kind"`
			Address string `json:"address"`
		}{b.Kind, b.Address})
	}
	type plain BlockedOn
	return json.Marshal(plain(b))
}
