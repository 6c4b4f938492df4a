package main

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
)

// The bench_* ops time their hot loop here, so JSON never sits in the timed path.

func (a *agent) benchSocket(req *request) (*sock, error) {
	s, err := a.lookup(req.Socket)
	if err != nil {
		return nil, err
	}
	if req.Count <= 0 {
		return nil, invalid("count must be positive")
	}
	s.ensure(false)
	return s, nil
}

// loop runs body count times in a goroutine until it fails or d passes; a loop
// cut off by the timeout stops at its next turn.
func loop(d time.Duration, what string, count int, body func(i int) error) error {
	var stop atomic.Bool
	err := within(d, what, func() error {
		for i := 0; i < count && !stop.Load(); i++ {
			if err := body(i); err != nil {
				return err
			}
		}
		return nil
	})
	stop.Store(true)
	return err
}

func (a *agent) opBenchSend(req *request) (fields, error) {
	s, err := a.benchSocket(req)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, req.Size)
	var t0 time.Time
	err = loop(seconds(req.Timeout, 60), "bench_send", req.Count, func(i int) error {
		if i == 0 {
			t0 = time.Now()
		}
		return s.zs.Send(zmq4.NewMsg(payload))
	})
	if err != nil {
		return nil, err
	}
	return fields{"elapsed": time.Since(t0).Seconds()}, nil
}

func (a *agent) opBenchRecv(req *request) (fields, error) {
	s, err := a.benchSocket(req)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(seconds(req.Timeout, 60))
	var t0 time.Time
	for i := 0; i < req.Count; i++ {
		if _, err := s.take(deadline); err != nil {
			if oe, ok := err.(*opError); ok && oe.kind == "timeout" {
				return nil, timedOut("%d of %d messages within %v", i, req.Count, seconds(req.Timeout, 60))
			}
			return nil, err
		}
		if i == 0 {
			t0 = time.Now() // timed from the first arrival
		}
	}
	return fields{"elapsed": time.Since(t0).Seconds(), "timed": req.Count - 1, "received": req.Count}, nil
}

func (a *agent) opBenchRTT(req *request) (fields, error) {
	s, err := a.benchSocket(req)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, req.Size)
	frames := [][]byte{payload}
	if s.kind == "DEALER" {
		frames = [][]byte{{}, payload} // the delimiter a REQ would add
	}
	d := seconds(req.Timeout, 10)
	deadline := time.Now().Add(d)
	samples := make([]time.Duration, 0, req.Count)
	err = loop(d, "bench_rtt", req.Count, func(int) error {
		t := time.Now()
		if err := s.zs.Send(zmq4.NewMsgFrom(frames...)); err != nil {
			return err
		}
		if s.kind == "REQ" {
			s.kick <- struct{}{}
		}
		if _, err := s.take(deadline); err != nil {
			return err
		}
		samples = append(samples, time.Since(t))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return latencySummary(samples), nil
}

func (a *agent) opBenchEcho(req *request) (fields, error) {
	s, err := a.benchSocket(req)
	if err != nil {
		return nil, err
	}
	d := seconds(req.Timeout, 10)
	deadline := time.Now().Add(d)
	err = loop(d, "bench_echo", req.Count, func(int) error {
		msg, err := s.take(deadline)
		if err != nil {
			return err
		}
		return s.zs.Send(msg) // a ROUTER's message keeps its routing frame, so it goes back where it came from
	})
	if err != nil {
		return nil, err
	}
	return fields{}, nil
}

// latencySummary reports round trips in microseconds, percentiles by rank (as agents/base.py does).
func latencySummary(samples []time.Duration) fields {
	if len(samples) == 0 {
		return fields{"count": 0}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	n := len(samples)
	pct := func(p float64) float64 {
		i := int(p * float64(n))
		if i > n-1 {
			i = n - 1
		}
		return float64(samples[i].Nanoseconds()) / 1000
	}
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return fields{"count": n, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
		"mean": float64(sum.Nanoseconds()) / float64(n) / 1000}
}
