package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"
)

// summarize prints which layout fields and enum tables differ between versions.
func summarize(w io.Writer, tables []table) {
	if len(tables) == 0 {
		return
	}
	fields := map[string][]string{}
	var order []string
	for i, t := range tables {
		flatten(reflect.ValueOf(t.layout), "", func(path, val string) {
			if path == "GoVersion" || path == "Source" {
				return
			}
			if i == 0 {
				order = append(order, path)
			}
			fields[path] = append(fields[path], val)
		})
	}
	var hdr []string
	for _, t := range tables {
		hdr = append(hdr, fmt.Sprintf("1.%d", t.minor))
	}
	fmt.Fprintf(w, "layout fields that differ (%s):\n", strings.Join(hdr, " "))
	for _, p := range order {
		vals := fields[p]
		same := true
		for _, v := range vals {
			same = same && v == vals[0]
		}
		if !same {
			fmt.Fprintf(w, "  %-22s %s\n", p, strings.Join(vals, " "))
		}
	}
	for i := 1; i < len(tables); i++ {
		a, b := tables[i-1], tables[i]
		if !reflect.DeepEqual(a.statuses, b.statuses) {
			fmt.Fprintf(w, "gStatusStrings 1.%d -> 1.%d: %q -> %q\n", a.minor, b.minor, a.statuses, b.statuses)
		}
		if !reflect.DeepEqual(a.waitReasons, b.waitReasons) {
			fmt.Fprintf(w, "waitReasonStrings 1.%d -> 1.%d: %d -> %d entries\n", a.minor, b.minor, len(a.waitReasons), len(b.waitReasons))
			for j := 0; j < len(a.waitReasons) || j < len(b.waitReasons); j++ {
				var x, y string
				if j < len(a.waitReasons) {
					x = a.waitReasons[j]
				}
				if j < len(b.waitReasons) {
					y = b.waitReasons[j]
				}
				if x != y {
					fmt.Fprintf(w, "    [%d] %q -> %q\n", j, x, y)
				}
			}
		}
	}
}

func flatten(v reflect.Value, prefix string, fn func(path, val string)) {
	if v.Kind() != reflect.Struct {
		fn(prefix, fmt.Sprint(v.Interface()))
		return
	}
	for i := 0; i < v.NumField(); i++ {
		p := v.Type().Field(i).Name
		if prefix != "" {
			p = prefix + "." + p
		}
		flatten(v.Field(i), p, fn)
	}
}
