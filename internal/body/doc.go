// Package body holds the request- and response-body mechanics the adapters
// share: rewriting the top-level "model" of a JSON body without
// re-encoding it, and draining a discarded body so that its connection can
// be reused.
package body
