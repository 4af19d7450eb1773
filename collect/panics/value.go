//go:build linux

package panics

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/goroscope/goroscope/bpf"
	"github.com/goroscope/goroscope/pkg/gobin"
)

// The panic value is rendered as the runtime's printpanicval (printany before Go 1.23) prints
// it, in runtime/error.go and runtime/print.go of Go 1.21–1.26:
//
//   - a value of a predeclared basic type (the type switch of printpanicval matches the type
//     exactly): "true", "-5", "200"; floats "+4.200000e+000" (printfloat) before Go 1.26 and
//     "4.2" (strconv's shortest 'g') since; complex numbers "(+1.000000e+000+2.000000e+000i)"
//     before Go 1.26 and "(1+2i)" since; strings as they are, each newline followed by a tab
//     since Go 1.23 (printindented);
//   - a value of a named type of one of those kinds (printanycustomtype): the type's name and the
//     value in parentheses, `main.code(-5)`, `main.label("x")` (the string indented since Go
//     1.23), `main.celsius(+2.150000e+001)` (Go 1.26: `main.celsius(21.5)`); a named complex
//     type without extra parentheses: `main.cplx(+0.000000e+000+1.000000e+000i)`;
//   - any other value (struct, pointer, slice, map, func, chan, array, unsafe.Pointer...): the
//     type's name in parentheses and the interface's data word in hex, `(main.T) 0xc000012345`:
//     the address of the value, or for a pointer-shaped type (kindDirectIface) the pointer
//     itself, `(*main.T) 0x0` for a nil one.
//
// Error and Stringer values have been turned into their strings by preprintpanics before
// fatalpanic, where the probe reads the value: they are plain strings here. So are those of
// the older panics of a chain, but for one whose value is that of the next older one (Go
// 1.25+): preprintpanics leaves it as it is, and printpanics does not print it (render).
//
// Type names come from the executable (gobin.Binary.TypeName), never from the dying process.
// When a name is unknown:
//   - for a basic kind, the value is printed as that of the predeclared type ("5" rather than
//     "main.code(5)"): reflect cannot make basic types at run time, so the type is in the
//     executable and only a failure to read it (or a record of a process no longer watched)
//     loses its name;
//   - for another kind, the runtime's form is kept with a placeholder for the name:
//     "(<struct type made at run time>) 0xc000012345" for a type reflect made at run time (the
//     descriptor is outside the executable's types; the runtime prints its name from the
//     process's memory, which goroscope does not read), "(<unknown struct type>) 0xc000012345"
//     when the executable could not be read.

// abi.Kind values (internal/abi/type.go).
const (
	kindBool       = 1
	kindInt        = 2
	kindInt64      = 6
	kindUint       = 7
	kindUintptr    = 12
	kindFloat32    = 13
	kindFloat64    = 14
	kindComplex64  = 15
	kindComplex128 = 16
	kindString     = 24
)

// kindNames are reflect.Kind.String of the abi.Kind values.
var kindNames = [...]string{
	1: "bool", 2: "int", 3: "int8", 4: "int16", 5: "int32", 6: "int64",
	7: "uint", 8: "uint8", 9: "uint16", 10: "uint32", 11: "uint64", 12: "uintptr",
	13: "float32", 14: "float64", 15: "complex64", 16: "complex128",
	17: "array", 18: "chan", 19: "func", 20: "interface", 21: "map", 22: "ptr", 23: "slice",
	24: "string", 25: "struct", 26: "unsafe.Pointer",
}

// basicKind reports whether kind is one printpanicval prints by value: the kind of a
// predeclared type (whose name is kindNames[kind]).
func basicKind(kind uint8) bool {
	return kind >= kindBool && kind <= kindComplex128 || kind == kindString
}

// errNoExecutable is the name error of a record of a process no longer watched.
var errNoExecutable = errors.New("executable unknown")

// panicValue renders the panic value v without type names (its process is not watched any
// more): values of basic kinds as of the predeclared types, others with a placeholder name.
func panicValue(v bpf.PanicValue, minor int) string {
	return formatValue(v.TypeKind, v.ArgType, v.ArgData, v.Words, v.Msg, minor, "", errNoExecutable)
}

// panicValue renders the panic value r (of a record of p's process), with its type's name
// from the executable.
func (p *proc) panicValue(r bpf.PanicValue) string {
	if r.ArgType == 0 {
		return "nil"
	}
	name, err := p.bin.TypeName(r.ArgType - p.bias)
	return formatValue(r.TypeKind, r.ArgType, r.ArgData, r.Words, r.Msg, p.minor, name, err)
}

