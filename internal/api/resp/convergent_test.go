package resp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestWritesGoThroughWriteFn: every closure this package hands to the
// engine's Write goes through writeFn, so collection commands reach the
// convergent adapter whatever path they take; writeBlind (plain string
// writes, which the modes make themselves) is the one exception.
func TestWritesGoThroughWriteFn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil || fd.Name.Name == "writeBlind" {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Write" || len(call.Args) != 2 {
					return true
				}
				if b, ok := sel.X.(*ast.SelectorExpr); !ok || b.Sel.Name != "b" {
					return true
				}
				found++
				if !isCallTo(call.Args[1], "writeFn") {
					t.Errorf("%s: %s hands the engine a write without writeFn", fset.Position(call.Pos()), fd.Name.Name)
				}
				return true
			})
		}
	}
	if found < 3 {
		t.Fatalf("found %d engine writes; the check no longer sees them", found)
	}
}

// isCallTo reports whether e calls a method or function named name.
func isCallTo(e ast.Expr, name string) bool {
	c, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	s, ok := c.Fun.(*ast.SelectorExpr)
	return ok && s.Sel.Name == name
}
