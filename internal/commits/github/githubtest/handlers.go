package githubtest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	commitDocs      = "https://docs.github.com/rest/commits/commits#get-a-commit"
	compareDocs     = "https://docs.github.com/rest/commits/commits#compare-two-commits"
	listCommitsDocs = "https://docs.github.com/rest/commits/commits#list-commits"
	contentsDocs    = "https://docs.github.com/rest/repos/contents#get-repository-content"
	// inlineContentLimit is the largest file the contents API returns inline; larger files come with encoding "none".
	inlineContentLimit = 1 << 20
	// unpagedCompareLimit is how many (newest) commits compare lists without page or per_page.
	unpagedCompareLimit = 250
)

type errorJSON struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
	Status           string `json:"status"`
}

type signatureJSON struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Date  string `json:"date"`
}

type refJSON struct {
	SHA string `json:"sha"`
	URL string `json:"url"`
}

type verificationJSON struct {
	Verified   bool    `json:"verified"`
	Reason     string  `json:"reason"`
	Signature  *string `json:"signature"`
	Payload    *string `json:"payload"`
	VerifiedAt *string `json:"verified_at"`
}

type gitCommitJSON struct {
	Author       signatureJSON    `json:"author"`
	Committer    signatureJSON    `json:"committer"`
	Message      string           `json:"message"`
	Tree         refJSON          `json:"tree"`
	URL          string           `json:"url"`
	CommentCount int              `json:"comment_count"`
	Verification verificationJSON `json:"verification"`
}

type parentJSON struct {
	SHA     string `json:"sha"`
	URL     string `json:"url"`
	HTMLURL string `json:"html_url"`
}

type statsJSON struct {
	Total     int `json:"total"`
	Additions int `json:"additions"`
	Deletions int `json:"deletions"`
}

type fileJSON struct {
	SHA         string `json:"sha"`
	Filename    string `json:"filename"`
	Status      string `json:"status"`
	Additions   int    `json:"additions"`
	Deletions   int    `json:"deletions"`
	Changes     int    `json:"changes"`
	BlobURL     string `json:"blob_url"`
	RawURL      string `json:"raw_url"`
	ContentsURL string `json:"contents_url"`
}

type commitJSON struct {
	SHA         string        `json:"sha"`
	NodeID      string        `json:"node_id"`
	Commit      gitCommitJSON `json:"commit"`
	URL         string        `json:"url"`
	HTMLURL     string        `json:"html_url"`
	CommentsURL string        `json:"comments_url"`
	// Author and Committer are the GitHub accounts behind the git identities; the fake knows none.
	Author    *struct{}    `json:"author"`
	Committer *struct{}    `json:"committer"`
	Parents   []parentJSON `json:"parents"`
	Stats     *statsJSON   `json:"stats,omitempty"`
	Files     []fileJSON   `json:"files,omitempty"`
}

type compareJSON struct {
	URL             string       `json:"url"`
	HTMLURL         string       `json:"html_url"`
	PermalinkURL    string       `json:"permalink_url"`
	DiffURL         string       `json:"diff_url"`
	PatchURL        string       `json:"patch_url"`
	BaseCommit      commitJSON   `json:"base_commit"`
	MergeBaseCommit commitJSON   `json:"merge_base_commit"`
	Status          string       `json:"status"`
	AheadBy         int          `json:"ahead_by"`
	BehindBy        int          `json:"behind_by"`
	TotalCommits    int          `json:"total_commits"`
	Commits         []commitJSON `json:"commits"`
	Files           []fileJSON   `json:"files"`
}

type linksJSON struct {
	Self string `json:"self"`
	Git  string `json:"git"`
	HTML string `json:"html"`
}

type contentJSON struct {
	Type        string    `json:"type"`
	Encoding    string    `json:"encoding,omitempty"`
	Size        int       `json:"size"`
	Name        string    `json:"name"`
	Path        string    `json:"path"`
	Content     *string   `json:"content,omitempty"`
	SHA         string    `json:"sha"`
	URL         string    `json:"url"`
	GitURL      string    `json:"git_url"`
	HTMLURL     string    `json:"html_url"`
	DownloadURL *string   `json:"download_url"`
	Links       linksJSON `json:"_links"`
}

func jsonResponse(status int, v any) *response {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only fake-owned types are encoded
	}
	return &response{status: status, body: bytes.TrimSuffix(buf.Bytes(), []byte("\n"))}
}

