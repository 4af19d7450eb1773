package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
)

// runtimeFiles are the runtime sources holding the declarations we need.
var runtimeFiles = []string{"runtime2.go", "traceback.go"}

// enums are the tables parsed from one toolchain's runtime sources.
type enums struct {
	statuses    []string // gStatusStrings
	waitReasons []string // waitReasonStrings
	reasonNames []string // waitReason constant name per value
}

// parseRuntime parses the runtime sources in dir.
func parseRuntime(dir string) (enums, error) {
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range runtimeFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return enums{}, fmt.Errorf("parse %s: %w", name, err)
		}
		files = append(files, f)
	}
	consts := map[string]int64{}
	if _, err := constBlock(files, "_Gidle", consts); err != nil {
		return enums{}, err
	}
	wNames, err := constBlock(files, "waitReasonZero", consts)
	if err != nil {
		return enums{}, err
	}
	statuses, err := stringArray(files, "gStatusStrings", consts)
	if err != nil {
		return enums{}, err
	}
	reasons, err := stringArray(files, "waitReasonStrings", consts)
	if err != nil {
		return enums{}, err
	}
	if err := checkReasons(files, reasons, consts); err != nil {
		return enums{}, err
	}
	// Name each wait-reason value; the runtime's waitReasonStrings must cover
	// every constant (it is indexed by them).
	names := make([]string, len(reasons))
	for _, n := range wNames {
		v := consts[n]
		if v < 0 || v >= int64(len(names)) {
			return enums{}, fmt.Errorf("wait reason %s = %d is outside waitReasonStrings (len %d)", n, v, len(names))
		}
		names[v] = n
	}
	for i, n := range names {
		if n == "" {
			return enums{}, fmt.Errorf("waitReasonStrings[%d] has no waitReason constant", i)
		}
	}
	return enums{statuses: statuses, waitReasons: reasons, reasonNames: names}, nil
}

// constBlock evaluates the const block that declares first, adding every
// constant to consts, and returns the block's names in order.
func constBlock(files []*ast.File, first string, consts map[string]int64) ([]string, error) {
	gd := findConstDecl(files, first)
	if gd == nil {
		return nil, fmt.Errorf("const block declaring %s not found", first)
	}
	var names []string
	var last []ast.Expr
	for iota, spec := range gd.Specs {
		vs := spec.(*ast.ValueSpec)
		if len(vs.Values) > 0 {
			last = vs.Values
		}
		if len(last) != len(vs.Names) {
			return nil, fmt.Errorf("const %s: %d names but %d values", vs.Names[0].Name, len(vs.Names), len(last))
		}
		for i, n := range vs.Names {
			v, err := eval(last[i], int64(iota), consts)
			if err != nil {
				return nil, fmt.Errorf("const %s: %w", n.Name, err)
			}
			if n.Name != "_" {
				consts[n.Name] = v
				names = append(names, n.Name)
			}
		}
	}
	return names, nil
}

func findConstDecl(files []*ast.File, name string) *ast.GenDecl {
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.Name == name {
						return gd
					}
				}
			}
		}
	}
	return nil
}

// eval evaluates the integer constant expressions the runtime uses in these
// blocks: literals, iota, earlier constants, conversions like waitReason(iota)
// is not used but T = iota is, and + - | << between them.
func eval(e ast.Expr, iota int64, consts map[string]int64) (int64, error) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.INT {
			return 0, fmt.Errorf("non-integer literal %s", e.Value)
		}
		return strconv.ParseInt(e.Value, 0, 64)
	case *ast.Ident:
		if e.Name == "iota" {
			return iota, nil
		}
		v, ok := consts[e.Name]
		if !ok {
			return 0, fmt.Errorf("unknown constant %s", e.Name)
		}
		return v, nil
	case *ast.ParenExpr:
		return eval(e.X, iota, consts)
	case *ast.BinaryExpr:
		x, err := eval(e.X, iota, consts)
		if err != nil {
			return 0, err
		}
		y, err := eval(e.Y, iota, consts)
		if err != nil {
			return 0, err
		}
		switch e.Op {
		case token.ADD:
			return x + y, nil
		case token.SUB:
			return x - y, nil
		case token.OR:
			return x | y, nil
		case token.SHL:
			return x << y, nil
		}
		return 0, fmt.Errorf("unsupported operator %s", e.Op)
	case *ast.CallExpr: // T(x) conversion
		if len(e.Args) == 1 {
			return eval(e.Args[0], iota, consts)
		}
	}
	return 0, fmt.Errorf("unsupported constant expression %T", e)
}

// stringArray evaluates `var name = [...]string{key: "s", ...}` into a slice
// indexed like the runtime's array (gaps are "").
func stringArray(files []*ast.File, name string, consts map[string]int64) ([]string, error) {
	lit := findVarLit(files, name)
	if lit == nil {
		return nil, fmt.Errorf("var %s composite literal not found", name)
	}
	vals := map[int64]string{}
	var next, max int64 = 0, -1
	for _, el := range lit.Elts {
		idx := next
		valExpr := el
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			k, err := eval(kv.Key, 0, consts)
			if err != nil {
				return nil, fmt.Errorf("%s key: %w", name, err)
			}
			idx, valExpr = k, kv.Value
		}
		bl, ok := valExpr.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return nil, fmt.Errorf("%s[%d]: value is not a string literal", name, idx)
		}
		s, err := strconv.Unquote(bl.Value)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, idx, err)
		}
		if _, dup := vals[idx]; dup {
			return nil, fmt.Errorf("%s: duplicate index %d", name, idx)
		}
		if idx < 0 || idx > 1<<16 {
			return nil, fmt.Errorf("%s: index %d out of range", name, idx)
		}
		vals[idx] = s
		next = idx + 1
		if idx > max {
			max = idx
		}
	}
	out := make([]string, max+1)
	for i, s := range vals {
		out[i] = s
	}
	return out, nil
}

func findVarLit(files []*ast.File, name string) *ast.CompositeLit {
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name == name && i < len(vs.Values) {
						if cl, ok := vs.Values[i].(*ast.CompositeLit); ok {
							return cl
						}
					}
				}
			}
		}
	}
	return nil
}

// checkReasons cross-checks waitReasonStrings against the `// "..."` comment
// on each waitReason constant, catching a mis-keyed table.
func checkReasons(files []*ast.File, reasons []string, consts map[string]int64) error {
	gd := findConstDecl(files, "waitReasonZero")
	for _, spec := range gd.Specs {
		vs := spec.(*ast.ValueSpec)
		if vs.Comment == nil || len(vs.Names) != 1 {
			continue
		}
		want, err := strconv.Unquote(strings.TrimSpace(strings.TrimPrefix(vs.Comment.List[0].Text, "//")))
		if err != nil {
			continue // comment is not a quoted string
		}
		v := consts[vs.Names[0].Name]
		if v >= int64(len(reasons)) || reasons[v] != want {
			return fmt.Errorf("waitReasonStrings[%s=%d] does not match its comment %q", vs.Names[0].Name, v, want)
		}
	}
	return nil
}
