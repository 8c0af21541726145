package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kubernetesDir holds the manifests that run a node per Kubernetes node.
var kubernetesDir = filepath.Join(examplesDir, "kubernetes")

// TestKubernetesExample checks the manifests without a YAML parser (none is
// a dependency): every document names its apiVersion and kind, the
// ConfigMap's mesh file passes the same load as the other examples, and its
// CNI network config is the plugin's JSON.
func TestKubernetesExample(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	var configMap string // the file holding the ConfigMap
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocuments(src) {
			kind := topLevel(doc, "kind")
			if topLevel(doc, "apiVersion") == "" || kind == "" {
				t.Errorf("%s: document %d: no apiVersion or kind", file, i+1)
			}
			kinds[kind] = true
			if kind == "ConfigMap" {
				configMap = file
			}
		}
	}
	for _, want := range []string{"Namespace", "ConfigMap", "DaemonSet"} {
		if !kinds[want] {
			t.Errorf("no %s in %s", want, kubernetesDir)
		}
	}

	src, err := os.ReadFile(configMap)
	if err != nil {
		t.Fatal(err)
	}
	data := blockScalars(src)
	m, err := Parse(configMap, []byte(data["mesh.toml"]))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if len(m.Nodes) < 2 {
		t.Errorf("got %d nodes, want a mesh of at least 2", len(m.Nodes))
	}
	for _, n := range m.Nodes {
		if len(n.Containers) == 0 {
			t.Errorf("node %s: no containers networks for its pods", n.Name)
		}
	}

	var conflist struct {
		Plugins []struct{ Type, Interface string }
	}
	if err := json.Unmarshal([]byte(data["overlay.conflist"]), &conflist); err != nil {
		t.Fatalf("%s: data.overlay.conflist: %v", configMap, err)
	}
	if len(conflist.Plugins) != 1 || conflist.Plugins[0].Type != "overlay-node-cni" {
		t.Errorf("%s: data.overlay.conflist: got plugins %+v, want one of type overlay-node-cni", configMap, conflist.Plugins)
	}
}

// yamlDocuments splits a YAML stream at its "---" lines, dropping documents
// that hold only comments.
func yamlDocuments(src []byte) [][]byte {
	var docs [][]byte
	for _, doc := range bytes.Split(src, []byte("\n---\n")) {
		for _, line := range strings.Split(string(doc), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				docs = append(docs, doc)
				break
			}
		}
	}
	return docs
}

// topLevel returns the plain scalar value of an unindented "key: value" line.
func topLevel(doc []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// blockScalars returns the literal block scalars ("key: |") under the
// top-level data key of a YAML file. Each keeps its lines where they stand in
// the file, indentation included, and every other line is left empty: TOML
// ignores both, so a mesh file's errors carry the YAML file's line:col.
func blockScalars(src []byte) map[string]string {
	out := map[string]string{}
	inData, key, indent := false, "", ""
	lines := strings.Split(string(src), "\n")
	for i, line := range lines {
		if key != "" {
			if strings.HasPrefix(line, indent) || strings.TrimSpace(line) == "" {
				out[key] += line + "\n"
				continue
			}
			key = ""
		}
		switch {
		case line == "data:":
			inData = true
		case inData && !strings.HasPrefix(line, " "):
			inData = false
		case inData && strings.HasSuffix(line, ": |"):
			// The block is indented two spaces past its key.
			k := strings.TrimSuffix(line, ": |")
			key = strings.TrimLeft(k, " ")
			indent = strings.Repeat(" ", len(k)-len(key)+2)
			out[key] = strings.Repeat("\n", i+1)
		}
	}
	return out
}
