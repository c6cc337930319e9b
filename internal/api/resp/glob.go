package resp

// globMatch reports whether str matches the Redis glob pattern: '*' any
// sequence, '?' any byte, '[abc]' '[^a]' '[a-z]' classes, '\x' a literal x.
// Like Redis, matching is byte-wise and case-sensitive, a class left open
// at the end of the pattern ends there, a trailing lone '\' is literal,
// and the empty string matches only the empty pattern (callers special-case
// the pattern "*", as Redis's KEYS and SCAN do).
//
// It runs in O(len(pattern)·len(str)) time without recursion: every token
// other than '*' matches exactly one byte, so on a mismatch it is enough to
// retry from the most recent '*' one byte further on.
func globMatch(pattern, str []byte) bool {
	if len(str) == 0 {
		return len(pattern) == 0
	}
	p, s := 0, 0
	starP, starS := -1, 0
	for s < len(str) {
		if p < len(pattern) {
			if pattern[p] == '*' {
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starS = p, s
				continue
			}
			if n, ok := matchOne(pattern[p:], str[s]); ok {
				p += n
				s++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		p, s = starP, starS
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
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
