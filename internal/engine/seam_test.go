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
// (non-test) files imports the node package, so a replication mode's
// internals stay behind the seam.
func TestAPIsDoNotImportTheNode(t *testing.T) {
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
			if strings.HasSuffix(path, "/internal/node") {
				t.Errorf("%s imports %s; the APIs must use engine.Engine", f, path)
			}
		}
	}
}
