package main

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A small PromQL evaluator for the dashboard renderer (render.go): the
// query shapes dashboard.json uses, evaluated in Go over /metrics scrapes,
// since there is no Prometheus here. It supports
//
//	name{label="v", label!="v", label=~"re", label!~"re"}   instant selector
//	rate(sel[$__rate_interval]), increase(sel[...])          counters
//	sum(...), max(...), with "by (labels)" before or after  aggregations
//	histogram_quantile(φ, expr)                              classic buckets
//	a / b, a == 1                                            one-to-one; a filter
//
// and fails, naming what it met, on anything else, so that a dashboard
// edit this renderer cannot draw is caught (TestRendererReadsEveryQuery).
// Grafana's variables: $job matches every job (the scrapes carry none),
// $__rate_interval is the renderer's rate window. Without a Prometheus
// the rate is the increase between the first and the last scrape in the
// window divided by their distance, not extrapolated to the window's
// edges as Prometheus does.

// point is one /metrics scrape: every sample by series.
type point struct {
	at      time.Time
	samples map[string]sample // by seriesKey(name, labels)
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// series is one element of an instant vector.
type series struct {
	labels map[string]string // without __name__
	value  float64
}

type vector []series

// node is a parsed expression.
type node interface {
	// eval evaluates the expression at scrape i of ss, with rate window w.
	eval(ss []point, i int, w time.Duration) (vector, error)
}

type matcher struct {
	label, op, value string
	re               *regexp.Regexp
}

func (m matcher) matches(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default: // "!~"
		return !m.re.MatchString(v)
	}
}

type selector struct {
	name     string
	matchers []matcher
}

func (s *selector) eval(ss []point, i int, _ time.Duration) (vector, error) {
	var out vector
	for _, smp := range ss[i].samples {
		if s.match(smp) {
			out = append(out, series{labels: smp.labels, value: smp.value})
		}
	}
	return out, nil
}

func (s *selector) match(smp sample) bool {
	if smp.name != s.name {
		return false
	}
	for _, m := range s.matchers {
		if !m.matches(smp.labels[m.label]) {
			return false
		}
	}
	return true
}

// counterFunc is rate or increase over a range.
type counterFunc struct {
	fn  string // "rate" or "increase"
	sel *selector
}

func (f *counterFunc) eval(ss []point, i int, w time.Duration) (vector, error) {
	// The first scrape in the window (at or after ss[i].at-w).
	j := i
	for j > 0 && ss[i].at.Sub(ss[j-1].at) <= w {
		j--
	}
	if j == i {
		return nil, nil // one point: no rate yet
	}
	dt := ss[i].at.Sub(ss[j].at).Seconds()
	var out vector
	for key, cur := range ss[i].samples {
		if !f.sel.match(cur) {
			continue
		}
		prev, ok := ss[j].samples[key]
		if !ok {
			// The series appeared inside the window: it counted from 0.
			prev.value = 0
		}
		d := cur.value - prev.value
		if d < 0 {
			d = cur.value // a counter reset
		}
		if f.fn == "rate" {
			d /= dt
		}
		out = append(out, series{labels: cur.labels, value: d})
	}
	return out, nil
}

type aggregate struct {
	op string // "sum" or "max"
	by []string
	x  node
}

func (a *aggregate) eval(ss []point, i int, w time.Duration) (vector, error) {
	in, err := a.x.eval(ss, i, w)
	if err != nil {
		return nil, err
	}
	groups := map[string]*series{}
	var order []string
	for _, s := range in {
		lbl := map[string]string{}
		for _, l := range a.by {
			if v, ok := s.labels[l]; ok {
				lbl[l] = v
			}
		}
		k := seriesKey("", lbl)
		g := groups[k]
		if g == nil {
			groups[k] = &series{labels: lbl, value: s.value}
			order = append(order, k)
			continue
		}
		switch a.op {
		case "sum":
			g.value += s.value
		case "max":
			g.value = math.Max(g.value, s.value)
		}
	}
	out := make(vector, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
	}
	return out, nil
}

type quantile struct {
	q float64
	x node
}

