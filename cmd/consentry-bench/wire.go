package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// wire sends the timed requests over plain keep-alive connections: it writes
// each request in one system call and parses the answer with
// http.ReadResponse. net/http's Transport hands every request to two
// goroutines per connection and costs the load generator about 100 µs of CPU
// per request, CPU the server on the same cores then lacks; a deployment's
// clients run on other machines.
type wire struct {
	addr string // host:port
	idle chan *wireConn
}

// wireConn is one connection with its reusable buffers.
type wireConn struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body bytes.Buffer
}

func newWire(base string, concurrency int) (*wire, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse server address %q: %w", base, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("server address %q: want http://host:port", base)
	}
	return &wire{addr: u.Host, idle: make(chan *wireConn, 2*concurrency)}, nil
}

func (w *wire) get() (*wireConn, error) {
	select {
	case c := <-w.idle:
		return c, nil
	default:
	}
	c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &wireConn{c: c, r: bufio.NewReaderSize(c, 8<<10)}, nil
}

func (w *wire) put(c *wireConn) {
	select {
	case w.idle <- c:
	default:
		_ = c.c.Close()
	}
}

// Close closes the idle connections.
func (w *wire) Close() {
	for {
		select {
		case c := <-w.idle:
			_ = c.c.Close()
		default:
			return
		}
	}
}

// do sends one request and returns the status and a copy of the body. auth,
// when set, is the Authorization header's value; body, when set, is sent as
// a form.
func (w *wire) do(ctx context.Context, method, path, auth, body string) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	c, err := w.get()
	if err != nil {
		return 0, nil, err
	}
	status, keep, err := c.roundTrip(ctx, w.addr, method, path, auth, body)
	if err != nil {
		// The answer may be half read: the connection cannot carry another.
		_ = c.c.Close()
		return 0, nil, err
	}
	out := bytes.Clone(c.body.Bytes())
	if keep {
		w.put(c)
	} else {
		_ = c.c.Close()
	}
	return status, out, nil
}

// roundTrip reports whether the connection can carry the next request.
func (c *wireConn) roundTrip(ctx context.Context, host, method, path, auth, body string) (int, bool, error) {
	deadline := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.c.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	b := append(c.req[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	if auth != "" {
		b = append(b, "\r\nAuthorization: "...)
		b = append(b, auth...)
	}
	if body != "" || method == http.MethodPost {
		b = append(b, "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.req = b
	if _, err := c.c.Write(b); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, false, err
	}
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, !resp.Close, nil
}
