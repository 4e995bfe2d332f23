package httpmw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/body"
)

// Group is a model group: the model name callers ask for, its aliases,
// and the tiers that serve it. It is LiteLLM's model_list entries sharing
// a model_name, with their fallbacks: each group is a chain of tiers of
// its own, and a call fails over and falls back only within its group.
type Group struct {
	// Name is the model callers ask for, e.g. "gpt-4o" (LiteLLM's
	// model_name), unique among the Router's names and aliases. "*" makes
	// the group the pass-through: it serves every request whose model no
	// other group names, and requests that name none (GET /v1/models).
	Name string
	// Aliases are other names callers use for the group ("smart"). A
	// request that names an alias, or the Name when tier 0's Model is
	// another, goes to tier 0 with its model rewritten to tier 0's Model.
	Aliases []string
	// Options build the group's Transport, after the Router's shared
	// options: at least its tiers (WithTier), and any option that differs
	// from the shared ones.
	Options []Option
}

// Router is an http.RoundTripper that serves several model groups: each
// request goes to the group that its JSON body's top-level "model" names
// (or an alias of it; WithGroupKey among the shared options reads the
// model elsewhere), whose Transport fails over and falls back within
// the group only. A request whose model no group names fails with a
// *sturdy.Error of class Fatal, unless a group named "*" passes it
// through. Build it with NewRouter.
type Router struct {
	groups  []*Transport
	names   []string // group names, in configuration order
	byModel map[string]route
	any     *Transport // the "*" group; nil: none
	maxBody int64
	key     GroupKey // nil: the body's "model"
}

type route struct {
	tr     *Transport
	quoted []byte // the model to rewrite to (tier 0's), nil: as written
}

// ErrNoGroup is the cause of a Router's error for a request whose model no
// group serves.
var ErrNoGroup = errors.New("no model group serves this model")

// NewRouter builds a Transport per group over base (nil means
// http.DefaultTransport), each with shared's options and then its own. It
// returns every configuration problem at once, each naming its group.
// Endpoint names must be unique across groups: they name health state and
// metrics series.
func NewRouter(base http.RoundTripper, groups []Group, shared ...Option) (*Router, error) {
	r := &Router{byModel: map[string]route{}, maxBody: DefaultMaxBodyBuffer}
	var sc config
	for _, o := range shared {
		o.apply(&sc)
	}
	r.key = sc.groupKey
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("httpmw: "+format, args...)) }
	if len(groups) == 0 {
		bad("NewRouter has no groups; give at least one")
	}
	seenEP := map[string]string{}
	for i, g := range groups {
		at := fmt.Sprintf("group %q (#%d)", g.Name, i+1)
		if g.Name == "" {
			bad("group #%d has no Name; name it after the model callers ask for", i+1)
			continue
		}
		tr, err := NewTransport(base, append(slices.Clone(shared), g.Options...)...)
		if err != nil {
			bad("%s: %v", at, strings.TrimPrefix(err.Error(), "httpmw: "))
			continue
		}
		r.groups = append(r.groups, tr)
		r.names = append(r.names, g.Name)
		r.maxBody = max(r.maxBody, tr.maxBody)
		for _, ep := range tr.names {
			if other, dup := seenEP[ep]; dup {
				bad("%s: endpoint name %q is used in %s too; endpoint names must be unique across groups", at, ep, other)
			}
			seenEP[ep] = at
		}
		if g.Name == "*" {
			if len(g.Aliases) > 0 {
				bad("%s: the pass-through group takes no Aliases", at)
			}
			if r.any != nil {
				bad("%s: there is another pass-through group", at)
			}
			r.any = tr
			continue
		}
		served := tr.tiers[0].model
		for j, m := range append([]string{g.Name}, g.Aliases...) {
			if m == "" || m == "*" {
				bad("%s: alias #%d is %q; give a model name", at, j, m)
				continue
			}
			if _, dup := r.byModel[m]; dup {
				bad("%s: model name %q is already a group's name or alias", at, m)
				continue
			}
			rt := route{tr: tr}
			if served != "" && m != served {
				rt.quoted = body.QuoteModel(served)
			}
			r.byModel[m] = rt
		}
	}
	if len(errs) > 0 {
		for _, tr := range r.groups {
			_ = tr.Close()
		}
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// RoundTrip implements http.RoundTripper. It reads the request body once
// (the whole of it: the "model" key may come last), into a buffer of its
// size, and hands the group's Transport a request that replays it. A body
// longer than the largest WithMaxBodyBuffer among the groups is refused
// (Fatal): its model cannot be read.
func (r *Router) RoundTrip(req *http.Request) (*http.Response, error) {
	raw, err := r.readBody(req)
	if err != nil {
		return nil, &sturdy.Error{Op: "httpmw", Class: sturdy.Fatal, Err: err}
	}
	model, named := body.Model(raw)
	if r.key != nil {
		model = r.key(req, raw)
		named = model != ""
	}
	rt, ok := r.byModel[model]
	switch {
	case ok:
	case r.any != nil:
		rt = route{tr: r.any}
	case !named:
		return nil, &sturdy.Error{Op: "httpmw", Class: sturdy.Fatal, Err: fmt.Errorf("%w: the request names no model (a JSON body with a top-level \"model\"), and no group is the pass-through (\"*\")", ErrNoGroup)}
	default:
		return nil, &sturdy.Error{Op: "httpmw", Class: sturdy.Fatal, Err: fmt.Errorf("%w: %q (groups: %s)", ErrNoGroup, model, strings.Join(r.names, ", "))}
	}
	if rt.quoted != nil {
		out, _, err := body.RewriteModel(raw, rt.quoted)
		if err != nil {
			return nil, &sturdy.Error{Op: "httpmw", Class: sturdy.Fatal, Err: fmt.Errorf("httpmw: cannot rewrite the alias %q to its group's model (%w); not sending the request with the wrong model", model, err)}
		}
		raw = out
	}
	out := req.Clone(req.Context())
	if raw != nil {
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	}
	resp, err := rt.tr.RoundTrip(out)
	if resp != nil {
		if se := CallError(resp); se != nil {
			resp.Request = withCallError(req, se) // CallError works through a Router too
		} else {
			resp.Request = req
		}
	}
	return resp, err
}

// readBody reads req's body whole, in one buffer of its size when the
// length is known, and closes it. A nil body gives nil.
func (r *Router) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	if req.ContentLength > r.maxBody {
		return nil, fmt.Errorf("httpmw: the request body (%d bytes) is longer than WithMaxBodyBuffer (%d): a Router must read the model", req.ContentLength, r.maxBody)
	}
	raw, err := readSized(req.Body, r.maxBody+1, req.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("httpmw: reading the request body: %w", err)
	}
	if int64(len(raw)) > r.maxBody {
		return nil, fmt.Errorf("httpmw: the request body is longer than WithMaxBodyBuffer (%d): a Router must read the model", r.maxBody)
	}
	return raw, nil
}

// Group returns the Transport of the group named name (its Stats, State,
// Availability), or nil.
func (r *Router) Group(name string) *Transport {
	if i := slices.Index(r.names, name); i >= 0 {
		return r.groups[i]
	}
	return nil
}

// Groups returns the group names, in configuration order.
func (r *Router) Groups() []string { return slices.Clone(r.names) }

// Close closes every group's Transport.
func (r *Router) Close() error {
	var errs []error
	for _, tr := range r.groups {
		errs = append(errs, tr.Close())
	}
	return errors.Join(errs...)
}
