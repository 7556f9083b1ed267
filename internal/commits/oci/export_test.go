package oci

import "github.com/google/go-containerregistry/pkg/v1/remote"

// SetRetryBackoff shortens the registry retry backoff so tests of failing registries stay fast.
func SetRetryBackoff(c *Client, b remote.Backoff) { c.backoff = b }

// EntryBytes is what the cache counts for artifact a stored under the reference name key.
func EntryBytes(key string, a Artifact) int64 { return int64(len(key)) + entry{artifact: a}.bytes() }
