package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Server configuration comes from four layers, highest first: the command
// line, REPLICANT_<FLAG> environment variables, the --config file, the
// flag's default. Every layer speaks the flags' own names and value syntax
// (pflag's Set), so a flag added to `replicant server` is configurable
// everywhere without touching this file. docs/design/configuration.md says
// why the file is `key = value` lines and not YAML, TOML or JSON.

const (
	// envPrefix starts every server environment variable: --sync-timeout
	// is REPLICANT_SYNC_TIMEOUT, as etcd's --election-timeout is
	// ETCD_ELECTION_TIMEOUT.
	envPrefix = "REPLICANT_"
	// configFlag names the file layer. It can come from the command line or
	// $REPLICANT_CONFIG, not from the file itself.
	configFlag = "config"
	// ownEnvAnnotation marks a flag that reads its REPLICANT_ variable
	// itself, with its own rules (--requirepass and --peer-secret refuse
	// two sources instead of letting one shadow the other). The generic
	// environment layer leaves such a flag alone.
	ownEnvAnnotation = "replicant_own_env"
)

// otherCommandsEnv reports whether name is a REPLICANT_ variable another
// replicant command reads; a server started from the same shell must not
// warn about it.
func otherCommandsEnv(name string) bool {
	// The client commands' --password and --cacert.
	return name == "REPLICANT_PASSWORD" || name == envCACert
}

// envName is the environment variable of a server flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configLoad is what the environment and file layers did: where each
// flag they set came from, and warnings to log once the logger exists.
type configLoad struct {
	// sources maps a flag name to where its value came from, e.g.
	// "$REPLICANT_SYNC_TIMEOUT" or "/etc/replicant.conf:4". Flags given on
	// the command line or left at their default are absent.
	sources map[string]string
	notes   []string
}

// from describes where flag's value came from, for messages: "--name"
// for the command line, "name in FILE:LINE" or "$REPLICANT_NAME" otherwise.
func (c configLoad) from(flag string) string {
	if src, ok := c.sources[flag]; ok {
		if strings.HasPrefix(src, "$") {
			return src
		}
		return flag + " in " + src
	}
	return "--" + flag
}

// loadConfig fills every flag of fs that the command line did not set, from
// environ (os.Environ's form) and then from the --config file. It must run
// after fs has parsed the command line. A malformed value or an unknown key
// in the file is an error; an unknown REPLICANT_ variable only a warning,
// since an environment is shared with other programs and outlives config
// changes (etcd warns about unknown ETCD_ variables the same way).
func loadConfig(fs *pflag.FlagSet, environ []string) (configLoad, error) {
	res := configLoad{sources: map[string]string{}}
	fromCmdline := map[string]bool{}
	known := map[string]*pflag.Flag{} // environment variable → flag
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			fromCmdline[f.Name] = true
		}
		if configurable(f) {
			known[envName(f.Name)] = f
		}
	})

	env := map[string]string{}
	var names []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefix) {
			continue
		}
		env[k] = v
		names = append(names, k)
	}
	sort.Strings(names) // notes in a stable order
	for _, name := range names {
		v := env[name]
		f, ok := known[name]
		switch {
		case !ok && otherCommandsEnv(name):
		case !ok:
			res.notes = append(res.notes, fmt.Sprintf("environment variable %s matches no server flag (would be --%s); ignored", name, flagOfEnv(name)))
		case ownsEnv(f):
			// Read by the flag's own code (see ownEnvAnnotation).
		case v == "":
			// Unset in effect, as an empty secret variable already is:
			// `REPLICANT_JOIN=` in an env file must not mean "join ''".
		case fromCmdline[f.Name]:
			res.notes = append(res.notes, fmt.Sprintf("--%s on the command line overrides $%s", f.Name, name))
		default:
			if err := fs.Set(f.Name, v); err != nil {
				return res, fmt.Errorf("$%s: invalid value %q for --%s: %w", name, v, f.Name, err)
			}
			res.sources[f.Name] = "$" + name
		}
	}

	cf := fs.Lookup(configFlag)
	if cf == nil || cf.Value.String() == "" {
		return res, nil
	}
	path := cf.Value.String()
	data, err := os.ReadFile(path)
	if err != nil {
		return res, fmt.Errorf("--config: %w", err)
	}
	entries, err := parseConfigFile(path, data)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		f := fs.Lookup(e.key)
		where := fmt.Sprintf("%s:%d", path, e.line)
		switch {
		case e.key == configFlag:
			return res, fmt.Errorf("%s: %q cannot be set in a config file (one file only; give it with --config or $%s)", where, e.key, envName(configFlag))
		case f == nil || !configurable(f):
			msg := fmt.Sprintf("%s: unknown key %q: no `replicant server` flag --%s", where, e.key, e.key)
			if s := closestFlag(fs, e.key); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return res, errors.New(msg)
		case fromCmdline[f.Name] || res.sources[f.Name] != "":
			// A higher layer set it; the file is the fallback.
		default:
			if err := fs.Set(f.Name, e.value); err != nil {
				return res, fmt.Errorf("%s: invalid value %q for %s: %w", where, e.value, e.key, err)
			}
			res.sources[f.Name] = where
		}
	}
	return res, nil
}

