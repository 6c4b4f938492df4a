package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/plain"
)

// How long connect waits for zmq4's Dial, which returns only after the
// handshake: long enough that a REQ (whose Send fails at once without a
// connection, req.go) can send right after connect to a live peer, short
// enough that connecting before the peer binds does not hold up the cell.
const connectGrace = time.Second

// subscribeTimeout bounds a subscribe, which sends to the connected peers.
const subscribeTimeout = 5 * time.Second

var constructors = map[string]func(context.Context, ...zmq4.Option) zmq4.Socket{
	"REQ": zmq4.NewReq, "REP": zmq4.NewRep, "DEALER": zmq4.NewDealer, "ROUTER": zmq4.NewRouter,
	"PUB": zmq4.NewPub, "SUB": zmq4.NewSub, "XPUB": zmq4.NewXPub, "XSUB": zmq4.NewXSub,
	"PUSH": zmq4.NewPush, "PULL": zmq4.NewPull, "PAIR": zmq4.NewPair,
}

// received is one result of the socket's Recv, message or error.
type received struct {
	msg zmq4.Msg
	err error
}

type sock struct {
	kind      string
	opts      []zmq4.Option
	hwm       int // PUB only: zmq4's one high-water mark (pub.go)
	reconnect bool
	zs        zmq4.Socket // made at the first bind, connect or use (see ensure)
	inbox     chan received
	kick      chan struct{} // REQ: one Recv per request sent
	done      chan struct{}
}

type agent struct {
	socks map[string]*sock
	n     int
}

func newAgent() *agent { return &agent{socks: map[string]*sock{}} }

func (a *agent) lookup(name string) (*sock, error) {
	s, ok := a.socks[name]
	if !ok {
		return nil, invalid("no socket %q", name)
	}
	return s, nil
}

func seconds(v *float64, def float64) time.Duration {
	if v == nil {
		return time.Duration(def * float64(time.Second))
	}
	return time.Duration(*v * float64(time.Second))
}

// ensure makes the zmq4 socket. It is made this late because zmq4 takes its
// options only at construction, and one of them depends on whether the socket
// binds or connects: WithAutomaticReconnect re-dials the socket's last endpoint
// whenever a connection drops (socket.go scheduleRmConn), which for a bound
// socket is its own listening address. Connecting sockets reconnect, as
// ZeroMQ's do; bound ones do not.
func (s *sock) ensure(binding bool) {
	if s.zs != nil {
		return
	}
	opts := append([]zmq4.Option{}, s.opts...)
	if s.reconnect {
		// ZeroMQ keeps retrying until the socket is closed; zmq4 stops after 10 by default.
		opts = append(opts, zmq4.WithDialerMaxRetries(-1), zmq4.WithAutomaticReconnect(!binding))
	} else {
		opts = append(opts, zmq4.WithDialerMaxRetries(0))
	}
	s.zs = constructors[s.kind](context.Background(), opts...)
	if s.hwm != 0 {
		if err := s.zs.SetOption(zmq4.OptionHWM, s.hwm); err != nil {
			fmt.Fprintln(os.Stderr, "zmq4 agent: sndhwm:", err)
		}
	}
	if s.kind != "PUSH" && s.kind != "PUB" {
		go s.readLoop()
	}
}

// readLoop keeps taking messages off the socket so that they are queued here
// between requests, and recv can give up after its timeout without losing one.
// A REQ reads only from the peer it last sent to and only when asked (req.go
// reqReader.read fails without a request out), so it reads once per send.
func (s *sock) readLoop() {
	for {
		if s.kind == "REQ" {
			select {
			case <-s.kick:
			case <-s.done:
				return
			}
		}
		msg, err := s.zs.Recv()
		select {
		case <-s.done:
			return
		case s.inbox <- received{msg, err}:
		}
	}
}

// take waits for the next message (or Recv error) until the deadline.
func (s *sock) take(deadline time.Time) (zmq4.Msg, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case r := <-s.inbox:
		return r.msg, r.err
	case <-t.C:
		return zmq4.Msg{}, timedOut("nothing arrived in time")
	}
}

// within runs a blocking zmq4 call and waits for it at most d. A call that
// outlives d carries on in the background: zmq4 cannot take back a Send.
func within(d time.Duration, what string, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return timedOut("%s did not complete within %v", what, d)
	}
}

// noPeerRetry is how often a REQ send that found no connection tries again.
const noPeerRetry = 5 * time.Millisecond

