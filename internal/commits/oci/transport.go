package oci

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

// instrumented records one client span per HTTP request to a registry or its token service, a child of the
// request's context. Attributes carry the method, URL template, host and status, never headers, queries,
// repository names or digests.
type instrumented struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

// RoundTrip also turns a panic below it into an error: go-containerregistry sends some requests (the
// registry ping) from goroutines of its own, where no caller could recover it.
func (t *instrumented) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("oci: request failed: %v: %w", r, commits.ErrBadResponse)
		}
	}()
	tmpl := urlTemplate(req.URL.Path)
	ctx, span := t.tracer.Start(req.Context(), "oci "+req.Method+" "+tmpl,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(req.Method),
			semconv.URLTemplate(tmpl),
			semconv.ServerAddress(req.URL.Hostname()),
		))
	defer span.End()
	resp, err = t.base.RoundTrip(req.WithContext(ctx))
	switch {
	case err != nil:
		span.SetAttributes(semconv.ErrorTypeOther)
		span.SetStatus(codes.Error, "transport error")
	default:
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		// 401 is the auth challenge every anonymous ping and first request gets; 404 is an answer.
		if resp.StatusCode >= 400 && resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
			span.SetStatus(codes.Error, resp.Status)
		}
	}
	return resp, err
}

// urlTemplate maps a distribution API path (/v2/<name>/<kind>/<reference>, where name may hold slashes
// and reference does not) to its spec template; any other path is a token service.
func urlTemplate(p string) string {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "/{token}"
	}
	if rest == "" {
		return "/v2/"
	}
	parts := strings.Split(rest, "/")
	if n := len(parts); n >= 3 {
		switch kind := parts[n-2]; kind {
		case "manifests", "blobs", "tags", "referrers":
			return "/v2/{name}/" + kind + "/{reference}"
		case "uploads":
			return "/v2/{name}/blobs/uploads/{uuid}"
		}
	}
	return "/v2/{…}"
}
