package grpcmw

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sturdyai/sturdy"
)

// Group is a model group: the model callers ask for, its aliases, and the
// tiers that serve it (httpmw.Group is the same for HTTP). Each group is
// a Client of its own, so that a call fails over and falls back within
// its group only.
type Group struct {
	// Name is the model callers ask for, unique among the Router's names
	// and aliases. "*" makes the group the pass-through: it serves every
	// call whose model no other group names.
	Name string
	// Aliases are other names callers use for the group.
	Aliases []string
	// Options build the group's Client, after the Router's shared
	// options: at least its tiers (WithTier).
	Options []Option
}

// GroupKey returns the model a call names. For a unary call req is its
// request message; for a stream it is nil (the first message is not sent
// yet): read the model from ctx's metadata or from method then.
type GroupKey func(ctx context.Context, method string, req any) string

// Router is a grpc.ClientConnInterface that serves several model groups:
// each call goes to the group whose name or alias key returns. A call
// whose model no group names fails with INVALID_ARGUMENT (a StatusError
// wrapping ErrNoGroup), unless a group named "*" passes it through.
type Router struct {
	clients []*Client
	names   []string
	byModel map[string]*Client
	any     *Client
	key     GroupKey
}

// ErrNoGroup is the cause of a Router's error for a call whose model no
// group serves.
var ErrNoGroup = errors.New("no model group serves this model")

// NewRouter builds a Client per group, each with shared's options and then
// its own, and routes calls by key. It returns every configuration
// problem at once, each naming its group. Endpoint names must be unique
// across groups: they name health state and metrics series.
func NewRouter(groups []Group, key GroupKey, shared ...Option) (*Router, error) {
	r := &Router{byModel: map[string]*Client{}, key: key}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("grpcmw: "+format, args...)) }
	if key == nil {
		bad("NewRouter needs a GroupKey: gRPC messages have no common model field")
	}
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
		c, err := New(append(slices.Clone(shared), g.Options...)...)
		if err != nil {
			bad("%s: %v", at, strings.TrimPrefix(err.Error(), "grpcmw: "))
			continue
		}
		r.clients = append(r.clients, c)
		r.names = append(r.names, g.Name)
		for name := range c.tierOf {
			if other, dup := seenEP[name]; dup {
				bad("%s: endpoint name %q is used in %s too; endpoint names must be unique across groups", at, name, other)
			}
			seenEP[name] = at
		}
		if g.Name == "*" {
			if len(g.Aliases) > 0 || r.any != nil {
				bad("%s: there may be one pass-through group, without Aliases", at)
			}
			r.any = c
			continue
		}
		for _, m := range append([]string{g.Name}, g.Aliases...) {
			if _, dup := r.byModel[m]; dup || m == "" || m == "*" {
				bad("%s: model name %q is empty, \"*\" or already a group's name or alias", at, m)
				continue
			}
			r.byModel[m] = c
		}
	}
	if len(errs) > 0 {
		_ = r.Close()
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func (r *Router) route(ctx context.Context, method string, req any) (*Client, error) {
	model := r.key(ctx, method, req)
	if c, ok := r.byModel[model]; ok {
		return c, nil
	}
	if r.any != nil {
		return r.any, nil
	}
	se := &sturdy.Error{Op: "grpcmw", Class: sturdy.Fatal, Err: fmt.Errorf("%w: %q (groups: %s)", ErrNoGroup, model, strings.Join(r.names, ", "))}
	return nil, &StatusError{st: status.New(codes.InvalidArgument, se.Error()), err: se}
}

// Invoke sends a unary call to its group's Client.
func (r *Router) Invoke(ctx context.Context, method string, req, reply any, opts ...grpc.CallOption) error {
	c, err := r.route(ctx, method, req)
	if err != nil {
		return err
	}
	return c.Invoke(ctx, method, req, reply, opts...)
}

// NewStream opens a stream on its group's Client.
func (r *Router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	c, err := r.route(ctx, method, nil)
	if err != nil {
		return nil, err
	}
	return c.NewStream(ctx, desc, method, opts...)
}

// Group returns the Client of the group named name, or nil.
func (r *Router) Group(name string) *Client {
	if i := slices.Index(r.names, name); i >= 0 {
		return r.clients[i]
	}
	return nil
}

// Groups returns the group names, in configuration order.
func (r *Router) Groups() []string { return slices.Clone(r.names) }

// Close closes every group's Client.
func (r *Router) Close() error {
	var errs []error
	for _, c := range r.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