func errorResponse(status int, message, docs string) *response {
	return jsonResponse(status, errorJSON{Message: message, DocumentationURL: docs, Status: strconv.Itoa(status)})
}

func (s *Server) commitJSON(r *http.Request, repo *Repo, c *commit, withFiles bool) commitJSON {
	api := baseURL(r) + "repos/" + repo.owner + "/" + repo.name
	web := webURL(r) + repo.owner + "/" + repo.name
	out := commitJSON{
		SHA:    c.sha,
		NodeID: "C_kwDO" + base64.RawURLEncoding.EncodeToString([]byte(c.sha[:18])),
		Commit: gitCommitJSON{
			Author:       signatureJSON{c.author.name, c.author.email, c.author.when.Format(time.RFC3339)},
			Committer:    signatureJSON{c.committer.name, c.committer.email, c.committer.when.Format(time.RFC3339)},
			Message:      strings.TrimSuffix(c.message, "\n"),
			Tree:         refJSON{SHA: c.treeSHA, URL: api + "/git/trees/" + c.treeSHA},
			URL:          api + "/git/commits/" + c.sha,
			Verification: verificationJSON{Reason: "unsigned"},
		},
		URL:         api + "/commits/" + c.sha,
		HTMLURL:     web + "/commit/" + c.sha,
		CommentsURL: api + "/commits/" + c.sha + "/comments",
		Parents:     []parentJSON{},
	}
	for _, p := range c.parents {
		out.Parents = append(out.Parents, parentJSON{SHA: p, URL: api + "/commits/" + p, HTMLURL: web + "/commit/" + p})
	}
	if withFiles {
		var before map[string]string
		if len(c.parents) > 0 {
			before = repo.commits[c.parents[0]].tree
		}
		out.Files = s.diff(r, repo, c.sha, before, c.tree)
		out.Stats = &statsJSON{}
		for _, f := range out.Files {
			out.Stats.Additions += f.Additions
			out.Stats.Deletions += f.Deletions
		}
		out.Stats.Total = out.Stats.Additions + out.Stats.Deletions
		if out.Files == nil {
			out.Files = []fileJSON{}
		}
	}
	return out
}

