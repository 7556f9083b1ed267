package ledger

import (
	"testing"
	"unicode/utf8"
)

func FuzzDecode(f *testing.F) {
	f.Add(`{"kind":"Kustomization","namespace":"a","name":"b","revision":"main@sha1:0123","recorded":"main@sha1:0123","updatedAt":"2026-11-01T12:00:00Z"}`)
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
	})
}