// sendOnce is one zmq4 Send; a REQ's is retried until a connection is there.
// zmq4's REQ fails at once when it has no connection (req.go reqWriter.write:
// "no connections available"), also while Dial is still finishing a handshake in
// the background (see opConnect); the protocol's send waits for a peer until its
// timeout instead, as the other socket types' Send does (msgio.go mwriter.write).
func (s *sock) sendOnce(msg zmq4.Msg, deadline time.Time) error {
	for {
		err := s.zs.Send(msg)
		if err == nil || s.kind != "REQ" || !strings.HasPrefix(err.Error(), "zmq4: no connections available") {
			return err
		}
		if time.Now().Add(noPeerRetry).After(deadline) {
			return timedOut("no connection to send to in time (%v)", err)
		}
		time.Sleep(noPeerRetry)
	}
}

func (s *sock) send(frames [][]byte, d time.Duration) error {
	deadline := time.Now().Add(d)
	err := within(d, "send", func() error { return s.sendOnce(zmq4.NewMsgFrom(frames...), deadline) })
	if err == nil && s.kind == "REQ" {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// -- options ------------------------------------------------------------------

func decodeBool(raw json.RawMessage) (bool, error) {
	var b bool
	err := json.Unmarshal(raw, &b)
	return b, err
}

func decodeFloat(raw json.RawMessage) (float64, error) {
	var f float64
	err := json.Unmarshal(raw, &f)
	return f, err
}

func decodeText(raw json.RawMessage) (string, error) {
	var t string
	err := json.Unmarshal(raw, &t)
	return t, err
}

// Booleans zmq4 has no switch for: false is what it does anyway, true it cannot do.
var noSwitch = map[string]string{
	"router_mandatory": "its ROUTER drops a message for an unknown peer without a word (router.go routerMWriter.write)",
	"router_handover":  "its ROUTER keeps every connection under its Identity, old and new (router.go)",
	"req_relaxed":      "its REQ has no send/receive state to relax (req.go reqWriter.write)",
	"req_correlate":    "its REQ sends no request id (req.go reqWriter.write)",
	"xpub_verbose":     "its XPUB hands no subscription to the application at all (pub.go pubQReader.listen)",
	"immediate":        "it has no such option (options.go)",
}

// Options zmq4 has no counterpart for, with where its source shows it.
var noOption = map[string]string{
	"rcvhwm":            "its receive queue is a fixed channel of 10 messages (msgio.go newQReader)",
	"max_msg_size":      "Conn.read takes frames of any size (conn.go)",
	"handshake_timeout": "it reads the greeting and handshake with no deadline (conn.go Open, init)",
	"heartbeat_ivl":     "it sends no PING and answers none on a socket (conn.go: only Conn.RecvMsg, which no socket calls, answers PING)",
	"heartbeat_ttl":     "it sends no PING and answers none on a socket (conn.go: only Conn.RecvMsg, which no socket calls, answers PING)",
	"heartbeat_timeout": "it sends no PING and answers none on a socket (conn.go: only Conn.RecvMsg, which no socket calls, answers PING)",
	"zap_domain":        "it has no ZAP (RFC 27) client",
}

const noCurve = "go-zeromq/zmq4 %s implements no CURVE: security.go only names CurveSecurity, the module has " +
	"security/null and security/plain only, and there is no github.com/go-zeromq/zmq4/security/curve module " +
	"on the Go module proxy (upstream issue go-zeromq/zmq4#26 is open)"

func (a *agent) opSocket(req *request) (fields, error) {
	kind := strings.ToUpper(req.Type)
	if _, ok := constructors[kind]; !ok {
		return nil, unsupported("zmq4 has no socket type %q (socket_types.go)", req.Type)
	}
	mechanism := req.Mechanism
	if mechanism == "" {
		mechanism = "NULL"
	}
	s := &sock{kind: kind, reconnect: true, inbox: make(chan received),
		kick: make(chan struct{}, 1024), done: make(chan struct{})}
	var user, pass string
	plainWanted := mechanism == "PLAIN"

	names := make([]string, 0, len(req.Options))
	for name := range req.Options {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := req.Options[name]
		if string(raw) == "null" {
			continue
		}
		bad := func(err error) error { return invalid("option %s: %v", name, err) }
		switch name {
		case "routing_id":
			t, err := decodeText(raw)
			if err != nil {
				return nil, bad(err)
			}
			id, err := hex.DecodeString(t)
			if err != nil {
				return nil, bad(err)
			}
			s.opts = append(s.opts, zmq4.WithID(zmq4.SocketIdentity(id)))
		case "sndhwm":
			f, err := decodeFloat(raw)
			if err != nil {
				return nil, bad(err)
			}
			if kind == "XPUB" {
				return nil, unsupported("zmq4 has a send high-water mark on PUB only (pub.go pubSocket.SetOption, " +
					"OptionHWM); an XPUB queues on the same writer (xpub.go, pub.go pubMWriter) but " +
					"xpubSocket.SetOption never sets its bound, so the queue grows without limit")
			}
			if kind != "PUB" {
				return nil, unsupported("zmq4 has a send high-water mark on PUB only (pub.go pubSocket.SetOption, "+
					"OptionHWM); a %s sends straight to its connections", kind)
			}
			s.hwm = int(f)
		case "reconnect_ivl":
			f, err := decodeFloat(raw)
			if err != nil {
				return nil, bad(err)
			}
			if f < 0 {
				s.reconnect = false
			} else {
				s.opts = append(s.opts, zmq4.WithDialerRetry(seconds(&f, 0)))
			}
		case "reconnect_ivl_max":
			// zmq4 retries at the fixed reconnect_ivl (socket.go Dial), which never
			// exceeds a maximum above it; ZeroMQ ignores a maximum below it.
			if _, err := decodeFloat(raw); err != nil {
				return nil, bad(err)
			}
		case "linger":
			f, err := decodeFloat(raw)
			if err != nil {
				return nil, bad(err)
			}
			if f != 0 {
				return nil, unsupported("zmq4's Close drops whatever is queued at once (socket.go Close): linger is always 0")
			}
		case "plain_server":
			b, err := decodeBool(raw)
			if err != nil {
				return nil, bad(err)
			}
			// zmq4 picks the PLAIN role by accept or dial (conn.go Open), not by option.
			plainWanted = plainWanted || b
		case "plain_username", "plain_password":
			t, err := decodeText(raw)
			if err != nil {
				return nil, bad(err)
			}
			if name == "plain_username" {
				user = t
			} else {
				pass = t
			}
			plainWanted = true
		case "curve_server", "curve_secretkey", "curve_publickey", "curve_serverkey":
			return nil, unsupported(noCurve, moduleVersion(zmq4Module))
		default:
			if why, ok := noSwitch[name]; ok {
				b, err := decodeBool(raw)
				if err != nil {
					return nil, bad(err)
				}
				if b {
					return nil, unsupported("zmq4 cannot honour %s: %s", name, why)
				}
				continue
			}
			if why, ok := noOption[name]; ok {
				return nil, unsupported("zmq4 has no %s: %s", name, why)
			}
			return nil, unsupported("option %q has no zmq4 counterpart", name)
		}
	}
	switch mechanism {
	case "NULL", "PLAIN":
	case "CURVE":
		return nil, unsupported(noCurve, moduleVersion(zmq4Module))
	default:
		return nil, unsupported("zmq4 has no mechanism %q (security.go)", mechanism)
	}
	if plainWanted {
		s.opts = append(s.opts, zmq4.WithSecurity(plain.Security(user, pass)))
	}
	a.n++
	name := fmt.Sprintf("s%d", a.n)
	a.socks[name] = s
	return fields{"socket": name}, nil
}

// -- ops ----------------------------------------------------------------------

func (a *agent) opBind(req *request) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	s.ensure(true)
	if err := s.zs.Listen(req.Endpoint); err != nil {
		return nil, err
	}
	endpoint := req.Endpoint
	if strings.HasPrefix(endpoint, "tcp://") && s.zs.Addr() != nil {
		endpoint = "tcp://" + s.zs.Addr().String() // the port ":0" got
	}
	return fields{"endpoint": endpoint}, nil
}

func (a *agent) opConnect(req *request) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	network, addr, found := strings.Cut(req.Endpoint, "://")
	if !found {
		return nil, invalid("endpoint %q has no transport", req.Endpoint)
	}
	if network == "tcp" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, invalid("endpoint %q: %v", req.Endpoint, err)
		}
	}
	s.ensure(false)
	done := make(chan error, 1)
	go func() { done <- s.zs.Dial(req.Endpoint) }()
	select {
	case err := <-done:
		if errors.As(err, &zmq4.UnknownTransportError{}) {
			return nil, err
		}
		if err != nil {
			// A refused or failed handshake: ZeroMQ's connect does not fail for it either
			// (it would be an event, which zmq4 does not have).
			fmt.Fprintf(os.Stderr, "zmq4 agent: connect %s: %v\n", req.Endpoint, err)
		}
	case <-time.After(connectGrace):
		// Still dialling (the peer is not there yet): zmq4 keeps retrying in the background.
	}
	return fields{}, nil
}

