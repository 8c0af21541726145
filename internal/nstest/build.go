package nstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// A build is one binary, built at most once per test binary and shared by
// every test in it.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	overlayNode build
	wireGuardGo build
	cniPlugin   build
)

// BuildOverlayNode builds ./cmd/overlay-node from the module this package is
// in, on first use, and returns the binary's path. It fails t if the build
// fails, with the compiler's output.
func BuildOverlayNode(t testing.TB) string {
	t.Helper()
	return overlayNode.get(t, "overlay-node", "./cmd/overlay-node")
}

// BuildCNIPlugin builds ./cmd/overlay-node-cni, the CNI plugin, on first
// use, and returns the binary's path. Its directory is the CNI_PATH to run
// it by its type, overlay-node-cni. It fails t if the build fails.
func BuildCNIPlugin(t testing.TB) string {
	t.Helper()
	return cniPlugin.get(t, "overlay-node-cni", "./cmd/overlay-node-cni")
}

// BuildWireGuardGo builds wireguard-go, the main package of the module
// golang.zx2c4.com/wireguard, at the version go.mod pins, on first use, and
// returns the binary's path. It fails t if the build fails.
func BuildWireGuardGo(t testing.TB) string {
	t.Helper()
	return wireGuardGo.get(t, "wireguard-go", "golang.zx2c4.com/wireguard")
}

// installs holds the GoInstall builds by package path and version.
var installs struct {
	mu     sync.Mutex
	builds map[string]*build
}

// GoInstall builds the main package pkg at version from the module proxy, as
// `go install pkg@version` does, outside this module: its go.mod neither
// constrains nor records the build. It builds on first use per test binary
// (the go build cache makes later test binaries quick) and returns the
// binary's path, named after pkg's last element. It fails t if the build
// fails, with the go command's output.
func GoInstall(t testing.TB, pkg, version string) string {
	t.Helper()
	key := pkg + "@" + version
	installs.mu.Lock()
	b := installs.builds[key]
	if b == nil {
		if installs.builds == nil {
			installs.builds = make(map[string]*build)
		}
		b = new(build)
		installs.builds[key] = b
	}
	installs.mu.Unlock()
	b.once.Do(func() { b.path, b.err = goInstall(pkg, version) })
	if b.err != nil {
		t.Fatalf("nstest: %v", b.err)
	}
	return b.path
}

func (b *build) get(t testing.TB, name, pkg string) string {
	t.Helper()
	b.once.Do(func() { b.path, b.err = goBuild(name, pkg) })
	if b.err != nil {
		t.Fatalf("nstest: %v", b.err)
	}
	return b.path
}

// goBuild builds pkg, from the module root, into binDir/name.
func goBuild(name, pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	path := filepath.Join(dir, name)
	cmd := exec.Command(goTool, "build", "-o", path, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return path, nil
}

// goInstall runs `go install pkg@version` into binDir. It runs in binDir, so
// no go.mod is in scope, with -mod=mod so that a GOFLAGS of -mod=vendor cannot
// stop it.
func goInstall(pkg, version string) (string, error) {
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("install %s: %w", pkg, err)
	}
	cmd := exec.Command(goTool, "install", pkg+"@"+version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", pkg, version, err, out)
	}
	return filepath.Join(dir, path.Base(pkg)), nil
}

// moduleRoot returns the nearest directory at or above the working directory
// (the test's package directory) that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

var bins struct {
	once sync.Once
	dir  string
	err  error
}

// binDir returns the directory, private to this test binary, that binaries are
// built into. Main removes it when the tests end; a test binary that dies
// first leaves it to the next one's sweep.
func binDir() (string, error) {
	bins.once.Do(func() {
		sweep()
		bins.dir = filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-bin", namePrefix, os.Getpid()))
		bins.err = os.MkdirAll(bins.dir, 0o755)
	})
	return bins.dir, bins.err
}

// Main runs a package's tests and then removes the binaries this package
// built for them. Packages that use BuildOverlayNode, BuildWireGuardGo or
// GoInstall call it from TestMain:
//
//	func TestMain(m *testing.M) { nstest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}
