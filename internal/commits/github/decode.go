package github

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/revision"
)

// The decoders below read only the fields the tracker uses, in GitHub's REST shapes, and reject a body that
// is empty, null, truncated, wrongly typed or missing one of them with an error wrapping
// commits.ErrBadResponse. Nothing is trusted: SHAs must be full object names and times must be present.

type signatureJSON struct {
	Name  string     `json:"name"`
	Email string     `json:"email"`
	Date  *time.Time `json:"date"`
}

type gitCommitJSON struct {
	Message   string         `json:"message"`
	Author    *signatureJSON `json:"author"`
	Committer *signatureJSON `json:"committer"`
}

type parentJSON struct {
	SHA string `json:"sha"`
}

type commitJSON struct {
	SHA     string         `json:"sha"`
	Commit  *gitCommitJSON `json:"commit"`
	Parents []*parentJSON  `json:"parents"`
}

type compareJSON struct {
	Status       *string       `json:"status"`
	TotalCommits *int          `json:"total_commits"`
	Commits      []*commitJSON `json:"commits"`
}

type contentJSON struct {
	Type     *string `json:"type"`
	Size     *int64  `json:"size"`
	Encoding *string `json:"encoding"`
	Content  *string `json:"content"`
}

func badResponse(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), commits.ErrBadResponse)
}

// unmarshal decodes raw into v, refusing an empty or null body.
func unmarshal(raw []byte, v any, what string) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return badResponse("%s: empty body", what)
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return badResponse("%s: null body", what)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return badResponse("%s: %v", what, err)
	}
	return nil
}

// decodeCommit maps the body of GET /repos/{owner}/{repo}/commits/{ref}.
func decodeCommit(raw []byte) (commits.Commit, error) {
	var rc commitJSON
	if err := unmarshal(raw, &rc, "commit"); err != nil {
		return commits.Commit{}, err
	}
	return toCommit(&rc)
}

// decodeCommitList maps the body of GET /repos/{owner}/{repo}/commits: an array of commits, newest first.
func decodeCommitList(raw []byte) ([]commits.Commit, error) {
	var list []*commitJSON
	if err := unmarshal(raw, &list, "commit list"); err != nil {
		return nil, err
	}
	out := make([]commits.Commit, 0, len(list))
	for i, rc := range list {
		c, err := toCommit(rc)
		if err != nil {
			return nil, fmt.Errorf("commit list: commit %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// compare is the part of a compare answer the range walk needs.
type compare struct {
	status  commits.RangeStatus
	total   int
	commits []commits.Commit
}

// decodeCompare maps the body of GET /repos/{owner}/{repo}/compare/{base}...{head}.
func decodeCompare(raw []byte) (compare, error) {
	var cj compareJSON
	if err := unmarshal(raw, &cj, "compare"); err != nil {
		return compare{}, err
	}
	if cj.Status == nil {
		return compare{}, badResponse("compare: no status")
	}
	out := compare{status: commits.RangeStatus(*cj.Status)}
	switch out.status {
	case commits.Ahead, commits.Identical, commits.Behind, commits.Diverged:
	default:
		return compare{}, badResponse("compare: unknown status %s", revision.Quote(*cj.Status))
	}
	if cj.TotalCommits == nil || *cj.TotalCommits < 0 {
		return compare{}, badResponse("compare: total_commits missing or negative")
	}
	out.total = *cj.TotalCommits
	out.commits = make([]commits.Commit, 0, len(cj.Commits))
	for i, rc := range cj.Commits {
		c, err := toCommit(rc)
		if err != nil {
			return compare{}, fmt.Errorf("compare: commit %d: %w", i, err)
		}
		out.commits = append(out.commits, c)
	}
	return out, nil
}

// file is a contents API answer: a file's metadata and, unless encoding is "none", its content.
type file struct {
	dir      bool // a directory listing, or an entry that is not a file
	size     int64
	encoding string
	data     []byte
}

// decodeContents maps the body of GET /repos/{owner}/{repo}/contents/{path}: a file object, or a
// directory listing (an array), which is reported as dir. Inline content is decoded and must have the size
// GitHub announced.
func decodeContents(raw []byte) (file, error) {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(t, &list); err != nil {
			return file{}, badResponse("contents: %v", err)
		}
		return file{dir: true}, nil
	}
	var cj contentJSON
	if err := unmarshal(raw, &cj, "contents"); err != nil {
		return file{}, err
	}
	if cj.Type == nil {
		return file{}, badResponse("contents: no type")
	}
	if *cj.Type != "file" {
		return file{dir: true}, nil
	}
	if cj.Size == nil || *cj.Size < 0 {
		return file{}, badResponse("contents: size missing or negative")
	}
	f := file{size: *cj.Size}
	if cj.Encoding != nil {
		f.encoding = *cj.Encoding
	}
	var content string
	if cj.Content != nil {
		content = *cj.Content
	}
	switch f.encoding {
	case "none":
		return f, nil // over 1 MB: the contents API serves it only raw
	case "base64":
		data, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return file{}, badResponse("contents: %v", err)
		}
		f.data = data
	case "":
		f.data = []byte(content)
	default:
		return file{}, badResponse("contents: unknown encoding %s", revision.Quote(f.encoding))
	}
	if int64(len(f.data)) != f.size {
		return file{}, badResponse("contents: %d bytes of content, size says %d", len(f.data), f.size)
	}
	return f, nil
}

// toCommit maps one commit object of the commits or compare API.
func toCommit(rc *commitJSON) (commits.Commit, error) {
	if rc == nil {
		return commits.Commit{}, badResponse("commit: null")
	}
	if !isSHA(rc.SHA) {
		return commits.Commit{}, badResponse("commit: sha %s is not a full object name", revision.Quote(rc.SHA))
	}
	gc := rc.Commit
	if gc == nil {
		return commits.Commit{}, badResponse("commit %s: no commit object", rc.SHA)
	}
	if gc.Author == nil || gc.Author.Date == nil || gc.Author.Date.IsZero() {
		return commits.Commit{}, badResponse("commit %s: no author date", rc.SHA)
	}
	if gc.Committer == nil || gc.Committer.Date == nil || gc.Committer.Date.IsZero() {
		return commits.Commit{}, badResponse("commit %s: no committer date", rc.SHA)
	}
	c := commits.Commit{
		SHA:           rc.SHA,
		Message:       gc.Message,
		AuthorName:    gc.Author.Name,
		AuthorEmail:   gc.Author.Email,
		AuthorTime:    *gc.Author.Date,
		CommitterTime: *gc.Committer.Date,
	}
	for i, parent := range rc.Parents {
		if parent == nil || !isSHA(parent.SHA) {
			return commits.Commit{}, badResponse("commit %s: parent %d is not a full object name", rc.SHA, i)
		}
		c.Parents = append(c.Parents, parent.SHA)
	}
	return c, nil
}