func (a *agent) opSend(req *request) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	if len(req.Frames) == 0 {
		return nil, invalid("send needs at least one frame")
	}
	frames, err := decodeFrames(req.Frames)
	if err != nil {
		return nil, err
	}
	s.ensure(false)
	return fields{}, s.send(frames, seconds(req.Timeout, 5))
}

// opSendUntilFull sends message n (the frames with "n " before the last frame's
// octets) until a send would wait, or max went. zmq4 has no non-blocking send,
// and only its PUB and XPUB can tell that a send would not wait: their Send
// pushes onto the socket's queue and returns, dropping the message once the
// queue holds OptionHWM (pub.go pubMWriter.write), so each Send is the
// non-blocking send and none is ever refused. Every other type writes straight
// into its connections and waits for the write (msgio.go mwriter.write,
// router.go routerMWriter.write, conn.go Conn.SendMsg): nothing there tells
// that a send would wait. The socket's timeout (WithTimeout) bounds only the
// wait for a first connection (msgio.go semaphore.lock), the write has no
// deadline, and a Send given up on keeps writing in the background, delivering
// a message a non-blocking send would not have taken; so a short timeout is no
// stand-in for "would wait", and those types answer unsupported.
func (a *agent) opSendUntilFull(req *request) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	if len(req.Frames) == 0 {
		return nil, invalid("send_until_full needs at least one frame")
	}
	if req.Max < 1 {
		return nil, invalid("max must be a positive integer")
	}
	if req.Group != nil || req.RoutingID != nil {
		return nil, invalid("group and routing_id are for RADIO and SERVER sockets, not %s", s.kind)
	}
	if s.kind != "PUB" && s.kind != "XPUB" {
		return nil, unsupported("go-zeromq/zmq4 %s has no non-blocking send: a %s's Send writes straight into its "+
			"connections and waits for the write (msgio.go mwriter.write, router.go routerMWriter.write, conn.go "+
			"Conn.SendMsg, no write deadline), its timeout bounds only the wait for a first connection (msgio.go "+
			"semaphore.lock), and a Send given up on still delivers its message; only PUB and XPUB queue (pub.go "+
			"pubMWriter.write)", moduleVersion(zmq4Module), s.kind)
	}
	frames, err := decodeFrames(req.Frames)
	if err != nil {
		return nil, err
	}
	s.ensure(false)
	last := len(frames) - 1
	for n := 0; n < req.Max; n++ {
		msg := append(append([][]byte{}, frames[:last]...), append([]byte(fmt.Sprintf("%d ", n)), frames[last]...))
		if err := s.zs.Send(zmq4.NewMsgFrom(msg...)); err != nil {
			return nil, fmt.Errorf("message %d: %w", n, err)
		}
	}
	return fields{"sent": req.Max, "full": false}, nil
}

