//go:build netbench

package bench_test

import (
	"testing"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// TestMain removes the binaries the side-by-side built.
func TestMain(m *testing.M) { nstest.Main(m) }
