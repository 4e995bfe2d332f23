package ratelimit

// This file reads the IETF draft's RateLimit and RateLimit-Policy fields
// for ParseHeaders. They are Structured Field lists (RFC 9651), so it also
// holds the part of RFC 9651 they need: a list parser that validates every
// member, as section 4.2 requires (a field that fails to parse is ignored
// whole), and keeps only the member values and the parameters the draft
// defines. It works on the field's string in place and allocates nothing.

// ietfRequests reads draft-ietf-httpapi-ratelimit-headers-11's RateLimit
// (section 4) and RateLimit-Policy (section 3) field lines into a request
// quota. See ParseHeaders for which items it picks.
func ietfRequests(limits, policies []string) Quota {
	if len(limits) == 0 && len(policies) == 0 {
		return Quota{}
	}
	var pt policyTable
	pt.read(policies)
	var q Quota
	var pol policy
	var polFound bool
	if best, ok := leastServiceLimit(limits, &pt); ok {
		q.Remaining, q.HasRemaining = best.r.n, true
		if best.t.nonNegativeInteger() {
			q.Reset, q.HasReset = secondsCapped(best.t.n), true
		}
		pol, polFound = pt.lookup(best.value.s)
	} else {
		pol, polFound = pt.firstRequests()
	}
	if polFound && pol.hasQ {
		q.Limit, q.HasLimit = pol.q, true
	}
	return q
}

// leastServiceLimit returns, of the RateLimit service-limit items whose
// policy counts requests, the one with the least available quota r, and
// of those the longest effective window t. ok is false when there is none
// or the field is malformed.
func leastServiceLimit(limits []string, pt *policyTable) (best sfMember, ok bool) {
	for _, line := range limits {
		l := newSFList(line)
		for {
			m, more := l.next()
			if !more {
				break
			}
			// Section 4.1: an Item whose value names the policy, with a
			// REQUIRED non-negative Integer r.
			if m.inner || m.value.kind != sfString || !m.r.nonNegativeInteger() {
				continue
			}
			// A policy the response does not describe counts requests, the
			// default unit; one beyond the table's capacity is unknown.
			if pol, found := pt.lookup(m.value.s); (found && !pol.requests) || (!found && pt.overflow) {
				continue
			}
			if !ok || m.r.n < best.r.n ||
				(m.r.n == best.r.n && m.t.nonNegativeInteger() &&
					(!best.t.nonNegativeInteger() || m.t.n > best.t.n)) {
				best, ok = m, true
			}
		}
		if l.err {
			return sfMember{}, false
		}
	}
	return best, ok
}

// maxPolicies bounds the RateLimit-Policy items kept for lookup, so that
// matching service-limit items to policies stays linear in the size of the
// fields, whatever a server sends. The draft's examples have one to three.
const maxPolicies = 16

// policy is what a RateLimit-Policy item (section 3.1) says that matters
// here: its name (a String, still escaped), its quota q and whether its
// quota unit is requests.
type policy struct {
	name     string
	q        int64
	hasQ     bool
	requests bool
}

// policyTable holds the first maxPolicies items of a valid RateLimit-Policy
// field; a malformed field leaves it empty.
type policyTable struct {
	items    [maxPolicies]policy
	n        int
	overflow bool // the field had more items than the table holds
}

func (pt *policyTable) read(lines []string) {
	for _, line := range lines {
		l := newSFList(line)
		for {
			m, more := l.next()
			if !more {
				break
			}
			if m.inner || m.value.kind != sfString {
				continue // section 3: the Item value MUST be a String
			}
			if pt.n == maxPolicies {
				pt.overflow = true
				continue
			}
			pt.items[pt.n] = policy{
				name:     m.value.s,
				q:        m.q.n,
				hasQ:     m.q.nonNegativeInteger(),
				requests: m.countsRequests(),
			}
			pt.n++
		}
		if l.err {
			*pt = policyTable{}
			return
		}
	}
}

// lookup returns the first policy named name.
func (pt *policyTable) lookup(name string) (policy, bool) {
	for _, p := range pt.items[:pt.n] {
		if p.name == name {
			return p, true
		}
	}
	return policy{}, false
}

// firstRequests returns the first policy that counts requests and has a
// quota.
func (pt *policyTable) firstRequests() (policy, bool) {
	for _, p := range pt.items[:pt.n] {
		if p.requests && p.hasQ {
			return p, true
		}
	}
	return policy{}, false
}

