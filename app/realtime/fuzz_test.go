package realtime

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeEnvelope: any client frame either decodes to an envelope with a
// bounded type, or is refused; it never panics, and what decodes re-encodes
// to the same type and data.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, seed := range []string{
		`{"type":"message.send","data":{"conversation_id":"x","text":"hi","client_id":"c1"}}`,
		`{"type":"heartbeat"}`, `{"type":""}`, `{}`, `[]`, `null`, `{"type":1}`, `{"type":"x","data":[1,2]}`,
		`{"type":"offer.accept","data":{"offer_id":"01900000-0000-7000-8000-000000000000"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		if env.Type == "" || len(env.Type) > MaxTypeLen {
			t.Fatalf("accepted type %q", env.Type)
		}
		var data any
		if len(env.Data) > 0 {
			if err := json.Unmarshal(env.Data, &data); err != nil {
				t.Fatalf("accepted data that is not JSON: %s", env.Data)
			}
		}
		out, err := Encode(env.Type, data)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := DecodeEnvelope(out)
		if err != nil || back.Type != env.Type {
			t.Fatalf("round trip %q → %q, %v", env.Type, back.Type, err)
		}
	})
}
