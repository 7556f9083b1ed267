package notify

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/outbox"
)

// exchange sends req and returns the answer's body (at most 1 MiB). A 2xx answer is success; 408, 429, 5xx, the
// codes in retried and network errors are errors the outbox retries; any other answer wraps outbox.ErrRefused.
// Errors name what, never the URL, which is often the credential.
func exchange(client *http.Client, req *http.Request, what string, retried ...int) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req.Header.Set("User-Agent", "flux-commit-tracker")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", what, err)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return body, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500, slices.Contains(retried, code):
		return nil, fmt.Errorf("%s: answered %s", what, resp.Status)
	default:
		return nil, fmt.Errorf("%s: answered %s: %w", what, resp.Status, outbox.ErrRefused)
	}
}
