package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler returns a slog.Handler that passes every record to next with its message and attributes redacted by
// Text: strings, errors, values that log themselves (slog.LogValuer), groups, and any other value whose
// printed form holds something to redact (then logged as that redacted text). Install it once, around the
// process's root handler, so every log line and every bridged log record takes this path.
func Handler(next slog.Handler) slog.Handler {
	if h, ok := next.(handler); ok {
		return h
	}
	return handler{next: next}
}

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(Attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	redacted := make([]slog.Attr, len(as))
	for i, a := range as {
		redacted[i] = Attr(a)
	}
	return handler{next: h.next.WithAttrs(redacted)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{next: h.next.WithGroup(name)} }

// Attr returns a with its value redacted as Handler does.
func Attr(a slog.Attr) slog.Attr {
	a.Value = value(a.Value)
	return a
}

func value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(Text(v.String()))
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		for i, a := range group {
			out[i] = Attr(a)
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.StringValue(Text(errorText(err)))
		}
		// Structured values keep their shape unless their printed form holds something to redact.
		printed := fmt.Sprintf("%+v", v.Any())
		if redacted := Text(printed); redacted != printed {
			return slog.StringValue(redacted)
		}
	}
	return v
}

// errorText is err.Error(), or a note when that panics (a nil pointer held in an error interface).
func errorText(err error) (s string) {
	defer func() {
		if recover() != nil {
			s = fmt.Sprintf("%T (Error panicked)", err)
		}
	}()
	return err.Error()
}
