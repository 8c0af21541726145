package nstest_test

import (
	"testing"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) { nstest.Main(m) }
