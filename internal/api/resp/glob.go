package resp

// globMaxNesting is Redis's limit on recursion through '*' while
// matching: a match that needs a deeper one fails. It keeps abusive
// patterns cheap and bounds the stack; replicant answers the same as
// Redis for them.
const globMaxNesting = 1000

// globMatch reports whether str matches the Redis glob pattern: '*' any
// sequence, '?' any byte, '[abc]' '[^a]' '[a-z]' classes, '\x' a literal x.
// Like Redis (stringmatchlen), matching is byte-wise and case-sensitive, a
// class left open at the end of the pattern ends there, a trailing lone
// '\' is literal, the empty string matches only the empty pattern
// (callers special-case the pattern "*", as Redis's KEYS and SCAN do),
// and a match that would recurse through more than globMaxNesting stars
// fails.
//
// Each '*' tries the rest of the pattern at every later position of str.
// Once that fails from every position, no earlier '*' can do better by
// matching more (the rest would have to match even later), so the whole
// match fails at once: with the nesting cap, that keeps the work about
// O(len(pattern) + nesting·len(str)) even for patterns like "*?*?*?…".
func globMatch(pattern, str []byte) bool {
	giveUp := false
	return globMatchFrom(pattern, str, 0, &giveUp)
}

// globMatchFrom matches pattern against str after nesting stars; giveUp is
// set once a star has failed at every position (see globMatch).
func globMatchFrom(pattern, str []byte, nesting int, giveUp *bool) bool {
	if nesting > globMaxNesting {
		return false
	}
	for len(pattern) > 0 && len(str) > 0 {
		if pattern[0] == '*' {
			for len(pattern) > 1 && pattern[1] == '*' {
				pattern = pattern[1:]
			}
			if len(pattern) == 1 {
				return true
			}
			for ; len(str) > 0; str = str[1:] {
				if globMatchFrom(pattern[1:], str, nesting+1, giveUp) {
					return true
				}
				if *giveUp {
					return false
				}
			}
			*giveUp = true
			return false
		}
		n, ok := matchOne(pattern, str[0])
		if !ok {
			return false
		}
		pattern, str = pattern[n:], str[1:]
		if len(str) == 0 {
			// Trailing stars match the empty rest.
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
		}
	}
	return len(pattern) == 0 && len(str) == 0
}

// matchOne matches the single-byte token at the start of pat (not '*')
// against c and returns the token's length.
func matchOne(pat []byte, c byte) (int, bool) {
	switch pat[0] {
	case '?':
		return 1, true
	case '\\':
		if len(pat) >= 2 {
			return 2, pat[1] == c
		}
		return 1, c == '\\'
	case '[':
		return matchClass(pat, c)
	default:
		return 1, pat[0] == c
	}
}

// matchClass matches a '[...]' class at the start of pat.
func matchClass(pat []byte, c byte) (int, bool) {
	i := 1
	not := false
	if i < len(pat) && pat[i] == '^' {
		not = true
		i++
	}
	match := false
	for {
		if i >= len(pat) {
			// Unterminated: Redis treats the end of the pattern as ']'.
			break
		}
		switch {
		case pat[i] == '\\' && i+1 < len(pat):
			if pat[i+1] == c {
				match = true
			}
			i += 2
			continue
		case pat[i] == ']':
			i++
			if not {
				match = !match
			}
			return i, match
		case i+2 < len(pat) && pat[i+1] == '-':
			lo, hi := pat[i], pat[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				match = true
			}
			i += 3
			continue
		default:
			if pat[i] == c {
				match = true
			}
			i++
		}
	}
	if not {
		match = !match
	}
	return i, match
}
