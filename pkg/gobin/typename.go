package gobin

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Offsets in abi.Type (src/internal/abi/type.go; runtime._type), identical in Go 1.21–1.26 on
// amd64: Size_, PtrBytes uintptr; Hash uint32; TFlag, Align_, FieldAlign_, Kind_ uint8; Equal
// func; GCData *byte; Str NameOff; PtrToThis TypeOff.
const (
	typeTFlag      = 20 // TFlag
	typeStr        = 40 // Str: int32 offset of the name from moduledata.types
	typeHeaderSize = 48
	tflagExtraStar = 1 << 1 // abi.TFlagExtraStar: the name has an extra leading '*'
)

// maxTypeNameLen bounds a type name (struct types with many fields and tags make long ones).
const maxTypeNameLen = 1 << 20

// strTypeName is the cache key kind (see the str* kinds in cache.go) of a type name: the low half
// of the key is the offset of the type descriptor from moduledata.types (less than
// maxTypesSize).
const strTypeName = 4 << 32

// ErrTypeNotInExecutable is wrapped by the error of TypeName for an address outside the
// executable's type descriptors (moduledata.types to etypes): a type made at run time (by
// reflect: StructOf, SliceOf, PointerTo...), whose name only the process's memory holds, or
// not a type at all.
var ErrTypeNotInExecutable = errors.New("not a type descriptor of the executable (a type made at run time, e.g. by reflect, or a bad address)")

// TypeName returns the name of the type whose descriptor (*abi.Type, the first word of an
// interface) is at link-time address typeAddr (a run-time address minus the load bias), as the
// runtime prints it (rtype.string, e.g. in a panic message): "main.T", "*main.T", "[]int",
// "map[string]int". It reads abi.Type.Str, a name offset from moduledata.types, and decodes the
// name (a flags byte, the varint length, the bytes), dropping the leading '*' of a name shared
// with the pointer type (abi.TFlagExtraStar), as the runtime does.
//
// The executable is untrusted: an address outside moduledata.types..etypes gives an error
// wrapping ErrTypeNotInExecutable, bad data an error, a file truncated under the mapping an
// error; it never panics. Names are cached (bounded, see cache.go): a repeated lookup does not
// allocate. After Close the error wraps ErrClosed.
func (b *Binary) TypeName(typeAddr uint64) (name string, err error) {
	old, open := b.enter()
	if !open {
		return "", b.closedError()
	}
	defer b.leave(old, func(p any) { name, err = "", b.faultError(p) })
	types, etypes, err := b.typesRange()
	if err != nil {
		return "", fmt.Errorf("%s: type name at %#x: %w", b.name, typeAddr, err)
	}
	if typeAddr < types || typeAddr >= etypes || etypes-typeAddr < typeHeaderSize {
		return "", fmt.Errorf("%s: type at %#x (types %#x..%#x): %w", b.name, typeAddr, types, etypes, ErrTypeNotInExecutable)
	}
	if typeAddr%8 != 0 {
		return "", fmt.Errorf("%s: type at %#x is misaligned: %w", b.name, typeAddr, ErrTypeNotInExecutable)
	}
	key := strTypeName | (typeAddr - types)
	if s, ok := b.cache.getStr(key); ok {
		return s, nil
	}
	name, err = b.typeName(typeAddr, types, etypes)
	if err != nil {
		return "", fmt.Errorf("%s: type at %#x: %w", b.name, typeAddr, err)
	}
	b.cache.putStr(key, name)
	return name, nil
}

// typeName implements TypeName for a descriptor within types..etypes: the result is a heap copy.
func (b *Binary) typeName(typeAddr, types, etypes uint64) (string, error) {
	hdr, err := b.readVA(typeAddr, typeHeaderSize)
	if err != nil {
		return "", err
	}
	tflag := hdr[typeTFlag]
	off := int32(binary.LittleEndian.Uint32(hdr[typeStr:]))
	// resolveNameOff: the name lies within types..etypes. Str 0 is no name, never seen for a
	// type of the executable.
	if off <= 0 || uint64(off) >= etypes-types {
		return "", fmt.Errorf("name offset %#x out of range (types %#x..%#x)", off, types, etypes)
	}
	nameAddr := types + uint64(off)
	// The flags byte and the varint length: abi.Name.ReadVarint; lengths beyond 4 varint bytes
	// (256 MiB) are corrupt.
	head, err := b.readVA(nameAddr, min(etypes-nameAddr, 5))
	if err != nil {
		return "", fmt.Errorf("name at %#x: %w", nameAddr, err)
	}
	var n, i uint64
	for i = 1; ; i++ {
		if i >= uint64(len(head)) {
			return "", fmt.Errorf("name at %#x: bad length", nameAddr)
		}
		n |= uint64(head[i]&0x7f) << (7 * (i - 1))
		if head[i]&0x80 == 0 {
			break
		}
	}
	start := nameAddr + i + 1
	if n == 0 || n > maxTypeNameLen || start > etypes || n > etypes-start {
		return "", fmt.Errorf("name at %#x: length %d out of range (types end at %#x)", nameAddr, n, etypes)
	}
	raw, err := b.readVA(start, n)
	if err != nil {
		return "", fmt.Errorf("name at %#x: %w", nameAddr, err)
	}
	if tflag&tflagExtraStar != 0 {
		if raw[0] != '*' || len(raw) < 2 {
			return "", fmt.Errorf("name at %#x: %q lacks the extra '*' its type's flags announce", nameAddr, raw)
		}
		raw = raw[1:]
	}
	return string(raw), nil
}
