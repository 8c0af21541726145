package nstest_test

import (
	"os"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

func TestScratchFail(t *testing.T) {
	if os.Getenv("SCRATCH") != "fail" {
		t.Skip()
	}
	lan := nstest.NewLAN(t, 1)
	w := nstest.StartWireGuardGo(t, lan.Hosts[0], nstest.UniqueIfName("wg"))
	_ = w
	lan.Hosts[0].Start(t, "sh", "-c", "echo hello; trap '' TERM; sleep 100")
	t.Fatal("deliberate")
}

func TestScratchTimeout(t *testing.T) {
	if os.Getenv("SCRATCH") != "timeout" {
		t.Skip()
	}
	lan := nstest.NewLAN(t, 2)
	nstest.StartWireGuardGo(t, lan.Hosts[0], nstest.UniqueIfName("wg"))
	lan.Hosts[1].Start(t, "sleep", "1000")
	time.Sleep(time.Hour)
}

func TestScratchChild(t *testing.T) {
	if os.Getenv("SCRATCH") != "child" {
		t.Skip()
	}
	lan := nstest.NewLAN(t, 1)
	lan.Hosts[0].Start(t, "sh", "-c", "sleep 1234 & sleep 1235 & wait")
	time.Sleep(300 * time.Millisecond)
}