// countsRequests reports whether a policy's quota unit (section 3.1.2) is
// requests: qu absent (the default) or "requests". The draft's section
// 3.1.2 spells the unit "requests" and its registry (section 10.3)
// "request"; both are taken.
func (m sfMember) countsRequests() bool {
	switch m.qu.kind {
	case sfNone:
		return true
	case sfString:
		return m.qu.s == "requests" || m.qu.s == "request"
	}
	return false
}

type sfKind uint8

const (
	sfNone sfKind = iota // absent
	sfInteger
	sfDecimal
	sfString
	sfToken
	sfByteSequence
	sfBoolean
	sfDate
	sfDisplayString
)

// sfBare is a bare item. Only Integers keep their value, in n; Strings and
// Tokens keep their text in s (a String still escaped, without quotes).
type sfBare struct {
	kind sfKind
	n    int64
	s    string
}

func (b sfBare) nonNegativeInteger() bool { return b.kind == sfInteger && b.n >= 0 }

// sfMember is a list member with the parameters the draft defines.
type sfMember struct {
	value       sfBare // the Item's value; none for an inner list
	inner       bool   // an Inner List, which neither field allows
	r, t, q, qu sfBare // parameters; kind sfNone when absent
}

// sfList parses a List (RFC 9651 section 4.2.1) member by member.
type sfList struct {
	s   string
	i   int
	err bool
}

func newSFList(s string) sfList {
	l := sfList{s: s}
	l.skipSP()
	return l
}

// next returns the next member. more is false at the end of the list and
// on a syntax error, which sets l.err.
func (l *sfList) next() (m sfMember, more bool) {
	if l.err || l.i >= len(l.s) {
		return m, false
	}
	if l.s[l.i] == '(' {
		m.inner = true
		l.innerList()
	} else {
		m.value = l.bareItem()
	}
	l.params(&m)
	if l.err {
		return sfMember{}, false
	}
	l.skipOWS()
	if l.i == len(l.s) {
		return m, true
	}
	if l.s[l.i] != ',' {
		return l.fail()
	}
	l.i++
	l.skipOWS()
	if l.i == len(l.s) { // a trailing comma
		return l.fail()
	}
	return m, true
}

func (l *sfList) fail() (sfMember, bool) {
	l.err = true
	return sfMember{}, false
}

func (l *sfList) skipSP() {
	for l.i < len(l.s) && l.s[l.i] == ' ' {
		l.i++
	}
}

func (l *sfList) skipOWS() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

// innerList skips an Inner List (section 4.2.1.2), checking its syntax.
func (l *sfList) innerList() {
	l.i++ // '('
	for !l.err {
		l.skipSP()
		if l.i >= len(l.s) {
			l.err = true
			return
		}
		if l.s[l.i] == ')' {
			l.i++
			return
		}
		l.bareItem()
		var ignored sfMember
		l.params(&ignored)
		if l.i < len(l.s) && l.s[l.i] != ' ' && l.s[l.i] != ')' {
			l.err = true
		}
	}
}

// params parses Parameters (section 4.2.3.2) into m, a later duplicate
// key overriding an earlier one.
func (l *sfList) params(m *sfMember) {
	for !l.err && l.i < len(l.s) && l.s[l.i] == ';' {
		l.i++
		l.skipSP()
		key := l.key()
		v := sfBare{kind: sfBoolean, n: 1} // a key without a value is true
		if l.i < len(l.s) && l.s[l.i] == '=' {
			l.i++
			v = l.bareItem()
		}
		switch key {
		case "r":
			m.r = v
		case "t":
			m.t = v
		case "q":
			m.q = v
		case "qu":
			m.qu = v
		}
	}
}

