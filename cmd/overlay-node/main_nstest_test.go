package main

import (
	"testing"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// TestMain removes the binaries the namespace tests built.
func TestMain(m *testing.M) { nstest.Main(m) }