// eval is Prometheus' histogram_quantile over classic buckets: the
// buckets of each series (its labels but le) sorted by le, the rank
// q·count found by linear interpolation inside its bucket (from 0 for the
// first), the highest finite bound when it falls in +Inf.
func (h *quantile) eval(ss []point, i int, w time.Duration) (vector, error) {
	in, err := h.x.eval(ss, i, w)
	if err != nil {
		return nil, err
	}
	type bucket struct{ le, count float64 }
	groups := map[string][]bucket{}
	labels := map[string]map[string]string{}
	for _, s := range in {
		le, ok := s.labels["le"]
		if !ok {
			return nil, fmt.Errorf("histogram_quantile: a series without le: %v", s.labels)
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			return nil, fmt.Errorf("histogram_quantile: le %q: %w", le, err)
		}
		rest := map[string]string{}
		for k, v := range s.labels {
			if k != "le" {
				rest[k] = v
			}
		}
		k := seriesKey("", rest)
		groups[k] = append(groups[k], bucket{bound, s.value})
		labels[k] = rest
	}
	var out vector
	for k, bs := range groups {
		sort.Slice(bs, func(a, b int) bool { return bs[a].le < bs[b].le })
		if len(bs) < 2 || !math.IsInf(bs[len(bs)-1].le, 1) {
			continue
		}
		total := bs[len(bs)-1].count
		if total <= 0 {
			continue // no observations in the window: no quantile
		}
		rank := h.q * total
		v := bs[len(bs)-2].le
		for j, b := range bs {
			if b.count >= rank {
				if math.IsInf(b.le, 1) {
					break
				}
				lo, below := 0.0, 0.0
				if j > 0 {
					lo, below = bs[j-1].le, bs[j-1].count
				}
				v = b.le
				if n := b.count - below; n > 0 {
					v = lo + (b.le-lo)*(rank-below)/n
				}
				break
			}
		}
		out = append(out, series{labels: labels[k], value: v})
	}
	return out, nil
}

type binary struct {
	op   string // "/" or "=="
	l, r node
}

func (b *binary) eval(ss []point, i int, w time.Duration) (vector, error) {
	l, err := b.l.eval(ss, i, w)
	if err != nil {
		return nil, err
	}
	if b.op == "==" {
		n, ok := b.r.(number)
		if !ok {
			return nil, fmt.Errorf("== is supported against a number only")
		}
		var out vector
		for _, s := range l {
			if s.value == float64(n) {
				out = append(out, s)
			}
		}
		return out, nil
	}
	r, err := b.r.eval(ss, i, w)
	if err != nil {
		return nil, err
	}
	byKey := map[string]float64{}
	for _, s := range r {
		byKey[seriesKey("", s.labels)] = s.value
	}
	var out vector
	for _, s := range l {
		d, ok := byKey[seriesKey("", s.labels)]
		if !ok || d == 0 {
			continue // no match, or no traffic: no point, as in Prometheus' NaN
		}
		out = append(out, series{labels: s.labels, value: s.value / d})
	}
	return out, nil
}

type number float64

func (n number) eval([]point, int, time.Duration) (vector, error) {
	return vector{{labels: map[string]string{}, value: float64(n)}}, nil
}

// seriesKey identifies a series: its name and sorted labels.
func seriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&b, "\x00%s=%s", k, labels[k])
	}
	return b.String()
}

// parseQuery parses a dashboard query, after substituting Grafana's
// variables.
func parseQuery(q string) (node, error) {
	q = strings.ReplaceAll(q, "$__rate_interval", "1m") // the window is the renderer's
	q = strings.ReplaceAll(q, `"$job"`, `".*"`)
	p := &parser{src: q}
	n, err := p.expr()
	if err == nil {
		p.skip()
		if p.pos < len(p.src) {
			err = p.errorf("unexpected %q", p.src[p.pos:])
		}
	}
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	return n, nil
}

type parser struct {
	src string
	pos int
}

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("at %d: %s (the renderer reads only the PromQL shapes of promql.go)", p.pos, fmt.Sprintf(format, a...))
}

func (p *parser) skip() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
}

func (p *parser) peek(s string) bool {
	p.skip()
	return strings.HasPrefix(p.src[p.pos:], s)
}

func (p *parser) eat(s string) error {
	if !p.peek(s) {
		return p.errorf("want %q", s)
	}
	p.pos += len(s)
	return nil
}

