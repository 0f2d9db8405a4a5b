// Package webui serves stwbridge's live web view: a page at /ui/ that reads GET
// /v1/live (server-sent events) and draws the spans in flight as they open, rename
// and end. The page is plain HTML, CSS and JavaScript embedded in the binary: no
// build step, no external resources.
//
// The page itself holds no data and is served without authentication. The event
// stream is what carries data: when the listener requires a bearer token, the page
// asks for it once, keeps it in the tab's sessionStorage and sends it as an
// "Authorization: Bearer" header with fetch() (EventSource cannot set headers), so
// the token never appears in a URL or a log.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where the view is served.
const Path = "/ui/"

//go:embed static
var static embed.FS

// Handler serves the view's files under Path, with headers that keep the page to its
// own origin (no inline script, no framing, no outside resources).
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	files := http.StripPrefix(Path, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the live view is read with GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "+
			"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// Mount serves the view on mux at Path, and redirects / and /ui there.
func Mount(mux *http.ServeMux) {
	mux.Handle(Path, Handler())
	redirect := http.RedirectHandler(Path, http.StatusFound)
	mux.Handle("GET /{$}", redirect)
	mux.Handle("GET /ui", redirect)
}
