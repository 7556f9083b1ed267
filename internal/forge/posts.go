package forge

// What the tracker posts on a forge, and how each post that was due ended, for its metrics.
const (
	PostStatus     = "status"
	PostDeployment = "deployment"

	ResultPosted    = "posted"
	ResultUnchanged = "unchanged" // the forge already shows it
	ResultCapped    = "capped"    // past the posts allowed per commit and context
	ResultRefused   = "refused"   // the forge turned it away, or none serves the repository
	ResultError     = "error"     // retried later
)

// Every kind of post and every result, for the metrics' allowed values.
var (
	PostKinds   = []string{PostStatus, PostDeployment}
	PostResults = []string{ResultPosted, ResultUnchanged, ResultCapped, ResultRefused, ResultError}
)
