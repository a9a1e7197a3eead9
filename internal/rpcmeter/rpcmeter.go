package rpcmeter

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"
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
	stats  map[string]*Stat
	since  time.Time
	conns  map[net.Conn]bool
	closed bool
}

// Stat is what the requests of one method cost since the last Reset.
type Stat struct {
	Count int
	// Total and Max are the time from forwarding a request to its answer.
	Total, Max time.Duration
	// First and Last are when the first request was forwarded and the
	// last answer came back, from the last Reset.
	First, Last time.Duration
}

// Start serves a proxy on unix socket sock that forwards to the SPDK
// unix socket target. With serial, requests (from all connections) reach
// the target one at a time: each waits for the answer to the one before.
func Start(sock, target string, serial bool) (*Proxy, error) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("rpcmeter: %w", err)
	}
	p := &Proxy{target: target, serial: serial, ln: ln, counts: map[string]int{}, stats: map[string]*Stat{},
		since: time.Now(), conns: map[net.Conn]bool{}}
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

// Stats returns, by method, what its requests cost since the last Reset
// (requests still unanswered are not in it).
func (p *Proxy) Stats() map[string]Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Stat, len(p.stats))
	for m, st := range p.stats {
		out[m] = *st
	}
	return out
}

// Reset zeroes the counts and stats.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
	p.stats = map[string]*Stat{}
	p.since = time.Now()
}

// answered records the answer to a request for method sent at start.
func (p *Proxy) answered(method string, start time.Time) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if start.Before(p.since) {
		return
	}
	st := p.stats[method]
	if st == nil {
		st = &Stat{First: start.Sub(p.since)}
		p.stats[method] = st
	}
	d := now.Sub(start)
	st.Count++
	st.Total += d
	st.Max = max(st.Max, d)
	st.First = min(st.First, start.Sub(p.since))
	st.Last = max(st.Last, now.Sub(p.since))
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
			var pending sync.Map // request id -> sent
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.answers(down, up, &pending)
				_ = down.Close()
			}()
			p.forward(down, up, &pending)
		}()
	}
}

// message is the part of a JSON-RPC request or answer the proxy reads.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// sent is a request forwarded and not answered yet.
type sent struct {
	method string
	start  time.Time
}

func (p *Proxy) count(raw json.RawMessage) message {
	var r message
	_ = json.Unmarshal(raw, &r)
	p.mu.Lock()
	p.counts[r.Method]++
	p.mu.Unlock()
	return r
}

// forward passes each request from down to up as it comes (answers flows
// back through answers).
func (p *Proxy) forward(down, up net.Conn, pending *sync.Map) {
	dec := json.NewDecoder(down)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return
		}
		r := p.count(raw)
		pending.Store(string(r.ID), sent{r.Method, time.Now()})
		if _, err := up.Write(raw); err != nil {
			return
		}
	}
}

// answers passes every answer from up to down and times its request.
func (p *Proxy) answers(down, up net.Conn, pending *sync.Map) {
	dec := json.NewDecoder(up)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return
		}
		var a message
		_ = json.Unmarshal(raw, &a)
		if v, ok := pending.LoadAndDelete(string(a.ID)); ok {
			s := v.(sent)
			p.answered(s.method, s.start)
		}
		if _, err := down.Write(raw); err != nil {
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
		r := p.count(raw)
		if err := p.roundTrip(r.Method, raw, down, up, answers); err != nil {
			return
		}
	}
}

func (p *Proxy) roundTrip(method string, raw json.RawMessage, down, up net.Conn, answers *json.Decoder) error {
	p.one.Lock()
	defer p.one.Unlock()
	start := time.Now()
	if _, err := up.Write(raw); err != nil {
		return err
	}
	var ans json.RawMessage
	if err := answers.Decode(&ans); err != nil {
		return errors.Join(err, down.Close())
	}
	p.answered(method, start)
	_, err := down.Write(ans)
	return err
}
