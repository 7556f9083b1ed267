package ledger

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func FuzzDecode(f *testing.F) {
	f.Add(`{"kind":"Kustomization","namespace":"a","name":"b","revision":"main@sha1:0123","recorded":"main@sha1:0123","updatedAt":"2026-11-01T12:00:00Z"}`)
	f.Add(`{"k":"Kustomization","s":"a","n":"b","r":"main@sha1:0123","m":"main@sha1:4567","x":"sha256:00","t":1793534400,"w":"0123456789ab"}`)
	f.Add(`{"k":"Kustomization","n":"b","r":"main@sha1:0123","u":"main@sha1:4567","v":1793534400}`)
	f.Add(`{"k":"K","n":"b","r":"x","u":1,"v":"soon"}`)
	f.Add(`{"k":"K","n":"b","r":"main@sha1:0123","h":[["0123",1793534400],["4567",1793534460]]}`)
	f.Add(`{"k":"K","n":"b","r":"x","h":[["a"],[1,2],null,["b","c"]]}`)
	f.Add(`{"k":"HelmRelease","n":"b","r":"1.2.3","kind":"Kustomization","t":-62135596800}`)
	f.Add(`{"k":"K","n":"b","r":"x","t":1e400}`)
	f.Add(`null`)
	f.Add(`{"kind":1}`)
	f.Add(`{"updatedAt":"yesterday"}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, raw string) {
		e, ok, err := decode(raw)
		if err != nil && ok {
			t.Fatalf("decode(%q) = ok and error %v", raw, err)
		}
		if ok && (e.Kind == "" || e.Name == "" || e.Revision == "" || len(raw) > MaxEntryBytes) {
			t.Fatalf("decode(%q) accepted an unusable entry %+v", raw, e)
		}
		if ok && utf8.ValidString(raw) && e.Mark() == "" {
			t.Fatalf("decoded entry without a mark: %+v", e)
		}
		if !ok {
			return
		}
		// What is read is written back compactly and read again as the same checkpoint, to the second.
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("encode %+v: %v", e, err)
		}
		if len(again) > MaxEntryBytes {
			return
		}
		back, ok, err := decode(string(again))
		if err != nil || !ok || !back.SameCheckpoint(e) || back.Writer != e.Writer || back.UpdatedAt.Unix() != e.UpdatedAt.Unix() {
			t.Fatalf("decode(encode(%+v)) = %+v, %v, %v", e, back, ok, err)
		}
	})
}

// A stored outbox item decodes to a usable item or an error, and what decodes is stored again the same.
func FuzzDecodeItem(f *testing.F) {
	f.Add("outbox.0123", `{"s":"webhook","t":1793534400000,"b":{"event":"landed"}}`)
	f.Add("outbox.", `{"s":"webhook","t":1,"b":{}}`)
	f.Add("outbox.x", `{"s":"","b":null}`)
	f.Add("outbox.x", `{"s":1}`)
	f.Add("outbox.x", `null`)
	f.Add("outbox.x", `{"s":"w","t":1e400,"b":1}`)
	f.Fuzz(func(t *testing.T, key, raw string) {
		it, err := decodeItem(key, raw)
		if err != nil {
			return
		}
		if it.ID == "" || it.Sink == "" || len(it.Body) == 0 {
			t.Fatalf("decodeItem(%q, %q) accepted an unusable item %+v", key, raw, it)
		}
		again, err := encodeItem(it)
		if err != nil {
			return // over the size limit once re-encoded
		}
		back, err := decodeItem(key, again)
		if err != nil || back.Sink != it.Sink || !back.Created.Equal(it.Created) || string(back.Body) != string(it.Body) {
			t.Fatalf("item %+v stored as %q reads back as %+v, %v", it, again, back, err)
		}
	})
}
