// Package deploy tests the shipped install in config/deploy: it renders the kustomization, checks what the
// manifests promise (a writable git cache, ConfigMaps and the Lease by name, leader election), applies the
// ServiceAccount and RBAC to a real apiserver and runs the built binary as the Deployment's container would run,
// with the ServiceAccount's own token.
package deploy
