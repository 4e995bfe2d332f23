package chain

import (
	"fmt"
	"slices"

	"github.com/sturdyai/sturdy/ratelimit"
)

// Quota keys. Several endpoints (deployments of one provider account)
// may draw on one quota: the provider counts requests and tokens per API
// key, not per deployment. Endpoints given the same quota key
// (Config.QuotaKeys, from the adapters' Endpoint.QuotaKey) are paced as
// one: one learned rate, one rate the headers told, one configured Limit
// and one cooldown, all under one key of the endpoints' limiter. An
// endpoint without a quota key is its own quota, under its name.

// quotaPrefix keeps quota keys apart from endpoint names in the
// endpoints' limiter (and in a shared Store).
const quotaPrefix = "quota/"

// quotaKeys returns the limiter key of each endpoint that has a quota
// key; nil when none has.
func quotaKeys(keys map[string]string) map[string]string {
	var m map[string]string
	for name, k := range keys {
		if k == "" {
			continue
		}
		if m == nil {
			m = make(map[string]string, len(keys))
		}
		m[name] = quotaPrefix + k
	}
	return m
}

// quotaLimits returns limits (by endpoint name) by limiter key, and the
// problems of endpoints that share a quota key but give it different
// Limits.
func quotaLimits(op string, limits map[string]ratelimit.Limit, keys map[string]string) (map[string]ratelimit.Limit, []error) {
	if len(keys) == 0 || len(limits) == 0 {
		return limits, nil
	}
	byKey := make(map[string]ratelimit.Limit, len(limits))
	from := map[string]string{} // limiter key → the endpoint whose Limit it has
	var errs []error
	names := make([]string, 0, len(limits))
	for name := range limits {
		names = append(names, name)
	}
	slices.Sort(names) // errors in a stable order
	for _, name := range names {
		lim, key := limits[name], name
		if k, ok := keys[name]; ok {
			key = k
		}
		if prev, ok := byKey[key]; ok && prev != lim {
			errs = append(errs, fmt.Errorf("%s: endpoints %q and %q share QuotaKey %q but their Limits differ (%+v, %+v); give the quota's Limit the same on each, or on one of them only",
				op, from[key], name, key[len(quotaPrefix):], prev, lim))
			continue
		}
		byKey[key], from[key] = lim, name
	}
	return byKey, errs
}

// key returns the limiter key of the endpoint named name: its quota key,
// or its name.
func (p *pacing) key(name string) string {
	if k, ok := p.keys[name]; ok {
		return k
	}
	return name
}