func (a *agent) opRecv(req *request) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	s.ensure(false)
	if s.kind == "PUSH" || s.kind == "PUB" {
		_, err := s.zs.Recv() // fails at once, with zmq4's own words
		return nil, err
	}
	msg, err := s.take(time.Now().Add(seconds(req.Timeout, 2)))
	if err != nil {
		return nil, err
	}
	return fields{"frames": encodeFrames(msg.Frames)}, nil
}

func (a *agent) opSubscribe(req *request, on bool) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	topic, err := hex.DecodeString(req.Topic)
	if err != nil {
		return nil, invalid("topic is not hex: %v", err)
	}
	s.ensure(false)
	switch s.kind {
	case "SUB":
		opt := zmq4.OptionUnsubscribe
		if on {
			opt = zmq4.OptionSubscribe
		}
		return fields{}, within(subscribeTimeout, "subscribe", func() error { return s.zs.SetOption(opt, string(topic)) })
	case "XSUB":
		// An XSUB application subscribes by sending 01/00 + topic (RFC 29); zmq4's XSUB has no option for it.
		flag := byte(0)
		if on {
			flag = 1
		}
		return fields{}, s.send([][]byte{append([]byte{flag}, topic...)}, subscribeTimeout)
	}
	return nil, invalid("%s sockets do not subscribe", s.kind)
}

func (s *sock) close() {
	close(s.done)
	if s.zs == nil {
		return
	}
	// zmq4's Close does not wait for anything in flight; bound it anyway so the agent never hangs.
	if err := within(time.Second, "close", s.zs.Close); err != nil {
		fmt.Fprintln(os.Stderr, "zmq4 agent: close:", err)
	}
}

func (a *agent) opClose(req *request) (fields, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	delete(a.socks, req.Socket)
	s.close()
	return fields{}, nil
}

func (a *agent) closeAll() {
	for name, s := range a.socks {
		delete(a.socks, name)
		s.close()
	}
}
