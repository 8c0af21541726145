// Package config owns the mesh file: it decodes mesh.toml into typed values
// (netip prefixes, public keys, durations) and validates them.
//
// Every host of a mesh reads the same file. [Load] reads and decodes it and
// runs [Mesh.Validate]; the result is either a valid [Mesh] or an [ErrorList]
// holding every problem in the file, each with the file, line and column of
// the offending key or value and a hint that says how to fix it:
//
//	mesh.toml:12:11: node.address: 10.100.0.1 is already the address of node "a" (line 6) (hint: give every node its own overlay address)
//
// [Mesh.Warnings] lists what is suspect but valid, such as a group no node
// has, in the same form. [Mesh.Policy] compiles the [[allow]] rules.
//
// Unknown keys are errors, so a misspelt key never silently does nothing. A
// missing file is reported as [ErrNoConfig], apart from an invalid one.
//
// The package only describes the mesh. Turning it into engine settings is the
// job of cmd/overlay-node; the tunnel never imports config.
package config
