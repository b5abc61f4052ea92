package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConnectFlags are the flags of subcommands that only reach the data
// (tenant, dlq, migrate, ...): where the data directory, database and bus are.
func ConnectFlags() []string {
	return []string{"data-dir", "database-url", "nats-url", "nats-listen-addr", "log-level", "log-format"}
}

// ServeFlags are the flags of the serve subcommand: every setting.
func ServeFlags() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.Flag
	}
	return out
}

// Binder connects a subcommand's flag set to the configuration. Flags are
// parsed first but applied last, so they override the file and variables.
type Binder struct {
	configPath string
	// raw holds the text of each flag given, by flag name; parsed again on
	// top of the file and the environment in Load.
	raw map[string]string
}

// Bind registers --config and the flags named (see ServeFlags,
// ConnectFlags) on fs. Call fs.Parse, then Load. A name that is no
// setting's flag is a programming error and panics.
func Bind(fs *flag.FlagSet, names ...string) *Binder {
	b := &Binder{raw: map[string]string{}}
	fs.StringVar(&b.configPath, "config", "", "YAML configuration file (env "+ConfigEnv+")")
	for _, name := range names {
		s, ok := byFlag[name]
		if !ok {
			panic(fmt.Sprintf("config: no setting has the flag %q", name))
		}
		// The back-quoted type is what the flag package shows as the
		// value's name in -help (instead of "value").
		fs.Var(&flagValue{b: b, s: s}, name, fmt.Sprintf("%s (`%s`; env %s)", s.Help, s.Type, s.Env))
	}
	return b
}

// Load builds the configuration: defaults, then the file named by --config
// or ALUM_CONFIG, then ALUM_* variables read through env (os.Getenv in
// production; a variable that is empty counts as unset), then the flags
// given. The result is validated; every problem found is in the error.
func (b *Binder) Load(env func(string) string) (Config, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	cfg := Default()
	path := b.configPath
	if path == "" {
		path = strings.TrimSpace(env(ConfigEnv))
	}
	if path != "" {
		if err := applyFile(&cfg, path); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	// Flags in declaration order, so the outcome does not depend on map order.
	for _, s := range settings {
		if raw, ok := b.raw[s.Flag]; ok {
			if err := s.set(&cfg, raw); err != nil {
				return Config{}, fmt.Errorf("flag --%s: %w", s.Flag, err) // already checked when parsed
			}
		}
	}
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Load binds names (every setting when none are given) on fs, parses args
// and loads the configuration: the whole sequence for a subcommand with no
// flags of its own. Positional arguments are left in fs.Args().
func Load(args []string, env func(string) string, fs *flag.FlagSet, names ...string) (Config, error) {
	if len(names) == 0 {
		names = ServeFlags()
	}
	b := Bind(fs, names...)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return b.Load(env)
}

// flagValue is a setting's flag. Set checks the value at once (so the flag
// package reports it with the flag's name) and records the text for Load.
type flagValue struct {
	b *Binder
	s Setting
}

func (f *flagValue) String() string {
	if f == nil || f.b == nil {
		return "" // the flag package calls String on a zero value to find defaults
	}
	if raw, ok := f.b.raw[f.s.Flag]; ok {
		return raw
	}
	return f.s.Default
}

func (f *flagValue) Set(raw string) error {
	scratch := Default()
	if err := f.s.set(&scratch, raw); err != nil {
		return err
	}
	f.b.raw[f.s.Flag] = raw
	return nil
}

func applyEnv(cfg *Config, env func(string) string) error {
	var errs []error
	for _, s := range settings {
		raw := env(s.Env)
		if raw == "" {
			continue
		}
		if err := s.set(cfg, raw); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", s.Env, err))
		}
	}
	return errors.Join(errs...)
}

func applyFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file changes nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: the file must be a mapping of settings such as `http-addr: :8080`", path, root.Line)
	}
	if errs := applyMapping(cfg, root, ""); len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("config file %s: %w", path, e)
		}
		return errors.Join(errs...)
	}
	return nil
}

// applyMapping applies the keys of mapping node n under section (a dotted
// prefix, "" at the top), collecting every problem.
func applyMapping(cfg *Config, n *yaml.Node, section string) []error {
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		key := k.Value
		if section != "" {
			key = section + "." + k.Value
		}
		if seen[k.Value] {
			errs = append(errs, fmt.Errorf("line %d: key %q appears twice; keep one", k.Line, key))
			continue
		}
		seen[k.Value] = true
		if s, ok := byKey[key]; ok {
			if err := applyValue(cfg, s, v); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %w", v.Line, key, err))
			}
			continue
		}
		if _, ok := sections[key]; ok && key != "" {
			if v.Kind != yaml.MappingNode {
				errs = append(errs, fmt.Errorf("line %d: %s must be a mapping of its settings (%s)", v.Line, key, strings.Join(sections[key], ", ")))
				continue
			}
			errs = append(errs, applyMapping(cfg, v, key)...)
			continue
		}
		errs = append(errs, unknownKey(k, key, section))
	}
	return errs
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func applyValue(cfg *Config, s Setting, v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.ShortTag() == "!!null" {
			return s.set(cfg, "")
		}
		return s.set(cfg, v.Value)
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			it = resolveAlias(it)
			if it.Kind != yaml.ScalarNode {
				return fmt.Errorf("list items must be plain values")
			}
			items = append(items, it.Value)
		}
		return s.setList(cfg, items)
	}
	return fmt.Errorf("expects a value, not a mapping")
}

func unknownKey(k *yaml.Node, key, section string) error {
	known := sections[section]
	where := "at the top level"
	if section != "" {
		where = "under " + section
	}
	msg := fmt.Sprintf("line %d: unknown key %q", k.Line, key)
	if guess := closest(k.Value, known); guess != "" {
		msg += fmt.Sprintf("; did you mean %q?", guess)
	}
	return fmt.Errorf("%s (keys %s: %s)", msg, where, strings.Join(known, ", "))
}

// closest finds the known key that name most likely meant: the same
// letters in another case style (dataDir, data_dir), or one edit away.
func closest(name string, known []string) string {
	squash := func(s string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
	}
	for _, k := range known {
		if squash(k) == squash(name) {
			return k
		}
	}
	best, bestDist := "", 3 // more than two edits away is no longer a typo
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
