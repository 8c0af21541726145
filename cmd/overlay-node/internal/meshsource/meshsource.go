// Package meshsource is where a running node gets its mesh from: a mesh
// file on disk, re-read on SIGHUP or watched for changes, or a mesh kept in
// etcd, read and then watched, with nodes joining it by themselves.
//
// Every source hands the node the same thing, a [Snapshot]: the bytes of a
// mesh file and a name for error positions. What follows is shared: the node
// parses and validates the snapshot with config.Parse (or takes the parse
// the source made of those bytes, as etcd's does to check its members),
// finds itself in it and applies it as a reload, all or nothing. So a new etcd revision is applied
// exactly like a SIGHUP reload of a file, and a bad one is rejected whole.
//
// The package knows the mesh file's format (it imports config) but not the
// engine: turning a mesh into engine settings stays in cmd/overlay-node.
package meshsource

import (
	"context"

	"github.com/overlay-node/overlay-node/config"
)

// A Snapshot is one version of the mesh as its source holds it.
type Snapshot struct {
	// Name names the mesh in error positions: the file's path, or
	// etcd:PREFIXmesh@REVISION for a mesh read from etcd.
	Name string
	// Data is the mesh file. For etcd it is the pushed file followed by a
	// [[node]] table for every node that joined.
	Data []byte
	// Mesh is Data parsed by config.Parse under Name, when the source
	// had to parse it anyway (etcd does, to leave out members that do not
	// fit); nil otherwise. It spares the node parsing a large mesh twice.
	// The source keeps no reference to it.
	Mesh *config.Mesh
	// Revision is the etcd revision the mesh was read at; 0 for a file.
	Revision int64
	// Cached reports whether the snapshot came from the cache on disk
	// rather than from etcd itself.
	Cached bool
}

// A Source is where the mesh comes from. Read may be called at any time
// (start-up, SIGHUP); Updates delivers what the source noticed by itself.
type Source interface {
	// Kind is "file" or "etcd", for status and metrics.
	Kind() string
	// Read returns the mesh as the source holds it now.
	Read(ctx context.Context) (Snapshot, error)
	// Updates delivers every new mesh the source sees, the newest only
	// when the reader falls behind. It is nil for a source that is only
	// read on request.
	Updates() <-chan Snapshot
	// Reconnects counts how often the source lost its watch and read the
	// mesh afresh.
	Reconnects() uint64
	// Close stops watching. Updates is not closed.
	Close() error
}

// offer puts s on ch, replacing an unread older snapshot: a reader that
// falls behind gets the newest mesh, not every one in between.
func offer(ch chan Snapshot, s Snapshot) {
	for {
		select {
		case ch <- s:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}
