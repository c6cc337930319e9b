package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Kind is the kind of a commit policy.
type Kind uint8

const (
	// Async commits on the leader's own fsync alone.
	Async Kind = iota
	// All waits for every follower.
	All
	// First waits for the first K healthy members in list (priority)
	// order: PostgreSQL's FIRST k (…), semi-synchronous replication when
	// K is 1.
	First
	// Any waits for any K of the listed members.
	Any
)

// String returns the policy keyword ("async", "all", "FIRST", "ANY").
func (k Kind) String() string {
	switch k {
	case Async:
		return "async"
	case All:
		return "all"
	case First:
		return "FIRST"
	case Any:
		return "ANY"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Commit is a cluster-wide commit policy, written in the syntax of
// PostgreSQL's synchronous_standby_names.
//
// K is used by First and Any only. Members lists the candidate
// synchronous followers in priority order; nil means "*", every follower in
// cluster order. Async and all policies have K == 0 and Members == nil.
type Commit struct {
	Kind    Kind
	K       int
	Members []string
}

// Error describes a policy string that does not parse. Its text is
// "INPUT: REASON", e.g. "FIRST 3 (n2,n3): k exceeds the 2 listed members".
type Error struct {
	Input  string
	Reason string
}

func (e *Error) Error() string { return e.Input + ": " + e.Reason }

// ParseCommit parses a commit policy:
//
//	async              (also the empty string) commit on the leader's fsync
//	all                every follower acknowledges
//	FIRST k (n2,n3,…)  the first k healthy listed followers, in list order
//	ANY k (n2,n3,…)    any k of the listed followers
//	k (n2,n3,…)        the same as FIRST k (…)
//
// "*" as the list means every follower, in cluster order; a missing list
// ("FIRST 1") means "*" too. Keywords are case-insensitive, member names are
// not. Errors are *Error values that name the problem.
func ParseCommit(s string) (Commit, error) {
	in := strings.TrimSpace(s)
	bad := func(format string, args ...any) (Commit, error) {
		return Commit{}, &Error{Input: in, Reason: fmt.Sprintf(format, args...)}
	}
	switch strings.ToLower(in) {
	case "", "async":
		return Commit{Kind: Async}, nil
	case "all":
		return Commit{Kind: All}, nil
	}

	head, list, hasList := in, "", false
	nOpen, nClose := strings.Count(in, "("), strings.Count(in, ")")
	switch {
	case nOpen != nClose:
		return bad("unbalanced parentheses")
	case nOpen > 1:
		return bad("only one parenthesised member list is allowed")
	case nOpen == 1:
		open, closing := strings.IndexByte(in, '('), strings.IndexByte(in, ')')
		if closing < open {
			return bad("unbalanced parentheses")
		}
		if rest := strings.TrimSpace(in[closing+1:]); rest != "" {
			return bad("unexpected %q after the member list", rest)
		}
		head, list, hasList = in[:open], in[open+1:closing], true
	}

	p := Commit{Kind: First}
	fields := strings.Fields(head)
	var kstr string
	switch len(fields) {
	case 0:
		return bad("missing method and k (want e.g. FIRST 1 (n2,n3))")
	case 1:
		switch strings.ToUpper(fields[0]) {
		case "FIRST", "ANY":
			return bad("missing k after %s", fields[0])
		}
		if !isDigits(strings.TrimPrefix(fields[0], "-")) {
			return bad("unknown policy (want async, all, FIRST k (…) or ANY k (…))")
		}
		kstr = fields[0]
	case 2:
		switch strings.ToUpper(fields[0]) {
		case "FIRST":
			p.Kind = First
		case "ANY":
			p.Kind = Any
		default:
			return bad("unknown method %q (want FIRST or ANY)", fields[0])
		}
		kstr = fields[1]
	default:
		return bad("unexpected %q before the member list", strings.Join(fields[2:], " "))
	}

	if !isDigits(strings.TrimPrefix(kstr, "-")) {
		return bad("k must be a whole number, got %q", kstr)
	}
	k, err := strconv.Atoi(kstr)
	if err != nil {
		return bad("k %s is out of range", kstr)
	}
	if k < 1 {
		return bad("k must be >= 1")
	}
	p.K = k

	if !hasList {
		return p, nil
	}
	inner := strings.TrimSpace(list)
	switch inner {
	case "":
		return bad("empty member list")
	case "*":
		return p, nil
	}
	for _, raw := range strings.Split(inner, ",") {
		name := strings.TrimSpace(raw)
		switch {
		case name == "":
			return bad("empty member name")
		case name == "*":
			return bad("* must be the only entry of the member list")
		case !validMemberName(name):
			return bad("invalid member name %q", name)
		case slices.Contains(p.Members, name):
			return bad("duplicate member %q", name)
		}
		p.Members = append(p.Members, name)
	}
	if k > len(p.Members) {
		noun := "members"
		if len(p.Members) == 1 {
			noun = "member"
		}
		return bad("k exceeds the %d listed %s", len(p.Members), noun)
	}
	return p, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validMemberName rejects names the policy syntax could not round-trip.
func validMemberName(s string) bool {
	for _, r := range s {
		switch r {
		case '(', ')', ',', '*', '"', '\'', ' ', '\t', '\n', '\r', '\v', '\f':
			return false
		}
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// String returns the canonical form: "async", "all", "FIRST 1 (n2,n3)",
// "ANY 2 (*)". For every policy ParseCommit returns, ParseCommit(p.String())
// returns p again.
func (p Commit) String() string {
	switch p.Kind {
	case Async, All:
		return p.Kind.String()
	case First, Any:
		list := "*"
		if len(p.Members) > 0 {
			list = strings.Join(p.Members, ",")
		}
		return fmt.Sprintf("%s %d (%s)", p.Kind, p.K, list)
	}
	return p.Kind.String()
}

// Validate reports whether p is a policy ParseCommit could have returned.
func (p Commit) Validate() error {
	switch p.Kind {
	case Async, All:
		if p.K != 0 || p.Members != nil {
			return &Error{Input: p.String(), Reason: "k and members apply to FIRST and ANY only"}
		}
		return nil
	case First, Any:
	default:
		return &Error{Input: p.String(), Reason: "unknown policy kind"}
	}
	q, err := ParseCommit(p.String())
	if err != nil {
		return err
	}
	if !q.Equal(p) || (p.Members != nil && len(p.Members) == 0) {
		return &Error{Input: p.String(), Reason: "invalid member list"}
	}
	return nil
}

// Equal reports whether p and q are the same policy (member order matters:
// it is the priority order of FIRST).
func (p Commit) Equal(q Commit) bool {
	return p.Kind == q.Kind && p.K == q.K && slices.Equal(p.Members, q.Members) &&
		(p.Members == nil) == (q.Members == nil)
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (p Commit) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseCommit.
func (p *Commit) UnmarshalText(b []byte) error {
	q, err := ParseCommit(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Ack is how far a follower must have taken an entry for its
// acknowledgement to count towards commit.
type Ack uint8

const (
	// AckReceived counts an entry once the follower has written it (not
	// yet fsynced): PostgreSQL's remote_write.
	AckReceived Ack = iota
	// AckDurable counts an entry once the follower has fsynced it:
	// PostgreSQL's on. The default.
	AckDurable
	// AckApplied counts an entry once the follower has applied it, so a
	// read there sees it: PostgreSQL's remote_apply.
	AckApplied
)

// String returns "received", "durable" or "applied".
func (a Ack) String() string {
	switch a {
	case AckReceived:
		return "received"
	case AckDurable:
		return "durable"
	case AckApplied:
		return "applied"
	}
	return "Ack(" + strconv.Itoa(int(a)) + ")"
}

// ParseAck parses received|durable|applied, or PostgreSQL's names
// remote_write|on|remote_apply, case-insensitively. The empty string is the
// default, durable.
func ParseAck(s string) (Ack, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "received", "remote_write":
		return AckReceived, nil
	case "", "durable", "on":
		return AckDurable, nil
	case "applied", "remote_apply":
		return AckApplied, nil
	}
	return AckDurable, fmt.Errorf("unknown ack level %q (want received, durable or applied)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Ack) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseAck.
func (a *Ack) UnmarshalText(b []byte) error {
	v, err := ParseAck(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Fallback is what the leader does when too few synchronous followers are
// healthy to satisfy the policy.
type Fallback uint8

const (
	// FallbackBlock makes writes wait (and the driver fail them with the
	// reason from Core.Blocked). The default.
	FallbackBlock Fallback = iota
	// FallbackAsync lets commit continue on the leader's fsync alone, with
	// an event, until the policy can be satisfied again.
	FallbackAsync
)

// String returns "block" or "async".
func (f Fallback) String() string {
	switch f {
	case FallbackBlock:
		return "block"
	case FallbackAsync:
		return "async"
	}
	return "Fallback(" + strconv.Itoa(int(f)) + ")"
}

// ParseFallback parses block|async case-insensitively; the empty string is
// the default, block.
func ParseFallback(s string) (Fallback, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "block":
		return FallbackBlock, nil
	case "async":
		return FallbackAsync, nil
	}
	return FallbackBlock, fmt.Errorf("unknown sync fallback %q (want block or async)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (f Fallback) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseFallback.
func (f *Fallback) UnmarshalText(b []byte) error {
	v, err := ParseFallback(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}
