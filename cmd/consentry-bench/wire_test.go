package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWireRoundTrips checks the load generator's HTTP client against
// net/http's server: the request arrives as sent, bodies of either framing
// come back whole, and a connection is reused unless the server closes it.
func TestWireRoundTrips(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, r.Method+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type")+" "+r.PostForm.Get("a"))
		case "/chunked":
			// Flushing before the end makes the server send chunks.
			_, _ = io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, strings.Repeat("x", 5000))
		case "/drop":
			// The server goes away mid-answer.
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			_ = buf.Flush()
			_ = conn.Close()
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		default:
			http.Error(w, "nothing here", http.StatusNotFound)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	w, err := newWire(srv.URL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	ctx := context.Background()
	check := func(method, path, auth, form string, wantStatus int, wantBody string) {
		t.Helper()
		status, body, err := w.do(ctx, method, path, auth, form)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if status != wantStatus || string(body) != wantBody {
			t.Fatalf("%s %s = %d %.60q, want %d %.60q", method, path, status, body, wantStatus, wantBody)
		}
	}

	check(http.MethodPost, "/echo", "Basic YTpi", "a=1%262", http.StatusOK, "POST Basic YTpi application/x-www-form-urlencoded 1&2")
	check(http.MethodGet, "/echo", "", "", http.StatusOK, "GET   ")
	check(http.MethodGet, "/chunked", "", "", http.StatusOK, "first "+strings.Repeat("x", 5000))
	check(http.MethodGet, "/missing", "", "", http.StatusNotFound, "nothing here\n")
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections for four sequential requests, want 1 reused", n)
	}
	check(http.MethodGet, "/close", "", "", http.StatusOK, "bye")
	check(http.MethodGet, "/echo", "", "", http.StatusOK, "GET   ")
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d connections after the server closed one, want 2", n)
	}
	if _, _, err := w.do(ctx, http.MethodGet, "/drop", "", ""); err == nil {
		t.Fatal("an answer cut short reported no error")
	}
	check(http.MethodGet, "/echo", "", "", http.StatusOK, "GET   ")
	if n := dials.Load(); n != 3 {
		t.Fatalf("%d connections after one broke mid-answer, want 3 (a new one for the next request)", n)
	}
}

// TestWireReportsACancelledContext: a request of a cancelled run is not sent.
func TestWireReportsACancelledContext(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	w, err := newWire(srv.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := w.do(ctx, http.MethodGet, "/", "", ""); err == nil {
		t.Fatal("request with a cancelled context succeeded")
	}
	if requests.Load() != 0 {
		t.Fatal("request with a cancelled context reached the server")
	}
}

func TestNewWireRejectsOtherSchemes(t *testing.T) {
	for _, base := range []string{"https://127.0.0.1:1", "127.0.0.1:1", "http://"} {
		if _, err := newWire(base, 1); err == nil {
			t.Errorf("newWire(%q) accepted", base)
		}
	}
}
