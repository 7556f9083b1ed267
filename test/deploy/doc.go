// Package deploy tests the shipped installs: the kustomization in config/deploy (with its monitoring component)
// and the Helm chart in charts/flux-commit-tracker. It renders both and compares them object by object, checks
// what the manifests promise (a writable git cache, ConfigMaps and the Lease by name, leader election, the
// restricted Pod Security Standard), dry-runs both on a real apiserver, applies the ServiceAccount and RBAC and
// runs the built binary as the Deployment's container would run, with the ServiceAccount's own token.
package deploy
