package commits

import (
	"fmt"
	"io"
	"net/url"
	"strings"
)

// URLOrigin returns scheme://host:port of u, lower-cased, with the scheme's default port made explicit: where a
// credential may be sent.
func URLOrigin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case SchemeHTTPS:
			port = "443"
		case SchemeHTTP:
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// CapBody fails a read of body past limit bytes with an error wrapping ErrBadResponse.
func CapBody(body io.ReadCloser, limit int64) io.ReadCloser {
	return &cappedBody{ReadCloser: body, left: limit, err: fmt.Errorf("answer over %d bytes: %w", limit, ErrBadResponse)}
}

type cappedBody struct {
	io.ReadCloser
	left int64
	err  error
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, b.err
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
