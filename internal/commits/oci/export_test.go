package oci

import "github.com/google/go-containerregistry/pkg/v1/remote"

// SetRetryBackoff shortens the registry retry backoff so tests of failing registries stay fast.
func SetRetryBackoff(c *Client, b remote.Backoff) { c.backoff = b }