// key parses a parameter key (section 4.2.3.3).
func (l *sfList) key() string {
	start := l.i
	if l.i >= len(l.s) || !(isLCAlpha(l.s[l.i]) || l.s[l.i] == '*') {
		l.err = true
		return ""
	}
	for l.i++; l.i < len(l.s); l.i++ {
		c := l.s[l.i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
	}
	return l.s[start:l.i]
}

// bareItem parses a Bare Item (section 4.2.3.1).
func (l *sfList) bareItem() sfBare {
	if l.i >= len(l.s) {
		l.err = true
		return sfBare{}
	}
	switch c := l.s[l.i]; {
	case c == '-' || isDigit(c):
		return l.number()
	case c == '"':
		return l.str()
	case c == '*' || isAlpha(c):
		return l.token()
	case c == ':':
		return l.byteSequence()
	case c == '?':
		if l.i+1 < len(l.s) && (l.s[l.i+1] == '0' || l.s[l.i+1] == '1') {
			l.i += 2
			return sfBare{kind: sfBoolean, n: int64(l.s[l.i-1] - '0')}
		}
	case c == '@':
		l.i++
		if b := l.number(); b.kind == sfInteger {
			return sfBare{kind: sfDate, n: b.n}
		}
	case c == '%':
		return l.displayString()
	}
	l.err = true
	return sfBare{}
}

// number parses an Integer or a Decimal (section 4.2.4): at most 15
// digits, or 12 before and 1 to 3 after the point.
func (l *sfList) number() sfBare {
	neg := false
	if l.i < len(l.s) && l.s[l.i] == '-' { // "@" may have been the last byte
		neg = true
		l.i++
	}
	start := l.i
	var n int64
	for l.i < len(l.s) && isDigit(l.s[l.i]) {
		n = n*10 + int64(l.s[l.i]-'0')
		l.i++
		if l.i-start > 15 {
			l.err = true
			return sfBare{}
		}
	}
	intDigits := l.i - start
	if intDigits == 0 {
		l.err = true
		return sfBare{}
	}
	if neg {
		n = -n
	}
	if l.i >= len(l.s) || l.s[l.i] != '.' {
		return sfBare{kind: sfInteger, n: n}
	}
	l.i++
	frac := l.i
	for l.i < len(l.s) && isDigit(l.s[l.i]) {
		l.i++
	}
	if intDigits > 12 || l.i == frac || l.i-frac > 3 {
		l.err = true
		return sfBare{}
	}
	return sfBare{kind: sfDecimal}
}

// str parses a String (section 4.2.5), keeping its escaped contents.
func (l *sfList) str() sfBare {
	l.i++ // '"'
	start := l.i
	for ; l.i < len(l.s); l.i++ {
		switch c := l.s[l.i]; {
		case c == '\\':
			l.i++
			if l.i >= len(l.s) || (l.s[l.i] != '"' && l.s[l.i] != '\\') {
				l.err = true
				return sfBare{}
			}
		case c == '"':
			l.i++
			return sfBare{kind: sfString, s: l.s[start : l.i-1]}
		case c < 0x20 || c > 0x7e:
			l.err = true
			return sfBare{}
		}
	}
	l.err = true // unterminated
	return sfBare{}
}

// token parses a Token (section 4.2.6).
func (l *sfList) token() sfBare {
	start := l.i
	for l.i++; l.i < len(l.s) && (isTChar(l.s[l.i]) || l.s[l.i] == ':' || l.s[l.i] == '/'); l.i++ {
	}
	return sfBare{kind: sfToken, s: l.s[start:l.i]}
}

// byteSequence parses a Byte Sequence (section 4.2.7), checking only its
// alphabet.
func (l *sfList) byteSequence() sfBare {
	for l.i++; l.i < len(l.s); l.i++ {
		c := l.s[l.i]
		if c == ':' {
			l.i++
			return sfBare{kind: sfByteSequence}
		}
		if !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
			break
		}
	}
	l.err = true
	return sfBare{}
}

// displayString parses a Display String (section 4.2.10), checking its
// percent-encoding but not the UTF-8 it encodes: the draft's fields carry
// none, and the value is not used.
func (l *sfList) displayString() sfBare {
	l.i++ // '%'
	if l.i >= len(l.s) || l.s[l.i] != '"' {
		l.err = true
		return sfBare{}
	}
	for l.i++; l.i < len(l.s); l.i++ {
		switch c := l.s[l.i]; {
		case c == '"':
			l.i++
			return sfBare{kind: sfDisplayString}
		case c == '%':
			if l.i+2 >= len(l.s) || !isLCHex(l.s[l.i+1]) || !isLCHex(l.s[l.i+2]) {
				l.err = true
				return sfBare{}
			}
			l.i += 2
		case c < 0x20 || c > 0x7e:
			l.err = true
			return sfBare{}
		}
	}
	l.err = true
	return sfBare{}
}

func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || (c >= 'A' && c <= 'Z') }
func isLCHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') }

// isTChar reports whether c is an RFC 9110 tchar.
func isTChar(c byte) bool {
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return isDigit(c) || isAlpha(c)
}
