package forge

import (
	"errors"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

func FuzzDecodeGitLabStatuses(f *testing.F) {
	for _, seed := range []string{
		`[{"id":12,"sha":"abc","ref":"main","status":"success","name":"flux/apps","target_url":null,"description":"ok","created_at":"2024-01-01T00:00:00.000Z"}]`,
		`[]`, `null`, ``, `[null]`, `[{"id":"1"}]`, `[{"id":1,"status":"","name":"x"}]`, `{"message":"401 Unauthorized"}`, `[{"id":1,"status":"running","name":"x"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		list, err := decodeGitLabStatuses(raw)
		if err != nil {
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if list == nil {
			t.Fatal("nil list without an error")
		}
		for _, s := range list {
			if s.ID <= 0 || s.Status == "" {
				t.Fatalf("decoded an incomplete status %+v", s)
			}
		}
	})
}

func FuzzDecodeGiteaCombined(f *testing.F) {
	for _, seed := range []string{
		`{"state":"success","sha":"abc","total_count":1,"statuses":[{"id":3,"status":"success","context":"flux/apps","description":"ok","target_url":""}]}`,
		`{"state":"pending","sha":"abc","total_count":0,"statuses":null}`, `{"statuses":[{"id":1,"state":"failure","context":"c"}]}`,
		`null`, ``, `[]`, `{}`, `{"statuses":[null]}`, `{"total_count":-1,"sha":"x"}`, `{"sha":"x","statuses":[{"status":1}]}`, `{"sha":"x","statuses":[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cs, err := decodeGiteaCombined(raw)
		if err != nil {
			if !errors.Is(err, commits.ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if cs.TotalCount < 0 {
			t.Fatalf("negative total_count %d", cs.TotalCount)
		}
		for _, s := range cs.Statuses {
			if s.State == "" {
				t.Fatalf("decoded a status without a state %+v", s)
			}
			_ = fromGitea(s.State)
		}
	})
}
