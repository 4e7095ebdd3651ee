package storagetest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy between a store and its database server, for outage
// tests. Cut acts as a network partition: it drops every open connection,
// and connections opened while cut are accepted but never answered, so a
// client waits until its own deadline. Restore lets new connections through
// again. It is safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	cut    bool
	closed bool
	open   map[net.Conn]struct{} // both ends of every forwarded connection
	held   map[net.Conn]struct{} // accepted while cut
	wg     sync.WaitGroup
}

// StartProxy listens on a loopback port and forwards to targetAddr
// (host:port) until the test ends.
func StartProxy(t testing.TB, targetAddr string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{target: targetAddr, ln: ln, open: map[net.Conn]struct{}{}, held: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr is the host:port clients connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and leaves new ones unanswered.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	closeAll(p.open)
}

// Restore forwards new connections again; those accepted while cut are
// closed, as a client's timed-out attempts would be.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	closeAll(p.held)
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	_ = p.ln.Close()
	closeAll(p.open)
	closeAll(p.held)
	p.mu.Unlock()
	p.wg.Wait()
}

func closeAll(conns map[net.Conn]struct{}) {
	for c := range conns {
		_ = c.Close()
		delete(conns, c)
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		switch {
		case p.closed:
			_ = client.Close()
		case p.cut:
			p.held[client] = struct{}{}
		default:
			p.wg.Go(func() { p.forward(client) })
		}
		p.mu.Unlock()
	}
}

func (p *Proxy) forward(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		// Cut while dialling.
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.open[client], p.open[server] = struct{}{}, struct{}{}
	p.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		// Ends at EOF or when either side is closed; both end the direction.
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	// One direction ended: end the other too.
	_ = client.Close()
	_ = server.Close()
	<-done
	p.mu.Lock()
	delete(p.open, client)
	delete(p.open, server)
	p.mu.Unlock()
}