// diff lists the files that differ between two trees, counting whole lines as added or deleted.
func (s *Server) diff(r *http.Request, repo *Repo, ref string, before, after map[string]string) []fileJSON {
	api := baseURL(r) + "repos/" + repo.owner + "/" + repo.name
	web := webURL(r) + repo.owner + "/" + repo.name
	paths := map[string]bool{}
	for p := range before {
		paths[p] = true
	}
	for p := range after {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var files []fileJSON
	for _, p := range sorted {
		old, hadOld := before[p]
		cur, hasNew := after[p]
		f := fileJSON{Filename: p, BlobURL: web + "/blob/" + ref + "/" + p, RawURL: web + "/raw/" + ref + "/" + p, ContentsURL: api + "/contents/" + p + "?ref=" + ref}
		switch {
		case hadOld && hasNew && old == cur:
			continue
		case !hadOld:
			f.Status, f.SHA, f.Additions = "added", blobSHA(cur), lines(cur)
		case !hasNew:
			f.Status, f.SHA, f.Deletions = "removed", blobSHA(old), lines(old)
		default:
			f.Status, f.SHA, f.Additions, f.Deletions = "modified", blobSHA(cur), lines(cur), lines(old)
		}
		f.Changes = f.Additions + f.Deletions
		files = append(files, f)
	}
	return files
}

func lines(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
}

// getCommit answers GET /repos/{owner}/{repo}/commits/{ref}; with the sha media type, the bare SHA whose ETag
// is the quoted SHA. An unknown ref and an ambiguous prefix are both 422.
func (s *Server) getCommit(r *http.Request, repo *Repo, ref string) *response {
	c := repo.resolve(ref)
	if c == nil {
		return errorResponse(http.StatusUnprocessableEntity, "No commit found for SHA: "+ref, commitDocs)
	}
	if accept := r.Header.Get("Accept"); strings.Contains(accept, "application/vnd.github.sha") || strings.Contains(accept, "application/vnd.github.v3.sha") {
		return &response{status: http.StatusOK, body: []byte(c.sha), contentType: "application/vnd.github.sha; charset=utf-8",
			header: http.Header{"Etag": {`"` + c.sha + `"`}}}
	}
	return jsonResponse(http.StatusOK, s.commitJSON(r, repo, c, true))
}

// listCommits answers GET /repos/{owner}/{repo}/commits?sha=&path=: the commits reachable from sha (the default
// branch when absent), newest first, 30 a page unless per_page says otherwise (at most 100). With path, only those
// that changed it, as git log -- path simplifies history: a merge counts only when it differs from every parent.
func (s *Server) listCommits(r *http.Request, repo *Repo) *response {
	q := r.URL.Query()
	head := repo.resolve(cmp.Or(q.Get("sha"), repo.defaultRef))
	if head == nil {
		return errorResponse(http.StatusNotFound, "Not Found", listCommitsDocs)
	}
	p := strings.Trim(q.Get("path"), "/")
	all := repo.chronological(repo.ancestors(head.sha))
	list := []*commit{}
	for i := len(all) - 1; i >= 0; i-- {
		if c := all[i]; p == "" || repo.changed(c, p) {
			list = append(list, c)
		}
	}
	perPage := min(atoiDefault(q.Get("per_page"), 30), 100)
	page := atoiDefault(q.Get("page"), 1)
	last := max((len(list)+perPage-1)/perPage, 1)
	out := []commitJSON{}
	for _, c := range list[min((page-1)*perPage, len(list)):min(page*perPage, len(list))] {
		out = append(out, s.commitJSON(r, repo, c, false))
	}
	resp := jsonResponse(http.StatusOK, out)
	if links := pageLinks(r, page, last, perPage); links != "" {
		resp.header = http.Header{"Link": {links}}
	}
	return resp
}

// compare answers GET /repos/{owner}/{repo}/compare/{base}...{head}: the commits reachable from head and
// not from base, oldest first, paginated when page or per_page is given and else the newest 250.
func (s *Server) compare(r *http.Request, repo *Repo, basehead string) *response {
	baseRef, headRef, ok := strings.Cut(basehead, "...")
	if !ok {
		return errorResponse(http.StatusNotFound, "Not Found", compareDocs)
	}
	base, head := repo.resolve(baseRef), repo.resolve(headRef)
	if base == nil || head == nil {
		return errorResponse(http.StatusNotFound, "Not Found", compareDocs)
	}
	ancBase, ancHead := repo.ancestors(base.sha), repo.ancestors(head.sha)
	var mergeBase *commit
	switch {
	case ancHead[base.sha]:
		mergeBase = base
	case ancBase[head.sha]:
		mergeBase = head
	default:
		mergeBase = repo.mergeBase(ancBase, ancHead)
	}
	if mergeBase == nil {
		return errorResponse(http.StatusNotFound, "No common ancestor between "+baseRef+" and "+headRef+".", compareDocs)
	}
	ahead, behind := map[string]bool{}, 0
	for sha := range ancHead {
		if !ancBase[sha] {
			ahead[sha] = true
		}
	}
	for sha := range ancBase {
		if !ancHead[sha] {
			behind++
		}
	}
	status := "diverged"
	switch {
	case base.sha == head.sha:
		status = "identical"
	case behind == 0:
		status = "ahead"
	case len(ahead) == 0:
		status = "behind"
	}
	list := repo.chronological(ahead)
	api := baseURL(r) + "repos/" + repo.owner + "/" + repo.name
	web := webURL(r) + repo.owner + "/" + repo.name
	out := compareJSON{
		URL:             api + "/compare/" + basehead,
		HTMLURL:         web + "/compare/" + basehead,
		PermalinkURL:    web + "/compare/" + repo.owner + ":" + base.sha[:7] + "..." + repo.owner + ":" + head.sha[:7],
		DiffURL:         web + "/compare/" + basehead + ".diff",
		PatchURL:        web + "/compare/" + basehead + ".patch",
		BaseCommit:      s.commitJSON(r, repo, base, false),
		MergeBaseCommit: s.commitJSON(r, repo, mergeBase, false),
		Status:          status,
		AheadBy:         len(ahead),
		BehindBy:        behind,
		TotalCommits:    len(ahead),
		Commits:         []commitJSON{},
		Files:           []fileJSON{},
	}
	q := r.URL.Query()
	var header http.Header
	page := 1
	if q.Has("page") || q.Has("per_page") {
		perPage := min(atoiDefault(q.Get("per_page"), 30), 100)
		page = atoiDefault(q.Get("page"), 1)
		last := max((len(list)+perPage-1)/perPage, 1)
		if links := pageLinks(r, page, last, perPage); links != "" {
			header = http.Header{"Link": {links}}
		}
		list = list[min((page-1)*perPage, len(list)):min(page*perPage, len(list))]
	} else if len(list) > unpagedCompareLimit {
		list = list[len(list)-unpagedCompareLimit:]
	}
	for _, c := range list {
		out.Commits = append(out.Commits, s.commitJSON(r, repo, c, false))
	}
	if page == 1 {
		if files := s.diff(r, repo, head.sha, mergeBase.tree, head.tree); files != nil {
			out.Files = files
		}
	}
	resp := jsonResponse(http.StatusOK, out)
	resp.header = header
	return resp
}

func atoiDefault(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return def
}

// contents answers GET /repos/{owner}/{repo}/contents/{path}?ref=: a file, a directory listing, or with
// Accept: application/vnd.github.raw the file's bytes.
func (s *Server) contents(r *http.Request, repo *Repo, p string) *response {
	p = strings.Trim(p, "/")
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = repo.defaultRef
	}
	c := repo.resolve(ref)
	if c == nil {
		return errorResponse(http.StatusNotFound, "No commit found for the ref "+ref, contentsDocs)
	}
	if content, ok := c.tree[p]; ok {
		if strings.Contains(r.Header.Get("Accept"), "application/vnd.github.raw") {
			return &response{status: http.StatusOK, body: []byte(content), contentType: "application/vnd.github.raw; charset=utf-8"}
		}
		return jsonResponse(http.StatusOK, s.contentJSON(r, repo, ref, p, content, false))
	}
	entries := map[string]contentJSON{}
	prefix := ""
	if p != "" {
		prefix = p + "/"
	}
	for fp, content := range c.tree {
		rest, ok := strings.CutPrefix(fp, prefix)
		if !ok {
			continue
		}
		if name, _, isDir := strings.Cut(rest, "/"); isDir {
			dir := path.Join(p, name)
			entries[name] = s.contentJSON(r, repo, ref, dir, "", true)
			continue
		}
		entries[rest] = s.contentJSON(r, repo, ref, fp, content, false)
	}
	if len(entries) == 0 {
		return errorResponse(http.StatusNotFound, "Not Found", contentsDocs)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]contentJSON, 0, len(names))
	for _, n := range names {
		e := entries[n]
		if e.Type == "dir" {
			e.SHA = treeSHA(c.tree, e.Path)
		}
		e.Content, e.Encoding = nil, "" // listings carry no content
		list = append(list, e)
	}
	return jsonResponse(http.StatusOK, list)
}

