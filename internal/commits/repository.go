package commits

// Repository identifies a hosted git repository.
type Repository struct {
	// Host is the lower-case host name, e.g. github.com or a GitHub Enterprise host.
	Host  string
	Owner string
	Name  string
	// URL, when set, is the repository's URL without credentials, for repositories not named by owner/name.
	URL string
}

// String returns the repository's URL, used as the metric attribute: the canonical https URL for owner/name.
func (r Repository) String() string {
	if r.URL != "" {
		return r.URL
	}
	return "https://" + r.Host + "/" + r.Owner + "/" + r.Name
}