// configurable reports whether a flag is taken from the environment and
// the file. --help is a flag to cobra but no setting.
func configurable(f *pflag.Flag) bool { return f.Name != "help" }

func ownsEnv(f *pflag.Flag) bool { _, ok := f.Annotations[ownEnvAnnotation]; return ok }

// flagOfEnv is the flag name an environment variable would stand for.
func flagOfEnv(name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "_", "-"))
}

// configEntry is one `key = value` line of a config file.
type configEntry struct {
	key, value string
	line       int
}

// configKey is a flag name as pflag allows it in practice: what a user
// can write after "--".
var configKey = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// parseConfigFile parses the file format of docs/deploy.md:
//
//	# a comment
//	sync-timeout = 2s          # a comment after a value
//	sync = 'FIRST 1 (*)'       # single quotes: taken literally
//	requirepass = "a \"b\" #c" # double quotes: Go escapes
//
// Keys are server flag names; a key may appear once. An unquoted value
// ends at " #" so that comments can follow it; quote a value containing
// that.
func parseConfigFile(path string, data []byte) ([]configEntry, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM some editors write
	var out []configEntry
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	// A value can be a long --initial-cluster list; a line is not capped
	// below a megabyte.
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, n)
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return nil, fmt.Errorf("%s: want key = value, got %q", where, line)
		}
		if strings.HasPrefix(k, "-") {
			return nil, fmt.Errorf("%s: write the key without dashes: %s = ...", where, strings.TrimLeft(k, "-"))
		}
		if !configKey.MatchString(k) {
			return nil, fmt.Errorf("%s: invalid key %q: keys are server flag names such as sync-timeout", where, k)
		}
		val, err := configValue(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, k, err)
		}
		if first, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s: %s is already set on line %d", where, k, first)
		}
		seen[k] = n
		out = append(out, configEntry{key: k, value: val, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// configValue unquotes the text after "=" and drops a trailing comment.
func configValue(v string) (string, error) {
	var val, rest string
	switch {
	case strings.HasPrefix(v, `"`):
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", fmt.Errorf("unterminated or invalid double-quoted value %s", v)
		}
		val, _ = strconv.Unquote(q) // QuotedPrefix accepted it
		rest = v[len(q):]
	case strings.HasPrefix(v, "'"):
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated single-quoted value %s", v)
		}
		val, rest = v[1:1+end], v[2+end:]
	default:
		if i := commentStart(v); i >= 0 {
			v = v[:i]
		}
		return strings.TrimSpace(v), nil
	}
	if rest = strings.TrimSpace(rest); rest != "" && !strings.HasPrefix(rest, "#") {
		return "", fmt.Errorf("unexpected %q after the quoted value", rest)
	}
	return val, nil
}

// commentStart is the index of a " #" or "\t#" comment in v, or -1.
func commentStart(v string) int {
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// closestFlag suggests the flag a mistyped key probably meant: the nearest
// by edit distance, if it is near enough to be a typo.
func closestFlag(fs *pflag.FlagSet, key string) string {
	best, bestD := "", 3 // more than 2 edits is another word, not a typo
	fs.VisitAll(func(f *pflag.Flag) {
		if !configurable(f) || f.Name == configFlag {
			return
		}
		if d := editDistance(key, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
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
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
