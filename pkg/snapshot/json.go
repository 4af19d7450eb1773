package snapshot

import (
	"encoding/json"
	"io"
)

// WriteJSON writes s in goroscope's JSON snapshot form (see docs/snapshot-json.md).
func WriteJSON(w io.Writer, s *Snapshot) error {
	enc := json.NewEncoder(w)
	return enc.Encode(s)
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
