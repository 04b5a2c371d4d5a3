package testutil

import (
	"reflect"
	"testing"
)

// FillExported sets every exported field of the struct ptr points to to a
// value that is not its zero value (nested structs of integers too), so
// that a test can check a copy function forgets none: ZeroExported of
// the copy must then be empty.
func FillExported(t testing.TB, ptr any) {
	t.Helper()
	v := reflect.ValueOf(ptr).Elem()
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).IsExported() {
			fill(t, v.Type().Field(i).Name, v.Field(i))
		}
	}
}

func fill(t testing.TB, name string, f reflect.Value) {
	t.Helper()
	switch f.Kind() {
	case reflect.Bool:
		f.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f.SetUint(7)
	case reflect.String:
		f.SetString("x")
	case reflect.Func:
		typ := f.Type()
		f.Set(reflect.MakeFunc(typ, func([]reflect.Value) []reflect.Value {
			out := make([]reflect.Value, typ.NumOut())
			for i := range out {
				out[i] = reflect.Zero(typ.Out(i))
			}
			return out
		}))
	case reflect.Pointer:
		f.Set(reflect.New(f.Type().Elem()))
	case reflect.Slice:
		f.Set(reflect.MakeSlice(f.Type(), 1, 1))
	case reflect.Struct:
		for j := 0; j < f.NumField(); j++ {
			if f.Type().Field(j).IsExported() {
				fill(t, name+"."+f.Type().Field(j).Name, f.Field(j))
			}
		}
	default:
		t.Fatalf("field %s: FillExported cannot fill a %v", name, f.Kind())
	}
}

// ZeroExported names the exported fields of the struct ptr points to
// that hold their zero value.
func ZeroExported(ptr any) []string {
	v := reflect.ValueOf(ptr).Elem()
	var zero []string
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).IsExported() && v.Field(i).IsZero() {
			zero = append(zero, v.Type().Field(i).Name)
		}
	}
	return zero
}
