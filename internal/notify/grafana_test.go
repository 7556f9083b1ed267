package notify

import (
	"testing"
)

func FuzzParseAnnotations(f *testing.F) {
	for _, s := range []string{`[]`, `[{"id":1,"time":1,"timeEnd":2,"tags":["a"]}]`, `null`, `{}`, `[{"id":0}]`, `[{"id":"x"}]`, `[`, ` [{"id":9007199254740993}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		found, err := parseAnnotations([]byte(raw))
		if err != nil {
			return
		}
		for _, a := range found {
			if a.ID <= 0 {
				t.Fatalf("parseAnnotations(%q) accepted an annotation without an id: %+v", raw, a)
			}
		}
	})
}
