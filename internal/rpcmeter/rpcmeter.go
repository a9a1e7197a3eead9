package rpcmeter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
)

// Proxy forwards every connection made to its socket to its own
// connection to the target's socket.
type Proxy struct {
	target string
	serial bool
	ln     net.Listener
	wg     sync.WaitGroup

	// one is held while a Serial proxy has a request outstanding, across
	// all its connections.
	one sync.Mutex

	mu     sync.Mutex
	counts map[string]int
	conns  map[net.Conn]bool
	closed bool
}

// Start serves a proxy on unix socket sock that forwards to the SPDK
// unix socket target. With serial, requests (from all connections) reach
// the target one at a time: each waits for the answer to the one before.
func Start(sock, target string, serial bool) (*Proxy, error) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("rpcmeter: %w", err)
	}
	p := &Proxy{target: target, serial: serial, ln: ln, counts: map[string]int{}, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's socket path.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Counts returns the requests forwarded since the last Reset, by method.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Total returns the number of requests forwarded since the last Reset.
func (p *Proxy) Total() int {
	n := 0
	for _, c := range p.Counts() {
		n += c
	}
	return n
}

// Reset zeroes the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers c to be closed by Close; false if the proxy is closed.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("unix", p.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		if !p.track(down, up) {
			_ = down.Close()
			_ = up.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(down, up)
			if p.serial {
				p.forwardSerial(down, up)
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(down, up)
				_ = down.Close()
			}()
			p.forward(down, up)
		}()
	}
}

// request is the part of a JSON-RPC request the proxy reads.
type request struct {
	Method string `json:"method"`
}

func (p *Proxy) count(raw json.RawMessage) {
	var r request
	_ = json.Unmarshal(raw, &r)
	p.mu.Lock()
	p.counts[r.Method]++
	p.mu.Unlock()
}

// forward passes each request from down to up as it comes (the answers
// flow back on their own).
func (p *Proxy) forward(down, up net.Conn) {
	dec := json.NewDecoder(down)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return
		}
		p.count(raw)
		if _, err := up.Write(raw); err != nil {
			return
		}
	}
}

// forwardSerial passes one request at a time and its answer back before
// the next (SPDK answers every request that has an id, and VDA's client
// always sends one).
func (p *Proxy) forwardSerial(down, up net.Conn) {
	dec := json.NewDecoder(down)
	answers := json.NewDecoder(up)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return
		}
		p.count(raw)
		if err := p.roundTrip(raw, down, up, answers); err != nil {
			return
		}
	}
}

func (p *Proxy) roundTrip(raw json.RawMessage, down, up net.Conn, answers *json.Decoder) error {
	p.one.Lock()
	defer p.one.Unlock()
	if _, err := up.Write(raw); err != nil {
		return err
	}
	var ans json.RawMessage
	if err := answers.Decode(&ans); err != nil {
		return errors.Join(err, down.Close())
	}
	_, err := down.Write(ans)
	return err
}
