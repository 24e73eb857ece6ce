package app

import (
	"bufio"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/models/modeltest"
)

// apiDocOps maps "METHOD /path" to the response statuses the document lists.
type apiDocOps map[string][]string

// apiParsePaths reads the operations under `paths:` of the OpenAPI
// document: path keys indented two spaces, method keys four, and status
// keys under `responses:` eight. The module has no YAML parser, and the
// document keeps this layout on purpose.
func apiParsePaths(t testing.TB, doc string) apiDocOps {
	t.Helper()
	ops := apiDocOps{}
	var path, op string
	inPaths, inResponses := false, false
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(trimmed)
		if indent == 0 {
			inPaths = trimmed == "paths:"
			continue
		}
		if !inPaths {
			continue
		}
		key, _, _ := strings.Cut(trimmed, ":")
		switch {
		case indent == 2:
			if !strings.HasPrefix(key, "/") {
				t.Fatalf("openapi.yaml: unexpected key %q under paths", key)
			}
			path, op, inResponses = key, "", false
		case indent == 4:
			op, inResponses = "", false
			switch key {
			case "get", "put", "post", "delete", "patch", "head", "options":
				op = strings.ToUpper(key) + " " + path
				if _, dup := ops[op]; dup {
					t.Errorf("openapi.yaml: %s documented twice", op)
				}
				ops[op] = nil
			}
		case indent == 6 && op != "":
			inResponses = key == "responses"
		case indent == 8 && inResponses:
			ops[op] = append(ops[op], strings.Trim(key, `"'`))
		}
	}
	if len(ops) == 0 {
		t.Fatalf("openapi.yaml: no operations found under paths:\n%s", doc)
	}
	return ops
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	modeltest.Each(t, func(t *testing.T, db *modeltest.DB) {
		ts := newTestServer(t, db)
		r := apiCall(t, ts, http.MethodGet, "/api/openapi.yaml", "", nil)
		apiExpect(t, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "yaml") {
			t.Errorf("%s: Content-Type %q; want a YAML type", r.what, ct)
		}
		if !strings.HasPrefix(r.body, "openapi: 3.") {
			t.Fatalf("%s: not an OpenAPI 3 document:\n%.200s", r.what, r.body)
		}
		doc := apiParsePaths(t, r.body)

		served := map[string]bool{}
		for _, rt := range ts.srv.echo.Routes() {
			if !strings.HasPrefix(rt.Path, "/api/v1/") {
				continue
			}
			switch rt.Method {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				continue // the group's not-found routes
			}
			parts := strings.Split(rt.Path, "/")
			for i, p := range parts {
				if name, ok := strings.CutPrefix(p, ":"); ok {
					parts[i] = "{" + name + "}"
				}
			}
			served[rt.Method+" "+strings.Join(parts, "/")] = true
		}
		if len(served) == 0 {
			t.Fatal("no /api/v1 routes registered")
		}
		for op := range served {
			if _, ok := doc[op]; !ok {
				t.Errorf("route %s is not documented in openapi.yaml", op)
			}
		}
		for op := range doc {
			if !served[op] {
				t.Errorf("openapi.yaml documents %s, which no route serves", op)
			}
		}

		// The statuses of the contract each handler can answer with. Every
		// route: 401 and 429 from apiAuth; routes with {id}: 404; bodies
		// read with decodeJSON: 400, 413, 422 (the store validates).
		want := map[string][]string{
			"POST /api/v1/escalations":                 {"201", "200", "400", "401", "413", "422", "429"},
			"GET /api/v1/conversations/{id}":           {"200", "401", "404", "429"},
			"POST /api/v1/conversations/{id}/messages": {"201", "200", "400", "401", "404", "409", "413", "422", "429"},
			"POST /api/v1/conversations/{id}/cancel":   {"200", "401", "404", "409", "429"},
		}
		for op, statuses := range want {
			listed, ok := doc[op]
			if !ok {
				continue // reported above, or the route is gone
			}
			for _, s := range statuses {
				if !slices.Contains(listed, s) {
					t.Errorf("openapi.yaml: %s does not list %s (it lists %v)", op, s, listed)
				}
			}
		}
		for op := range served {
			if _, ok := want[op]; !ok {
				t.Errorf("route %s has no expected statuses in this test; add them", op)
			}
		}
	})
}
