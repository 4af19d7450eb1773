// Command typenames prints, as JSON, the run-time address of the type descriptor (the first word
// of an interface) of values of many types with the type's name as reflect prints it, which is
// the runtime's rtype.string, for the gobin tests of TypeName. Runtime marks the types made at
// run time by reflect, which are not in the executable. MainMain is the run-time address of
// main.main, to compute the load bias.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"
	"unsafe"
)

type code int
type label string
type point struct{ x, y int }
type box[T any] struct{ v T }
type pair[K comparable, V any] struct {
	k K
	v V
}
type temp float64

func (t temp) String() string { return "temp" }

type myErr struct{ code int }

func (e *myErr) Error() string { return "myErr" }

type entry struct {
	Name    string  `json:"name"`
	Addr    uintptr `json:"addr"`
	Runtime bool    `json:"runtime"`
}

func typeWord(v any) uintptr { return (*[2]uintptr)(unsafe.Pointer(&v))[0] }

func main() {
	var e error = &myErr{1}
	values := []any{
		42, int8(1), uint64(2), uintptr(3), true, "s", 4.2, float32(1), complex(1, 2), complex64(1),
		code(5), label("x"), temp(1), point{}, &point{}, []int{1}, []point{}, map[string]int{},
		map[code][]*point{}, func() {}, func(int, ...string) (bool, error) { return false, nil },
		make(chan int), make(<-chan label), [3]int{}, &e, box[int]{}, box[point]{}, &box[string]{},
		pair[string, *point]{}, struct{ A int }{}, struct {
			B string `json:"b"`
		}{}, errors.New("x"), fmt.Errorf("w: %w", e), e, time.Second, &time.Time{}, os.Stdout,
		unsafe.Pointer(&e), [0]func(){}, new(any), new(error),
	}
	out := struct {
		MainMain uintptr `json:"main_main"`
		Types    []entry `json:"types"`
	}{MainMain: reflect.ValueOf(main).Pointer()}
	for _, v := range values {
		out.Types = append(out.Types, entry{Name: reflect.TypeOf(v).String(), Addr: typeWord(v)})
	}
	made := []reflect.Type{
		reflect.StructOf([]reflect.StructField{{Name: "Made", Type: reflect.TypeOf(code(0))}}),
		reflect.ArrayOf(77, reflect.TypeOf(label(""))),
	}
	for _, t := range made {
		out.Types = append(out.Types, entry{Name: t.String(), Addr: typeWord(reflect.New(t).Elem().Interface()), Runtime: true})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
