package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Decode returns.
var ErrInvalid = errors.New("strictjson: invalid JSON configuration")

// MaxBytes bounds the input Decode accepts; configurations are small.
const MaxBytes = 64 << 10

// maxDepth bounds nesting, so a hostile input cannot exhaust the stack.
const maxDepth = 32

// Decode decodes data, which must hold exactly one JSON object, into the
// struct v points to. It refuses, with an error wrapping ErrInvalid that
// names the key:
//   - a key that is not a field's JSON name (also one differing only in
//     case, which encoding/json would take),
//   - a key given twice (or twice in different case),
//   - a value of the wrong type (a string for a number, a fraction or a
//     negative number for an unsigned integer, null for anything but an
//     array, an object or any: an optional key is left out, not null),
//   - anything but white space after the object, and invalid UTF-8.
//
// Fields follow encoding/json's rules: the name is the json tag's or the
// Go name, "-" fields are skipped, embedded structs without a tag are
// flattened. Keys absent from data leave their fields alone.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%w: decode target %T is not a pointer to a struct", ErrInvalid, v)
	}
	if len(data) > MaxBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxBytes)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	c := checker{dec: dec}
	if err := c.value(rv.Elem().Type(), "", 0, true); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	// The shape is right: let encoding/json fill v (case-insensitive
	// matching can no longer pick a wrong field, every key is exact).
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: key %q: %s does not fit %s", ErrInvalid, te.Field, te.Value, te.Type)
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

type checker struct{ dec *json.Decoder }

func where(path string) string {
	if path == "" {
		return "the configuration"
	}
	return fmt.Sprintf("key %q", path)
}

// value reads one JSON value from the stream and checks it against t.
func (c *checker) value(t reflect.Type, path string, depth int, top bool) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, maxDepth)
	}
	tok, err := c.dec.Token()
	if err != nil {
		if top && err == io.EOF {
			return fmt.Errorf("%w: empty, want a JSON object", ErrInvalid)
		}
		return fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
	}
	if top {
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return fmt.Errorf("%w: want a JSON object, got %s", ErrInvalid, describe(tok))
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem() // null is refused below: leave the key out instead
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return c.skip(tok, depth) // the type checks its own encoding
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch {
		case tok == '{' && t.Kind() == reflect.Struct:
			return c.object(path, depth, true, func(key string) (reflect.Type, error) {
				ft, ok := fieldsOf(t)[key]
				if !ok {
					if other := foldMatch(fieldsOf(t), key); other != "" {
						return nil, fmt.Errorf("%w: unknown key %q (keys are case-sensitive: %q)", ErrInvalid, join(path, key), other)
					}
					return nil, fmt.Errorf("%w: unknown key %q", ErrInvalid, join(path, key))
				}
				return ft, nil
			})
		case tok == '{' && t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
			return c.object(path, depth, false, func(string) (reflect.Type, error) { return t.Elem(), nil })
		case tok == '{' && t.Kind() == reflect.Interface:
			return c.object(path, depth, false, func(string) (reflect.Type, error) { return t, nil })
		case tok == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Interface):
			elem := t
			if t.Kind() != reflect.Interface {
				elem = t.Elem()
			}
			for i := 0; c.dec.More(); i++ {
				if err := c.value(elem, path+"["+strconv.Itoa(i)+"]", depth+1, false); err != nil {
					return err
				}
			}
			_, err := c.dec.Token() // ']'
			return err
		}
		return typeErr(path, t, tok)
	case nil:
		switch t.Kind() {
		case reflect.Interface, reflect.Map, reflect.Slice:
			return nil
		}
		return fmt.Errorf("%w: %s is null, want %s", ErrInvalid, where(path), kindName(t))
	case string:
		if t.Kind() == reflect.String || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return nil
		}
	case bool:
		if t.Kind() == reflect.Bool || t.Kind() == reflect.Interface {
			return nil
		}
	case json.Number:
		return number(path, t, tok)
	}
	return typeErr(path, t, tok)
}

// object reads the keys and values of an object whose '{' was read; field
// gives the type of each key's value (or refuses the key). With fold (a
// struct: encoding/json matches its keys without regard to case), keys
// that differ only in case are duplicates too.
func (c *checker) object(path string, depth int, fold bool, field func(key string) (reflect.Type, error)) error {
	seen := map[string]string{} // key (lower-cased with fold) -> key as given
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
		}
		key := tok.(string) // the decoder only yields string keys
		norm := key
		if fold {
			norm = strings.ToLower(key)
		}
		if prev, dup := seen[norm]; dup {
			if prev == key {
				return fmt.Errorf("%w: key %q given twice", ErrInvalid, join(path, key))
			}
			return fmt.Errorf("%w: keys %q and %q differ only in case", ErrInvalid, join(path, prev), join(path, key))
		}
		seen[norm] = key
		ft, err := field(key)
		if err != nil {
			return err
		}
		if err := c.value(ft, join(path, key), depth+1, false); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil { // '}'
		return fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
	}
	return nil
}

// skip consumes the rest of a value whose first token was tok.
func (c *checker) skip(tok json.Token, depth int) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for level := 1; level > 0; {
		if depth+level > maxDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrInvalid, maxDepth)
		}
		t, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			level++
		case json.Delim('}'), json.Delim(']'):
			level--
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func number(path string, t reflect.Type, n json.Number) error {
	s := n.String()
	var err error
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 10, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(s, 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(s, t.Bits())
	default:
		return typeErr(path, t, n)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %s is not %s", ErrInvalid, where(path), s, kindName(t))
	}
	return nil
}

func typeErr(path string, t reflect.Type, tok json.Token) error {
	return fmt.Errorf("%w: %s must be %s, not %s", ErrInvalid, where(path), kindName(t), describe(tok))
}

func describe(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer (%d bits)", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Sprintf("an unsigned integer (%d bits)", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldsOf maps the JSON names of t's fields (as encoding/json sees
// them) to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	addFields(t, out, 0)
	return out
}

func addFields(t reflect.Type, out map[string]reflect.Type, depth int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && depth < maxDepth {
				addFields(ft, out, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := out[name]; !dup {
			out[name] = f.Type
		}
	}
}

// foldMatch returns the field name equal to key under case folding, if any.
func foldMatch(fields map[string]reflect.Type, key string) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return name
		}
	}
	return ""
}
