package commits

// Repository identifies a hosted git repository.
type Repository struct {
	// Host is the lower-case host name, e.g. github.com or a GitHub Enterprise host.
	Host  string
	Owner string
	Name  string
}

// String returns the canonical https URL of the repository, used as the metric attribute.
func (r Repository) String() string {
	return "https://" + r.Host + "/" + r.Owner + "/" + r.Name
}