// formatValue renders a panic value as printpanicval of Go 1.minor prints it: kind is the
// abi.Kind of its type (masked), typ the type word of the interface (0 for nil), data its data
// word, words the 32 bytes at data, str the string's bytes (kind string), typeName the type's
// name as the runtime prints it, or "" with nameErr saying why it is unknown.
func formatValue(kind uint8, typ, data uint64, words [4]uint64, str []byte, minor int, typeName string, nameErr error) string {
	if typ == 0 {
		return "nil"
	}
	if !basicKind(kind) {
		if nameErr != nil {
			return "(" + unknownType(kind, nameErr) + ") " + hex(data)
		}
		return "(" + typeName + ") " + hex(data)
	}
	named := nameErr == nil && typeName != kindNames[kind]
	w := words[0]
	var v string
	switch {
	case kind == kindString:
		v = string(str)
		if minor >= 23 { // printindented
			v = strings.ReplaceAll(v, "\n", "\n\t")
		}
		if named {
			return typeName + `("` + v + `")`
		}
		return v
	case kind == kindBool:
		v = strconv.FormatBool(w&0xff != 0)
	case kind >= kindInt && kind <= kindInt64:
		bits := [...]uint{64, 8, 16, 32, 64}[kind-kindInt]
		v = strconv.FormatInt(int64(w<<(64-bits))>>(64-bits), 10)
	case kind >= kindUint && kind <= kindUintptr:
		bits := [...]uint{64, 8, 16, 32, 64, 64}[kind-kindUint]
		v = strconv.FormatUint(w<<(64-bits)>>(64-bits), 10)
	case kind == kindFloat32:
		v = formatFloat(float64(math.Float32frombits(uint32(w))), 32, minor)
	case kind == kindFloat64:
		v = formatFloat(math.Float64frombits(w), 64, minor)
	case kind == kindComplex64:
		re, im := math.Float32frombits(uint32(w)), math.Float32frombits(uint32(w>>32))
		v = formatComplex(float64(re), float64(im), 32, minor)
		if named { // print(typestring, c): the complex brings its parentheses
			return typeName + v
		}
		return v
	case kind == kindComplex128:
		v = formatComplex(math.Float64frombits(w), math.Float64frombits(words[1]), 64, minor)
		if named {
			return typeName + v
		}
		return v
	}
	if named {
		return typeName + "(" + v + ")"
	}
	return v
}

// unknownType is the placeholder for the unknown name of a type of kind.
func unknownType(kind uint8, nameErr error) string {
	k := "type"
	if int(kind) < len(kindNames) && kindNames[kind] != "" {
		k = kindNames[kind] + " type"
	}
	if errors.Is(nameErr, gobin.ErrTypeNotInExecutable) {
		return "<" + k + " made at run time>"
	}
	return "<unknown " + k + ">"
}

// hex is runtime.printhex (as printpointer uses it, minhexdigits 0).
func hex(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// formatFloat is how print prints a float of bits 32 or 64: printfloat before Go 1.26 (float32
// converted to float64), strconv's shortest 'g' for the size since (printfloat32/64).
func formatFloat(v float64, bits, minor int) string {
	if minor >= 26 {
		return strconv.FormatFloat(v, 'g', -1, bits)
	}
	return printfloat(v)
}

// formatComplex is how print prints a complex of parts of bits 32 or 64: printcomplex before Go
// 1.26 ("(" then both parts by printfloat, then "i)"), strconv.FormatComplex since.
func formatComplex(re, im float64, bits, minor int) string {
	if minor >= 26 {
		return strconv.FormatComplex(complex(re, im), 'g', -1, 2*bits)
	}
	return "(" + printfloat(re) + printfloat(im) + "i)"
}

// printfloat is runtime.printfloat of Go 1.21–1.25: "+d.dddddde±ddd", 7 significant digits,
// rounded by adding half a unit of the last digit, or NaN, +Inf, -Inf.
func printfloat(v float64) string {
	switch {
	case v != v:
		return "NaN"
	case v+v == v && v > 0:
		return "+Inf"
	case v+v == v && v < 0:
		return "-Inf"
	}
	const n = 7 // digits printed
	var buf [n + 7]byte
	buf[0] = '+'
	e := 0 // exp
	if v == 0 {
		if 1/v < 0 {
			buf[0] = '-'
		}
	} else {
		if v < 0 {
			v = -v
			buf[0] = '-'
		}
		// normalize
		for v >= 10 {
			e++
			v /= 10
		}
		for v < 1 {
			e--
			v *= 10
		}
		// round
		h := 5.0
		for i := 0; i < n; i++ {
			h /= 10
		}
		v += h
		if v >= 10 {
			e++
			v /= 10
		}
	}
	// format +d.dddd+edd
	for i := 0; i < n; i++ {
		s := int(v)
		buf[i+2] = byte(s + '0')
		v -= float64(s)
		v *= 10
	}
	buf[1] = buf[2]
	buf[2] = '.'
	buf[n+2] = 'e'
	buf[n+3] = '+'
	if e < 0 {
		e = -e
		buf[n+3] = '-'
	}
	buf[n+4] = byte(e/100) + '0'
	buf[n+5] = byte(e/10)%10 + '0'
	buf[n+6] = byte(e%10) + '0'
	return string(buf[:])
}
