// Agent for go-zeromq/zmq4 (a pure Go ZeroMQ), speaking the harness's control
// protocol: one JSON request per line on stdin, one answer per line on stdout,
// logs on stderr (docs/agent-protocol.md).
//
// zmq4's API blocks per call (Dial returns after the handshake, Recv waits for
// a message, Send for a peer), so every library call that can wait runs in a
// goroutine of its own and the request loop only waits for it as long as the
// request's timeout says.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// request holds the fields of every op; each op reads the ones it needs.
type request struct {
	ID        json.RawMessage            `json:"id"`
	Op        string                     `json:"op"`
	Type      string                     `json:"type"`
	Options   map[string]json.RawMessage `json:"options"`
	Mechanism string                     `json:"mechanism"`
	Socket    string                     `json:"socket"`
	Endpoint  string                     `json:"endpoint"`
	Frames    []string                   `json:"frames"`
	Topic     string                     `json:"topic"`
	Timeout   *float64                   `json:"timeout"`
	Size      int                        `json:"size"`
	Count     int                        `json:"count"`
	Max       int                        `json:"max"`
	Group     *string                    `json:"group"`
	RoutingID *string                    `json:"routing_id"`
}

// opError is an answer with ok=false; kind is one of the protocol's error kinds.
type opError struct {
	kind, message string
}

func (e *opError) Error() string { return e.kind + ": " + e.message }

func unsupported(format string, args ...any) error {
	return &opError{"unsupported", fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &opError{"invalid", fmt.Sprintf(format, args...)}
}

func timedOut(format string, args ...any) error {
	return &opError{"timeout", fmt.Sprintf(format, args...)}
}

type fields = map[string]any

const zmq4Module = "github.com/go-zeromq/zmq4"

// moduleVersion is the version of a module linked into this binary, as the
// Go toolchain recorded it from go.sum, so hello never drifts from the lock file.
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == path {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}

func hello() fields {
	return fields{
		"peer":     "zmq4",
		"protocol": 1,
		"versions": fields{
			"zmq4": moduleVersion(zmq4Module),
			"go":   runtime.Version(),
		},
		// protocol.go greets with version 3.0 and has no PING/PONG or
		// SUBSCRIBE/CANCEL commands: scenarios needing 3.1 do not apply.
		"zmtp": []string{"3.0"},
		// protocol.go greeting.read refuses any version but 3.0 ("invalid ZMTP version",
		// "FIXME(sbinet): handle version negotiations"): it never downgrades.
		"downgrades": []string{},
	}
}

func (a *agent) dispatch(req *request) (fields, error) {
	switch req.Op {
	case "hello":
		return hello(), nil
	case "socket":
		return a.opSocket(req)
	case "bind":
		return a.opBind(req)
	case "connect":
		return a.opConnect(req)
	case "send":
		return a.opSend(req)
	case "send_until_full":
		return a.opSendUntilFull(req)
	case "send_more":
		return nil, unsupported("go-zeromq/zmq4 %s sends whole messages only: Socket.Send and SendMulti (socket.go) "+
			"take a Msg of all its frames, and there is no send of one frame with more to come", moduleVersion(zmq4Module))
	case "recv":
		return a.opRecv(req)
	case "subscribe":
		return a.opSubscribe(req, true)
	case "unsubscribe":
		return a.opSubscribe(req, false)
	case "close":
		return a.opClose(req)
	case "quit":
		a.closeAll()
		return nil, nil
	case "zap":
		return nil, unsupported("go-zeromq/zmq4 %s has no ZAP (RFC 27) handler and no authentication hook: its PLAIN "+
			"server accepts any HELLO (security/plain/plain.go, validateHello returns nil: \"FIXME(sbinet): perform "+
			"a real authentication\"), so it cannot refuse a peer", moduleVersion(zmq4Module))
	case "events":
		return nil, unsupported("go-zeromq/zmq4 %s has no socket monitor: connection events never reach the "+
			"application (socket.go: accept() only logs a failed handshake, Dial returns it)", moduleVersion(zmq4Module))
	case "bench_send":
		return a.opBenchSend(req)
	case "bench_recv":
		return a.opBenchRecv(req)
	case "bench_rtt":
		return a.opBenchRTT(req)
	case "bench_echo":
		return a.opBenchEcho(req)
	}
	return nil, unsupported("op %q is not supported by the zmq4 agent", req.Op)
}

func answer(out *bufio.Writer, id json.RawMessage, result fields, err error) {
	resp := fields{}
	for k, v := range result {
		resp[k] = v
	}
	if id == nil {
		id = json.RawMessage("null")
	}
	resp["id"] = id
	if err != nil {
		kind, msg := "failed", err.Error()
		if oe, ok := err.(*opError); ok {
			kind, msg = oe.kind, oe.message
		}
		resp = fields{"id": id, "ok": false, "error": fields{"kind": kind, "message": msg}}
	} else {
		resp["ok"] = true
	}
	line, merr := json.Marshal(resp)
	if merr != nil {
		line, _ = json.Marshal(fields{"id": id, "ok": false,
			"error": fields{"kind": "failed", "message": "cannot encode the answer: " + merr.Error()}})
	}
	out.Write(line)
	out.WriteByte('\n')
	out.Flush()
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	a := newAgent()
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			if jerr := json.Unmarshal(line, &req); jerr != nil || req.Op == "" {
				if jerr == nil {
					jerr = fmt.Errorf("no op")
				}
				answer(out, nil, nil, invalid("bad request line: %v", jerr))
			} else {
				result, oerr := a.dispatch(&req)
				answer(out, req.ID, result, oerr)
				if req.Op == "quit" {
					return
				}
			}
		}
		if err == io.EOF {
			a.closeAll()
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "zmq4 agent: reading stdin:", err)
			return
		}
	}
}

func decodeFrames(frames []string) ([][]byte, error) {
	out := make([][]byte, len(frames))
	for i, f := range frames {
		b, err := hex.DecodeString(f)
		if err != nil {
			return nil, invalid("frame %d is not hex: %v", i, err)
		}
		out[i] = b
	}
	return out, nil
}

func encodeFrames(frames [][]byte) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = hex.EncodeToString(f)
	}
	return out
}
