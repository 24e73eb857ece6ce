// Package static holds the CSS, JavaScript and images served under /static/.
package static

import "embed"

// FS holds the assets, vendored at pinned versions (see the Makefile's
// assets target).
//
//go:embed *.css *.js *.svg vendor
var FS embed.FS
