// Command overlay-node runs one node of a WireGuard-protocol overlay mesh.
// Every host runs `overlay-node up -c mesh.toml -k node.key` with the same
// mesh file; the node finds itself in the file by its private key.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Build information, set at build time with -ldflags "-X main.version=...
// -X main.commit=... -X main.buildDate=...". Left unset, version says
// "dev", and commit and buildDate come from the VCS stamp the go command
// records, if any.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// Exit codes are part of the command contract.
const (
	exitOK    = 0
	exitError = 1 // runtime or config error
	exitUsage = 2 // bad flags or arguments
)

const usageText = `usage: overlay-node <command> [flags]

commands:
  genkey                       print a new private key (base64, like wg genkey)
  pubkey                       read a private key on stdin, print its public key
  check -c MESH [-k KEY]       validate a mesh file; with -k, also check this node is in it
  up -c MESH -k KEY [flags]    run this node in the foreground until SIGINT/SIGTERM
  policy why [-c MESH | --interface NAME] FROM TO PORT/PROTO
                               say whether the rules allow a flow, and which rule decided
  status [--interface NAME] [--json]
                               show the running node's peers, handshakes, transfer and drops
  doctor [--interface NAME] [--json] [NODE]
                               check the running node from the bottom up and say what to fix
  ping [--interface NAME] NODE
                               ping a peer through the tunnel: RTT, endpoint, session age
  export wg-quick -c MESH NODE
                               print the wg-quick file for NODE, a stock WireGuard peer
  completion bash|zsh          print a shell completion script
  version                      print the version

Run 'overlay-node <command> -h' for a command's flags.
`

// usageError is a problem with how the command was called: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errReported means the command already printed its errors.
var errReported = errors.New("reported")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and maps its error to an exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "genkey":
		err = cmdGenkey(args[1:], stdout)
	case "pubkey":
		err = cmdPubkey(args[1:], stdin, stdout)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "up":
		err = cmdUp(args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "doctor":
		err = cmdDoctor(args[1:], stdout)
	case "ping":
		err = cmdPing(args[1:], stdout)
	case "export":
		err = cmdExport(args[1:], stdout, stderr)
	case "completion":
		err = cmdCompletion(args[1:], stdout)
	case "version", "--version":
		err = cmdVersion(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "overlay-node: unknown command %q\n%s", args[0], usageText)
		return exitUsage
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "overlay-node %s\n", ue.msg)
		return exitUsage
	case errors.Is(err, errReported):
		return exitError
	default:
		fmt.Fprintf(stderr, "overlay-node: %s\n", err)
		return exitError
	}
}
