package redact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/redact"
)

// loggable logs itself with a URL holding a password.
type loggable struct{}

func (loggable) LogValue() slog.Value { return slog.StringValue("https://u:CANARY1@host/logvaluer") }

// nilErr is an error whose Error panics on a nil receiver.
type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(redact.Handler(slog.NewJSONHandler(&buf, nil)))
	log = log.With("source_url", "https://u:CANARY1@host/with").WithGroup("g")
	type repo struct{ URL string }
	log.InfoContext(context.Background(), "fetch https://u:CANARY1@host/msg?token=CANARY2 failed",
		"url", "https://host/r?token=CANARY2",
		"error", errors.New("clone oauth2:CANARY1@gitlab.com:g/r"),
		"valuer", loggable{},
		"struct", repo{URL: "https://u:CANARY1@host/struct"},
		"plain", repo{URL: "https://host/plain"},
		"nested", slog.GroupValue(slog.String("deep", "password=CANARY3")),
		"count", 3,
		"nilerr", (*nilErr)(nil),
	)
	out := buf.String()
	for _, canary := range []string{"CANARY1", "CANARY2", "CANARY3"} {
		if strings.Contains(out, canary) {
			t.Errorf("log line holds %s: %s", canary, out)
		}
	}
	var line struct {
		Msg       string `json:"msg"`
		SourceURL string `json:"source_url"`
		G         struct {
			URL    string          `json:"url"`
			Error  string          `json:"error"`
			Valuer string          `json:"valuer"`
			Struct string          `json:"struct"`
			Plain  json.RawMessage `json:"plain"`
			Nested struct {
				Deep string `json:"deep"`
			} `json:"nested"`
			Count int `json:"count"`
		} `json:"g"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	checks := map[string][2]string{
		"msg":        {line.Msg, "fetch https://host/msg?REDACTED failed"},
		"source_url": {line.SourceURL, "https://host/with"},
		"url":        {line.G.URL, "https://host/r?REDACTED"},
		"error":      {line.G.Error, "clone REDACTED@gitlab.com:g/r"},
		"valuer":     {line.G.Valuer, "https://host/logvaluer"},
		"struct":     {line.G.Struct, "{URL:https://host/struct}"},
		"plain":      {string(line.G.Plain), `{"URL":"https://host/plain"}`},
		"nested":     {line.G.Nested.Deep, "password=REDACTED"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if line.G.Count != 3 {
		t.Errorf("count = %d, want 3: other kinds pass unchanged", line.G.Count)
	}
}

func TestHandlerEnabledAndOnce(t *testing.T) {
	inner := slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})
	h := redact.Handler(inner)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled does not follow the wrapped handler")
	}
	if redact.Handler(h) != h {
		t.Error("Handler wraps a redacting handler twice")
	}
}