func (s *Server) contentJSON(r *http.Request, repo *Repo, ref, p, content string, dir bool) contentJSON {
	api := baseURL(r) + "repos/" + repo.owner + "/" + repo.name
	web := webURL(r) + repo.owner + "/" + repo.name
	out := contentJSON{
		Type: "file",
		Size: len(content),
		Name: path.Base(p),
		Path: p,
		SHA:  blobSHA(content),
		URL:  api + "/contents/" + p + "?ref=" + ref,
	}
	out.GitURL = api + "/git/blobs/" + out.SHA
	out.HTMLURL = web + "/blob/" + ref + "/" + p
	download := web + "/raw/" + ref + "/" + p
	out.DownloadURL = &download
	if dir {
		out.Type, out.Size, out.DownloadURL = "dir", 0, nil
		out.HTMLURL = web + "/tree/" + ref + "/" + p
	} else if len(content) > inlineContentLimit {
		empty := ""
		out.Encoding, out.Content = "none", &empty
	} else {
		encoded := wrap(base64.StdEncoding.EncodeToString([]byte(content)), 60)
		out.Encoding, out.Content = "base64", &encoded
	}
	out.Links = linksJSON{Self: out.URL, Git: out.GitURL, HTML: out.HTMLURL}
	return out
}

// wrap breaks s into lines of n characters, each ending in "\n", as GitHub sends base64 content.
func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteByte('\n')
		s = s[n:]
	}
	b.WriteString(s)
	b.WriteByte('\n')
	return b.String()
}
