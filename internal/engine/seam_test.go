package engine

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The client APIs reach a node only through Engine: none of their
// (non-test) files imports the node, a replication mode or the storage, so
// a mode's internals stay behind the seam.
func TestAPIsImportOnlyTheEngine(t *testing.T) {
	files, err := filepath.Glob("../api/*/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no API files found: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, banned := range []string{"/internal/node", "/internal/replication", "/internal/storage", "/internal/control"} {
				if strings.HasSuffix(path, banned) {
					t.Errorf("%s imports %s; the APIs must use package engine", f, path)
				}
			}
		}
	}
}