func (p *parser) ident() string {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) {
		c := rune(p.src[p.pos])
		if c == '_' || c == ':' || unicode.IsLetter(c) || (p.pos > start && unicode.IsDigit(c)) {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

// expr := term [("/" | "==") term]
func (p *parser) expr() (node, error) {
	l, err := p.term()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "/"} {
		if p.peek(op) {
			p.pos += len(op)
			r, err := p.term()
			if err != nil {
				return nil, err
			}
			return &binary{op: op, l: l, r: r}, nil
		}
	}
	return l, nil
}

func (p *parser) term() (node, error) {
	p.skip()
	if p.pos < len(p.src) && (p.src[p.pos] == '.' || unicode.IsDigit(rune(p.src[p.pos]))) {
		return p.number()
	}
	if p.peek("(") {
		p.pos++
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		return n, p.eat(")")
	}
	start := p.pos
	id := p.ident()
	if id == "" {
		return nil, p.errorf("want a metric, a function or an aggregation")
	}
	switch id {
	case "sum", "max":
		return p.aggregation(id)
	case "rate", "increase":
		if err := p.eat("("); err != nil {
			return nil, err
		}
		sel, err := p.selector()
		if err != nil {
			return nil, err
		}
		if err := p.eat("["); err != nil {
			return nil, err
		}
		end := strings.IndexByte(p.src[p.pos:], ']')
		if end < 0 {
			return nil, p.errorf("unclosed range")
		}
		p.pos += end + 1
		return &counterFunc{fn: id, sel: sel}, p.eat(")")
	case "histogram_quantile":
		if err := p.eat("("); err != nil {
			return nil, err
		}
		q, err := p.number()
		if err != nil {
			return nil, err
		}
		if err := p.eat(","); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &quantile{q: float64(q.(number)), x: x}, p.eat(")")
	}
	if p.peek("(") {
		p.pos = start
		return nil, p.errorf("function or aggregation %q is not supported", id)
	}
	p.pos = start
	return p.selector()
}

func (p *parser) number() (node, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && strings.IndexByte("0123456789.eE+-", p.src[p.pos]) >= 0 {
		p.pos++
	}
	v, err := strconv.ParseFloat(p.src[start:p.pos], 64)
	if err != nil {
		p.pos = start
		return nil, p.errorf("want a number")
	}
	return number(v), nil
}

// aggregation := op ["by" labels] "(" expr ")" ["by" labels]
func (p *parser) aggregation(op string) (node, error) {
	a := &aggregate{op: op}
	var err error
	if p.peek("by") {
		p.pos += 2
		if a.by, err = p.labelList(); err != nil {
			return nil, err
		}
	} else if p.peek("without") {
		return nil, p.errorf("%s without (...) is not supported", op)
	}
	if err := p.eat("("); err != nil {
		return nil, err
	}
	if a.x, err = p.expr(); err != nil {
		return nil, err
	}
	if err := p.eat(")"); err != nil {
		return nil, err
	}
	if a.by == nil && p.peek("by") {
		p.pos += 2
		if a.by, err = p.labelList(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (p *parser) labelList() ([]string, error) {
	if err := p.eat("("); err != nil {
		return nil, err
	}
	labels := []string{}
	for !p.peek(")") {
		l := p.ident()
		if l == "" {
			return nil, p.errorf("want a label")
		}
		labels = append(labels, l)
		if p.peek(",") {
			p.pos++
		}
	}
	p.pos++
	return labels, nil
}

// selector := name ["{" matcher {"," matcher} "}"]
func (p *parser) selector() (*selector, error) {
	s := &selector{name: p.ident()}
	if s.name == "" {
		return nil, p.errorf("want a metric name")
	}
	if !p.peek("{") {
		return s, nil
	}
	p.pos++
	for !p.peek("}") {
		m := matcher{label: p.ident()}
		if m.label == "" {
			return nil, p.errorf("want a label")
		}
		p.skip()
		for _, op := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(p.src[p.pos:], op) {
				m.op = op
				p.pos += len(op)
				break
			}
		}
		if m.op == "" {
			return nil, p.errorf("want a label matcher")
		}
		p.skip()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.errorf("want a double-quoted value")
		}
		end := strings.IndexByte(p.src[p.pos+1:], '"')
		if end < 0 {
			return nil, p.errorf("unclosed string")
		}
		m.value = p.src[p.pos+1 : p.pos+1+end]
		if strings.ContainsRune(m.value, '\\') {
			return nil, p.errorf("escapes in label values are not supported")
		}
		p.pos += end + 2
		if m.op == "=~" || m.op == "!~" {
			re, err := regexp.Compile("^(?:" + m.value + ")$")
			if err != nil {
				return nil, p.errorf("regexp %q: %v", m.value, err)
			}
			m.re = re
		}
		s.matchers = append(s.matchers, m)
		if p.peek(",") {
			p.pos++
		}
	}
	p.pos++
	return s, nil
}
