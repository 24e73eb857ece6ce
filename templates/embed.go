// Package templates holds the html/template pages, embedded into the binary.
package templates

import "embed"

// FS holds layout.html, the partials and pages/*.html.
//
//go:embed *.html pages/*.html
var FS embed.FS
