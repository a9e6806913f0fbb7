package ethprep

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Two JSON parsers must not read one request differently: a dapp or a
// wallet's screen (JavaScript) shows one reading, a node signs another.
// encoding/json matches member names case-insensitively ("ChainId" and
// "chainID" fill chainId) and keeps the last of duplicate members, where
// JavaScript keeps "chainId" only and other parsers keep the first. So
// before decoding, the JSON is walked against the shape of the Go type:
// a member must have exactly a field's name (case included), and no object
// may name a member twice.

// shape is what a JSON value may look like: for an object decoded into a
// struct, its members (exact names); for an array, its elements; for an
// object decoded into a map, the values of its members. A nil shape takes
// any JSON value (still without duplicate members).
type shape struct {
	fields map[string]*shape // struct: member name → its shape
	elem   *shape            // array elements, or map values
	isMap  bool
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// shapeOf is the shape of JSON that decodes into t.
func shapeOf(t reflect.Type) *shape {
	if reflect.PointerTo(t).Implements(unmarshaler) || t.Implements(unmarshaler) {
		return nil // decodes itself: hexutil.Big, math.HexOrDecimal256, …
	}
	switch t.Kind() {
	case reflect.Pointer:
		return shapeOf(t.Elem())
	case reflect.Slice, reflect.Array:
		return &shape{elem: shapeOf(t.Elem())}
	case reflect.Map:
		return &shape{elem: shapeOf(t.Elem()), isMap: true}
	case reflect.Struct:
		s := &shape{fields: map[string]*shape{}}
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s.fields[name] = shapeOf(f.Type)
		}
		return s
	}
	return nil
}

// shapeError says how a JSON value breaks its shape; its text names
// fields, never values, and may reach a client.
type shapeError string

func (e shapeError) Error() string { return string(e) }

// maxDepth bounds the nesting of arrays and objects in a request.
const maxDepth = 1000

// checkShape reports whether raw (one JSON value) has shape s: member
// names exact, none twice in an object, nesting within maxDepth.
func checkShape(raw []byte, s *shape) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := walk(dec, s, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func walk(dec *json.Decoder, s *shape, depth int) error {
	if depth > maxDepth {
		return shapeError(fmt.Sprintf("nested deeper than %d", maxDepth))
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar: its type is the decoder's to check
	}
	switch d {
	case '[':
		var elem *shape
		if s != nil {
			elem = s.elem
		}
		for dec.More() {
			if err := walk(dec, elem, depth+1); err != nil {
				return err
			}
		}
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			name := tok.(string) // the decoder allows only strings here
			if seen[name] {
				return shapeError(fmt.Sprintf("field %q appears twice", clip(name)))
			}
			seen[name] = true
			var child *shape
			switch {
			case s == nil:
			case s.isMap:
				child = s.elem
			case s.fields != nil:
				c, ok := s.fields[name]
				if !ok {
					return shapeError(fmt.Sprintf("unknown field %q (names are case-sensitive)", clip(name)))
				}
				child = c
			}
			if err := walk(dec, child, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
