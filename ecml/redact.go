package ecml

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// The model's types print and log themselves through describe and
// logValue, one reflection-based walk for all of them: a [PAN] shows as
// [MaskPAN], a [Secret] as [Redacted], every other string passes through
// [RedactPANs] (so a card number typed into a public field is masked too),
// a kept *etree.Element (an encrypted stand-in or an unknown element) shows
// only its name, and empty fields are left out. The walk reads fields, never
// calls methods, so a new field or type is covered without new code; the
// tests walk the type graph of Payload to prove every type has the methods.
//
// slog resolves LogValue only at the top of a value, and its JSON handler
// marshals a struct's fields itself; that is why every container type
// implements slog.LogValuer (a group of masked values) and json.Marshaler
// (the same, for a model value inside another struct), and why [PAN] and
// [Secret] also implement encoding.TextMarshaler.

var (
	panType     = reflect.TypeFor[PAN]()
	secretType  = reflect.TypeFor[Secret]()
	elementType = reflect.TypeFor[*etree.Element]()
)

// describe renders v with every secret masked: %+v style, or Go syntax.
func describe(v any, goSyntax bool) string {
	var b strings.Builder
	writeValue(&b, reflect.ValueOf(v), goSyntax)
	return b.String()
}

func writeValue(b *strings.Builder, v reflect.Value, gs bool) {
	switch v.Type() {
	case panType:
		p := PAN(v.String())
		if gs {
			b.WriteString(p.GoString())
		} else {
			b.WriteString(p.Masked())
		}
		return
	case secretType:
		s := Secret(v.String())
		if gs {
			b.WriteString(s.GoString())
		} else {
			b.WriteString(s.Masked())
		}
		return
	case elementType:
		switch {
		case v.IsNil() && gs:
			b.WriteString("nil")
		case v.IsNil():
			b.WriteString("<nil>")
		default:
			b.WriteString(elementSummary(v.Interface().(*etree.Element), gs))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			if gs {
				b.WriteString("(" + v.Type().String() + ")(nil)")
			} else {
				b.WriteString("<nil>")
			}
			return
		}
		b.WriteByte('&')
		writeValue(b, v.Elem(), gs)
	case reflect.Struct:
		if gs {
			b.WriteString(v.Type().String())
		}
		b.WriteByte('{')
		n := 0
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !v.Type().Field(i).IsExported() || f.IsZero() {
				continue
			}
			if n > 0 {
				if gs {
					b.WriteString(", ")
				} else {
					b.WriteByte(' ')
				}
			}
			n++
			b.WriteString(v.Type().Field(i).Name)
			b.WriteByte(':')
			writeValue(b, f, gs)
		}
		b.WriteByte('}')
	case reflect.Slice:
		if gs {
			b.WriteString(v.Type().String())
			b.WriteByte('{')
		} else {
			b.WriteByte('[')
		}
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				if gs {
					b.WriteString(", ")
				} else {
					b.WriteByte(' ')
				}
			}
			writeValue(b, v.Index(i), gs)
		}
		if gs {
			b.WriteByte('}')
		} else {
			b.WriteByte(']')
		}
	case reflect.String:
		s := RedactPANs(v.String())
		if gs {
			if v.Type().PkgPath() != "" {
				b.WriteString(v.Type().String() + "(" + strconv.Quote(s) + ")")
			} else {
				b.WriteString(strconv.Quote(s))
			}
		} else {
			b.WriteString(s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(RedactPANs(strconv.FormatInt(v.Int(), 10)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(RedactPANs(strconv.FormatUint(v.Uint(), 10)))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	default:
		b.WriteString("?" + v.Type().String())
	}
}

// elementSummary names a kept element without its content.
func elementSummary(el *etree.Element, gs bool) string {
	name := RedactPANs(el.FullTag())
	if gs {
		return "&etree.Element{" + strconv.Quote(name) + "}"
	}
	return "<" + name + " …>"
}

// logValue renders v as a slog group of masked values.
func logValue(v any) slog.Value { return slogValue(reflect.ValueOf(v)) }

func slogValue(v reflect.Value) slog.Value {
	switch v.Type() {
	case panType:
		return slog.StringValue(PAN(v.String()).Masked())
	case secretType:
		return slog.StringValue(Secret(v.String()).Masked())
	case elementType:
		if v.IsNil() {
			return slog.StringValue("<nil>")
		}
		return slog.StringValue(elementSummary(v.Interface().(*etree.Element), false))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return slog.StringValue("<nil>")
		}
		return slogValue(v.Elem())
	case reflect.Struct:
		attrs := make([]slog.Attr, 0, v.NumField())
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !v.Type().Field(i).IsExported() || f.IsZero() {
				continue
			}
			attrs = append(attrs, slog.Attr{Key: v.Type().Field(i).Name, Value: slogValue(f)})
		}
		return slog.GroupValue(attrs...)
	case reflect.Slice:
		attrs := make([]slog.Attr, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			attrs = append(attrs, slog.Attr{Key: strconv.Itoa(i), Value: slogValue(v.Index(i))})
		}
		return slog.GroupValue(attrs...)
	case reflect.String:
		return slog.StringValue(RedactPANs(v.String()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var b strings.Builder
		writeValue(&b, v, false)
		return slog.StringValue(b.String())
	case reflect.Bool:
		return slog.BoolValue(v.Bool())
	}
	return slog.StringValue("?" + v.Type().String())
}

// formatValue implements fmt.Formatter for the container types: %#v is
// GoString, %q quotes String, every other verb prints String.
func formatValue(f fmt.State, verb rune, v any) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = f.Write([]byte(describe(v, true)))
	case verb == 'q':
		_, _ = f.Write([]byte(strconv.Quote(describe(v, false))))
	default:
		_, _ = f.Write([]byte(describe(v, false)))
	}
}

// marshalJSON renders v as JSON with every secret masked: the model's JSON
// form is for logs (slog's JSON handler marshals the fields of a struct that
// holds a model value), never a way to carry the data.
func marshalJSON(v any) ([]byte, error) { return json.Marshal(jsonValue(reflect.ValueOf(v))) }

func jsonValue(v reflect.Value) any {
	switch v.Type() {
	case panType, secretType, elementType:
		return slogValue(v).String()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return jsonValue(v.Elem())
	case reflect.Struct:
		m := make(map[string]any, v.NumField())
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !v.Type().Field(i).IsExported() || f.IsZero() {
				continue
			}
			m[v.Type().Field(i).Name] = jsonValue(f)
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonValue(v.Index(i))
		}
		return out
	case reflect.Bool:
		return v.Bool()
	}
	return slogValue(v).String()
}
