package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting describes one configuration value and the names it goes by.
type Setting struct {
	// Key is the dotted YAML path, e.g. "nats.max-age".
	Key string
	// Env is the environment variable, e.g. "ALUM_NATS_MAX_AGE".
	Env string
	// Flag is the command-line flag without dashes, e.g. "nats-max-age".
	Flag string
	// Help says what the setting does.
	Help string
	// Default is the default value as it would be written.
	Default string
	// Type names the kind of value: string, int, duration, size, list, durations.
	Type string

	index []int // field path in Config, for reflect.Value.FieldByIndex
}

// EnvPrefix starts every configuration variable.
const EnvPrefix = "ALUM_"

// ConfigEnv names the variable holding the config file's path.
const ConfigEnv = EnvPrefix + "CONFIG"

// The registry is derived once from Config's tags; it never changes.
var (
	settings = collectSettings()
	byKey    = indexSettings(func(s Setting) string { return s.Key })
	byFlag   = indexSettings(func(s Setting) string { return s.Flag })
	sections = collectSections()
)

// Settings lists every setting in declaration order, for help text and docs.
func Settings() []Setting { return append([]Setting(nil), settings...) }

func collectSettings() []Setting {
	var out []Setting
	def := reflect.ValueOf(Default())
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("yaml")
			if name == "" || name == "-" {
				panic(fmt.Sprintf("config: field %s has no yaml tag", f.Name))
			}
			key := prefix + name
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, key+".", idx)
				continue
			}
			out = append(out, Setting{
				Key:     key,
				Env:     EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key)),
				Flag:    strings.ReplaceAll(key, ".", "-"),
				Help:    f.Tag.Get("help"),
				Default: format(def.FieldByIndex(idx)),
				Type:    typeName(f.Type),
				index:   idx,
			})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

func indexSettings(keyOf func(Setting) string) map[string]Setting {
	m := map[string]Setting{}
	for _, s := range settings {
		k := keyOf(s)
		if _, dup := m[k]; dup {
			panic("config: two settings are both named " + k)
		}
		m[k] = s
	}
	return m
}

// collectSections maps each section key ("" for the top, "nats", ...) to
// the keys directly inside it, for "known keys" hints.
func collectSections() map[string][]string {
	m := map[string][]string{}
	for _, s := range settings {
		section, name := "", s.Key
		if i := strings.LastIndexByte(s.Key, '.'); i >= 0 {
			section, name = s.Key[:i], s.Key[i+1:]
			if !slices.Contains(m[""], section) {
				m[""] = append(m[""], section)
			}
		}
		m[section] = append(m[section], name)
	}
	return m
}

func (s Setting) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(s.index)
}

// set parses raw into the setting's field of c.
func (s Setting) set(c *Config, raw string) error {
	return parseInto(s.field(c), raw)
}

// setList sets a list setting from separate items (a YAML sequence). For a
// scalar setting it is an error.
func (s Setting) setList(c *Config, items []string) error {
	v := s.field(c)
	if v.Kind() != reflect.Slice {
		return fmt.Errorf("expects a single value, not a list")
	}
	out := reflect.MakeSlice(v.Type(), 0, len(items))
	for _, it := range items {
		elem := reflect.New(v.Type().Elem()).Elem()
		if err := parseInto(elem, it); err != nil {
			return err
		}
		out = reflect.Append(out, elem)
	}
	v.Set(out)
	return nil
}

// parseInto reads raw into v, whose type is one Config uses.
func parseInto(v reflect.Value, raw string) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = strings.TrimSpace(raw)
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		*p = b
	case *time.Duration:
		d, err := parseDuration(raw)
		if err != nil {
			return err
		}
		*p = d
	case *ByteSize:
		b, err := ParseByteSize(raw)
		if err != nil {
			return err
		}
		*p = b
	case *[]string:
		*p = splitList(raw)
	case *[]time.Duration:
		items := splitList(raw)
		ds := make([]time.Duration, 0, len(items))
		for _, it := range items {
			d, err := parseDuration(it)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		*p = ds
	default:
		panic(fmt.Sprintf("config: no parser for %s", v.Type()))
	}
	return nil
}

func parseDuration(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; use a number with a unit, such as 500ms, 30s, 5m or 168h", raw)
	}
	return d, nil
}

func splitList(raw string) []string {
	out := []string{}
	for _, part := range strings.Split(raw, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// format writes v the way parseInto reads it.
func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Duration:
		return formatDuration(x)
	case ByteSize:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	case []time.Duration:
		parts := make([]string, len(x))
		for i, d := range x {
			parts[i] = formatDuration(d)
		}
		return strings.Join(parts, ",")
	}
	panic(fmt.Sprintf("config: no formatter for %s", v.Type()))
}

// formatDuration writes d as time.Duration does, without zero trailing
// units: 168h rather than 168h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// typeName is the word flag help shows for a setting's value.
func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "duration"
	case reflect.TypeOf(ByteSize(0)):
		return "size"
	case reflect.TypeOf([]time.Duration(nil)):
		return "durations"
	case reflect.TypeOf([]string(nil)):
		return "list"
	}
	return t.Kind().String()
}
