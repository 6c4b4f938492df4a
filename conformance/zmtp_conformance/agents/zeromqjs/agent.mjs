// The harness's agent for zeromq.js (npm zeromq): JSON lines on stdin and
// stdout, as docs/agent-protocol.md describes. zeromq.js wraps the libzmq it
// bundles (built with the draft API), so option names map onto libzmq's.
//
//   node agent.mjs

import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import * as zmq from "zeromq";

const require = createRequire(import.meta.url);
const PACKAGE_VERSION = require("zeromq/package.json").version;
// The draft socket types live in a module of their own, which refuses to load
// from a build without the draft API.
const draft = zmq.capability.draft ? require("zeromq/draft") : null;

const PROTOCOL_VERSION = 1;

class AgentError extends Error {
    constructor(kind, message) {
        super(message);
        this.kind = kind;
    }
}
const invalid = (message) => new AgentError("invalid", message);
const unsupported = (message) => new AgentError("unsupported", message);
const timedOut = (message) => new AgentError("timeout", message);

// -- values ---------------------------------------------------------------------------------------

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function fromHex(text, what) {
    if (typeof text !== "string" || !HEX.test(text)) throw invalid(`${what} must be a hex string`);
    return Buffer.from(text, "hex");
}

function decodeFrames(frames) {
    if (!Array.isArray(frames) || frames.length === 0) throw invalid("frames must be a non-empty list of hex strings");
    return frames.map((f) => fromHex(f, "each frame"));
}

function seconds(value, what) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw invalid(`${what} must be seconds`);
    return value;
}

// libzmq takes durations in milliseconds, -1 meaning "forever" / "the default".
const millis = (v) => (v === null || v === undefined ? -1 : Math.round(v * 1000));
const int = (v) => {
    if (!Number.isInteger(v)) throw invalid(`expected an integer, got ${JSON.stringify(v)}`);
    return v;
};
const bool = (v) => Boolean(v);
const text = (v) => {
    if (typeof v !== "string") throw invalid(`expected text, got ${JSON.stringify(v)}`);
    return v;
};

// Z85 (RFC 32), only to compare the binary CURVE keys of ZAP requests with
// the harness's text keys: zeromq.js exposes no Z85 codec of its own.
const Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

function z85Encode(data) {
    let out = "";
    for (let i = 0; i + 4 <= data.length; i += 4) {
        let value = data.readUInt32BE(i);
        const block = [];
        for (let j = 0; j < 5; j++) {
            block.unshift(Z85[value % 85]);
            value = Math.floor(value / 85);
        }
        out += block.join("");
    }
    return out;
}

// -- options --------------------------------------------------------------------------------------

// Protocol option -> [libzmq option number, zeromq.js setter type, conversion].
// The typed setters (setInt32Option, ...) are what zeromq.js's own option
// properties call (lib/index.js defineOpt); they are used directly because
// zeromq.js defines each property only on the classes it expects it on
// (sendHighWaterMark on writable sockets, routingId on REQ/REP/DEALER/ROUTER
// and as text), while libzmq accepts these options on every socket type.
const OPTIONS = {
    routing_id: [5, "String", (v) => fromHex(v, "routing_id")], // ZMQ_ROUTING_ID
    max_msg_size: [22, "Int64", (v) => (v === null ? -1 : int(v))], // ZMQ_MAXMSGSIZE
    sndhwm: [23, "Int32", int], // ZMQ_SNDHWM
    rcvhwm: [24, "Int32", int], // ZMQ_RCVHWM
    linger: [17, "Int32", millis], // ZMQ_LINGER
    reconnect_ivl: [18, "Int32", millis], // ZMQ_RECONNECT_IVL
    reconnect_ivl_max: [21, "Int32", millis], // ZMQ_RECONNECT_IVL_MAX
    handshake_timeout: [66, "Int32", millis], // ZMQ_HANDSHAKE_IVL
    heartbeat_ivl: [75, "Int32", millis], // ZMQ_HEARTBEAT_IVL
    heartbeat_ttl: [76, "Int32", millis], // ZMQ_HEARTBEAT_TTL
    heartbeat_timeout: [77, "Int32", millis], // ZMQ_HEARTBEAT_TIMEOUT
    connect_timeout: [79, "Int32", millis], // ZMQ_CONNECT_TIMEOUT
    router_mandatory: [33, "Bool", bool], // ZMQ_ROUTER_MANDATORY
    router_handover: [56, "Bool", bool], // ZMQ_ROUTER_HANDOVER
    req_correlate: [52, "Bool", bool], // ZMQ_REQ_CORRELATE
    req_relaxed: [53, "Bool", bool], // ZMQ_REQ_RELAXED
    xpub_verbose: [40, "Bool", bool], // ZMQ_XPUB_VERBOSE
    immediate: [39, "Bool", bool], // ZMQ_IMMEDIATE
    tcp_keepalive: [34, "Int32", (v) => (v ? 1 : 0)], // ZMQ_TCP_KEEPALIVE
    // libzmq takes these two in whole seconds
    tcp_keepalive_idle: [36, "Int32", (v) => (v === null ? -1 : Math.round(v))], // ZMQ_TCP_KEEPALIVE_IDLE
    tcp_keepalive_interval: [37, "Int32", (v) => (v === null ? -1 : Math.round(v))], // ZMQ_TCP_KEEPALIVE_INTVL
    plain_server: [44, "Bool", bool], // ZMQ_PLAIN_SERVER
    plain_username: [45, "String", text], // ZMQ_PLAIN_USERNAME
    plain_password: [46, "String", text], // ZMQ_PLAIN_PASSWORD
    curve_server: [47, "Bool", bool], // ZMQ_CURVE_SERVER
    curve_publickey: [48, "String", text], // ZMQ_CURVE_PUBLICKEY
    curve_secretkey: [49, "String", text], // ZMQ_CURVE_SECRETKEY
    curve_serverkey: [50, "String", text], // ZMQ_CURVE_SERVERKEY
    zap_domain: [55, "String", text], // ZMQ_ZAP_DOMAIN
};
const ZMQ_SNDTIMEO = 28;
const ZMQ_RCVTIMEO = 27;
const ZMQ_LINGER = 17;
const ZMQ_METADATA = 95; // draft API: one "X-Name:value" per call

// Options with a fixed behaviour in libzmq: the default value is honoured, the other is not.
const FIXED = {
    tcp_nodelay: [true, "libzmq always disables Nagle's algorithm (src/tcp.cpp tune_tcp_socket) and has no option for it"],
    allow_legacy: [true, "libzmq always accepts ZMTP 1.0 and 2.0 peers (src/zmtp_engine.cpp handshake) and has no option to refuse them"],
};
const NO_COUNTERPART = {
    send_buffer_size: "libzmq has no application send buffer size; ZMQ_SNDBUF sets the kernel's SO_SNDBUF, a different thing",
    recv_buffer_size: "libzmq has no application receive buffer size; ZMQ_RCVBUF sets the kernel's SO_RCVBUF, a different thing",
};

function setOption(sock, name, value) {
    if (name in NO_COUNTERPART) throw unsupported(`option ${name}: ${NO_COUNTERPART[name]}`);
    if (name in FIXED) {
        const [honoured, why] = FIXED[name];
        if (Boolean(value) !== honoured) throw unsupported(`option ${name}=${value}: ${why}`);
        return;
    }
    if (name === "metadata") {
        if (value === null || typeof value !== "object") throw invalid("metadata must be an object of name -> text");
        for (const [key, val] of Object.entries(value)) sock.setStringOption(ZMQ_METADATA, `${key}:${text(val)}`);
        return;
    }
    const known = OPTIONS[name];
    if (!known) throw unsupported(`option ${name} has no counterpart in zeromq.js ${PACKAGE_VERSION}`);
    const [id, type, convert] = known;
    sock[`set${type}Option`](id, convert(value));
}

// -- sockets --------------------------------------------------------------------------------------

const TYPES = {
    PAIR: zmq.Pair,
    PUB: zmq.Publisher,
    SUB: zmq.Subscriber,
    REQ: zmq.Request,
    REP: zmq.Reply,
    DEALER: zmq.Dealer,
    ROUTER: zmq.Router,
    PULL: zmq.Pull,
    PUSH: zmq.Push,
    XPUB: zmq.XPublisher,
    XSUB: zmq.XSubscriber,
    STREAM: zmq.Stream,
};
if (draft) {
    Object.assign(TYPES, {
        SERVER: draft.Server,
        CLIENT: draft.Client,
        RADIO: draft.Radio,
        DISH: draft.Dish,
        GATHER: draft.Gather,
        SCATTER: draft.Scatter,
    });
}

// A socket's connection events, as the `events` op hands them out.
class EventLog {
    constructor() {
        this.events = [];
        this.waiters = new Set();
    }

    add(event) {
        if (this.events.length >= 10000) this.events.shift();
        this.events.push(event);
        for (const wake of this.waiters) wake();
    }

    // Everything queued, or up to and including the first `until` (waiting for it);
    // on timeout the queue is left as it was, so a later request still sees it all.
    async take(until, timeout) {
        if (!until) return this.events.splice(0);
        const deadline = Date.now() + timeout * 1000;
        for (;;) {
            const i = this.events.findIndex((e) => e.event === until);
            if (i >= 0) return this.events.splice(0, i + 1);
            const left = deadline - Date.now();
            if (left <= 0) {
                const seen = this.events.map((e) => e.event).join(", ") || "no events";
                throw timedOut(`no ${until} event within ${timeout}s (saw ${seen})`);
            }
            await new Promise((resolve) => {
                const wake = () => {
                    clearTimeout(timer);
                    this.waiters.delete(wake);
                    resolve();
                };
                const timer = setTimeout(wake, left);
                this.waiters.add(wake);
            });
        }
    }
}

// zeromq.js Observer event types -> the protocol's names and failure classes.
// "close" is libzmq's EVENT_CLOSED (one file descriptor, not the socket) and
// "connect:delay" internal bookkeeping: neither has a counterpart.
const EVENT_NAMES = {
    bind: ["listening"],
    "bind:error": ["bind_failed"],
    accept: ["accepted"],
    connect: ["connected"],
    "connect:retry": ["connect_retried"],
    handshake: ["handshake_succeeded"],
    "handshake:error:protocol": ["handshake_failed", "protocol"],
    "handshake:error:auth": ["handshake_failed", "auth"],
    "handshake:error:other": ["handshake_failed"],
    disconnect: ["disconnected"],
    end: ["closed"],
};

function translateEvent(ev) {
    const known = EVENT_NAMES[ev.type];
    if (!known) return null;
    const [name, failure] = known;
    const out = { event: name, endpoint: ev.address ?? "" };
    if (failure) out.failure = failure;
    if (ev.error) {
        // libzmq gives a number: the ZAP status, a ZMTP_PROTOCOL_ERROR code or an errno;
        // zeromq.js turns it into an error with a status or a code.
        const detail = ev.error.status ?? ev.error.code;
        out.reason = detail === undefined ? ev.error.message : `${ev.error.message} (${detail})`;
    }
    return out;
}

const sockets = new Map(); // id -> {sock, type, log, busy, watching}
let socketCount = 0;

function entry(id) {
    const e = sockets.get(id);
    if (!e) throw invalid(`no socket ${JSON.stringify(id)}`);
    return e;
}

// Records the socket's monitor events until libzmq says monitoring stopped.
async function watch(e) {
    try {
        for await (const ev of e.sock.events) {
            const out = translateEvent(ev);
            if (out) e.log.add(out);
            if (ev.type === "end") return;
        }
    } catch (err) {
        process.stderr.write(`zeromqjs agent: monitor of ${e.type} ended: ${err.message}\n`);
    }
}

// libzmq attaches new connections (and sends what a bound SUB or DISH owes
// them) only when the application calls into the socket; an agent idle
// between requests would hide them. Poll like a live application does. A
// socket with a send or receive pending is left alone: reading ZMQ_EVENTS
// would consume the edge-triggered wake-up zeromq.js is polling for.
// The poker runs only while a socket is open: an agent idle between cells must not wake 100
// times a second (a run keeps dozens of agents alive at once).
let poker = null;

function poke() {
    for (const e of sockets.values()) {
        if (e.busy) continue;
        try {
            void e.sock.readable; // zmq_getsockopt(ZMQ_EVENTS)
        } catch {
            // closed under us: close() removes it next
        }
    }
}

function pokeWhileOpen() {
    if (sockets.size > 0 && poker === null) poker = setInterval(poke, 10);
    if (sockets.size === 0 && poker !== null) {
        clearInterval(poker);
        poker = null;
    }
}

async function exclusive(e, fn) {
    e.busy = true;
    try {
        return await fn();
    } finally {
        e.busy = false;
    }
}

function isTimeout(err) {
    return err && err.code === "EAGAIN";
}

// One send or receive, given `timeout` seconds in all. zeromq.js answers EAGAIN
// not only when its timer runs out but also, at once, when ZMQ_EVENTS said
// ready and libzmq then had nothing to hand over (a REQ or REP discarding a
// malformed message: src/socket.cc Socket::Receive and Poller::ReadableCallback
// reject with whatever zmq_msg_recv said); so try again until the time is up.
async function withDeadline(e, option, timeout, attempt) {
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
        e.sock.setInt32Option(option, Math.max(0, Math.round(deadline - Date.now())));
        try {
            return await attempt();
        } catch (err) {
            if (!isTimeout(err) || Date.now() >= deadline) throw err;
        }
    }
}

// The routing id of a SERVER peer is a 32-bit number in libzmq; on the wire
// of this protocol it is 4 octets, big-endian, in hex.
function routingIdToHex(n) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b.toString("hex");
}

function routingIdFromHex(hex) {
    const b = fromHex(hex, "routing_id");
    if (b.length === 0 || b.length > 4) throw invalid("a SERVER routing_id is 1 to 4 octets (libzmq's uint32)");
    return b.readUIntBE(0, b.length);
}

// -- ZAP ------------------------------------------------------------------------------------------

let zapPolicy = { users: {}, keys: new Set(), denyStatus: 400 };
let zapHandler = null;
// Each request the handler got, frames as hex, until `zap_requests` hands them over.
let zapRequests = [];

// A handler of our own on inproc://zeromq.zap.01 (RFC 27) in zeromq.js's
// global context, the one every socket of this agent lives in: zeromq.js has
// no authenticator, and libzmq asks whoever binds that endpoint. A Router, so
// that the server's address delimiter reaches us as the server sent it.
async function serveZap(handler) {
    try {
        for await (const frames of handler) {
            zapRequests.push(frames.map((f) => f.toString("hex")));
            // A request without its delimiter is recorded for the harness to judge, and answered as well as can be.
            const envelope = frames.length > 1 && frames[1].length === 0 ? 2 : 1;
            const request = frames.slice(envelope);
            if (request.length < 6) continue;
            const [version, requestId, , , , mechanism, ...credentials] = request;
            const { users, keys, denyStatus } = zapPolicy;
            let allowed = false;
            let userId = "";
            const mech = mechanism.toString();
            if (mech === "PLAIN" && credentials.length === 2) {
                const user = credentials[0].toString();
                allowed = Object.hasOwn(users, user) && Buffer.from(users[user]).equals(credentials[1]);
                userId = user;
            } else if (mech === "CURVE" && credentials.length === 1) {
                userId = z85Encode(credentials[0]);
                allowed = keys === null || keys.has(userId);
            } else {
                allowed = mech === "NULL";
            }
            const [status, reason] = allowed ? ["200", "OK"] : [String(denyStatus), "not on the allow list"];
            await handler.send([frames[0], "", version, requestId, status, reason, allowed ? userId : "", ""]);
        }
    } catch (err) {
        process.stderr.write(`zeromqjs agent: ZAP handler stopped: ${err.message}\n`);
    }
}

// -- operations -----------------------------------------------------------------------------------

const ops = {
    async hello() {
        return {
            peer: "zeromqjs",
            protocol: PROTOCOL_VERSION,
            versions: { zeromq: PACKAGE_VERSION, libzmq: zmq.version, node: process.versions.node },
        };
    },

    async socket({ type, options = {}, mechanism = "NULL" }) {
        if (typeof type !== "string") throw invalid("type must be a socket type name");
        const Cls = TYPES[type.toUpperCase()];
        if (!Cls) throw unsupported(`socket type ${type} is unknown to zeromq.js ${PACKAGE_VERSION}`);
        if (mechanism === "CURVE" && !zmq.capability.curve) throw unsupported("this zeromq.js build has no CURVE");
        if (!["NULL", "PLAIN", "CURVE"].includes(mechanism)) {
            throw unsupported(`mechanism ${mechanism}: zeromq.js ${PACKAGE_VERSION} is built without it (capability: ${JSON.stringify(zmq.capability)})`);
        }
        if (options === null || typeof options !== "object") throw invalid("options must be an object");
        const sock = new Cls();
        try {
            sock.setInt32Option(ZMQ_LINGER, 0);
            for (const [name, value] of Object.entries(options)) setOption(sock, name, value);
        } catch (err) {
            sock.close();
            throw err;
        }
        const id = `s${++socketCount}`;
        const e = { sock, type: type.toUpperCase(), log: new EventLog(), busy: false };
        // The observer starts with the socket so that bind and connect events are seen.
        e.watching = watch(e);
        sockets.set(id, e);
        pokeWhileOpen();
        return { socket: id };
    },

    async bind({ socket, endpoint }) {
        const e = entry(socket);
        if (typeof endpoint !== "string") throw invalid("endpoint must be text");
        await e.sock.bind(endpoint);
        return { endpoint: e.sock.lastEndpoint };
    },

    async connect({ socket, endpoint }) {
        const e = entry(socket);
        if (typeof endpoint !== "string") throw invalid("endpoint must be text");
        e.sock.connect(endpoint);
        return {};
    },

    async send({ socket, frames, timeout = 5.0, routing_id, group }) {
        const e = entry(socket);
        const parts = decodeFrames(frames);
        if (typeof e.sock.send !== "function") throw new Error(`a ${e.type} socket cannot send`);
        let routing;
        if (e.type === "SERVER") {
            if (routing_id === undefined) throw invalid("a SERVER send needs routing_id");
            routing = { routingId: routingIdFromHex(routing_id) };
        } else if (e.type === "RADIO") {
            if (typeof group !== "string") throw invalid("a RADIO send needs group (text)");
            routing = { group };
        }
        const message = routing && parts.length === 1 ? parts[0] : parts;
        try {
            await exclusive(e, () => withDeadline(e, ZMQ_SNDTIMEO, seconds(timeout, "timeout"), () => (routing ? e.sock.send(message, routing) : e.sock.send(message))));
        } catch (err) {
            if (isTimeout(err)) throw timedOut(`send did not complete within ${timeout}s`);
            throw err;
        }
        return {};
    },

    async send_more() {
        throw unsupported(
            `zeromq.js ${PACKAGE_VERSION} sends whole messages only: Writable.send (lib/index.d.ts) takes every ` +
                "frame of a message at once, and there is no send of one frame with more to come (no ZMQ_SNDMORE)",
        );
    },

    // Message n is `frames` with "n " before its last frame's octets; ZMQ_SNDTIMEO 0 makes a
    // send that would wait answer EAGAIN at once (libzmq's ZMQ_DONTWAIT), which ends the run.
    async send_until_full({ socket, frames, max, routing_id, group }) {
        const e = entry(socket);
        const parts = decodeFrames(frames);
        if (typeof e.sock.send !== "function") throw new Error(`a ${e.type} socket cannot send`);
        if (!Number.isInteger(max) || max < 1) throw invalid("max must be a positive integer");
        let routing;
        if (e.type === "SERVER") {
            if (routing_id === undefined) throw invalid("a SERVER send needs routing_id");
            routing = { routingId: routingIdFromHex(routing_id) };
        } else if (e.type === "RADIO") {
            if (typeof group !== "string") throw invalid("a RADIO send needs group (text)");
            routing = { group };
        }
        return exclusive(e, async () => {
            e.sock.setInt32Option(ZMQ_SNDTIMEO, 0);
            for (let n = 0; n < max; n++) {
                const numbered = [...parts.slice(0, -1), Buffer.concat([Buffer.from(`${n} `), parts[parts.length - 1]])];
                const message = routing && numbered.length === 1 ? numbered[0] : numbered;
                try {
                    await (routing ? e.sock.send(message, routing) : e.sock.send(message));
                } catch (err) {
                    if (isTimeout(err)) return { sent: n, full: true };
                    throw err;
                }
            }
            return { sent: max, full: false };
        });
    },

    async recv({ socket, timeout = 2.0 }) {
        const e = entry(socket);
        if (typeof e.sock.receive !== "function") throw new Error(`a ${e.type} socket cannot receive`);
        let message;
        try {
            message = await exclusive(e, () => withDeadline(e, ZMQ_RCVTIMEO, seconds(timeout, "timeout"), () => e.sock.receive()));
        } catch (err) {
            if (isTimeout(err)) throw timedOut(`nothing arrived within ${timeout}s`);
            throw err;
        }
        // SERVER and DISH messages come with an object of metadata after the frame.
        const answer = { frames: [] };
        for (const part of message) {
            if (Buffer.isBuffer(part)) answer.frames.push(part.toString("hex"));
            else if (part.routingId !== undefined) answer.routing_id = routingIdToHex(part.routingId);
            else if (part.group !== undefined) answer.group = part.group.toString();
        }
        return answer;
    },

    async subscribe({ socket, topic = "" }) {
        return subscription(entry(socket), fromHex(topic, "topic"), true);
    },

    async unsubscribe({ socket, topic = "" }) {
        return subscription(entry(socket), fromHex(topic, "topic"), false);
    },

    async join({ socket, group }) {
        return membership(entry(socket), group, true);
    },

    async leave({ socket, group }) {
        return membership(entry(socket), group, false);
    },

    async zap({ users = {}, curve_keys = null, deny_status = 400 }) {
        if (![300, 400, 500].includes(deny_status)) throw invalid("deny_status must be 300, 400 or 500");
        if (users === null || typeof users !== "object") throw invalid("users must be an object of user -> password");
        if (curve_keys !== null && !Array.isArray(curve_keys)) throw invalid("curve_keys must be a list or null");
        zapPolicy = { users: { ...users }, keys: curve_keys === null ? null : new Set(curve_keys), denyStatus: deny_status };
        zapRequests = [];
        if (!zapHandler) {
            const handler = new zmq.Router();
            handler.linger = 0;
            await handler.bind("inproc://zeromq.zap.01");
            zapHandler = handler;
            serveZap(handler);
        }
        return {};
    },

    async zap_requests() {
        if (!zapHandler) throw invalid("no ZAP handler is installed: op zap first");
        const requests = zapRequests;
        zapRequests = [];
        return { handler: "ROUTER", requests };
    },

    async events({ socket, until = null, timeout = 2.0 }) {
        const e = entry(socket);
        return { events: await e.log.take(until, seconds(timeout, "timeout")) };
    },

    async close({ socket }) {
        const e = sockets.get(socket);
        if (!e) return {};
        sockets.delete(socket);
        pokeWhileOpen();
        e.sock.setInt32Option(ZMQ_LINGER, 0);
        e.sock.close();
        // libzmq reports MONITOR_STOPPED as the socket closes; give it a moment to arrive.
        await Promise.race([e.watching, new Promise((resolve) => setTimeout(resolve, 200))]);
        return {};
    },

    async quit() {
        return {};
    },

    // -- benchmarks: the hot loop runs here, timed here -------------------------------------------

    async bench_send({ socket, size, count, timeout = 60.0 }) {
        const e = entry(socket);
        const message = Buffer.alloc(int(size));
        e.sock.setInt32Option(ZMQ_SNDTIMEO, millis(seconds(timeout, "timeout")));
        return exclusive(e, async () => {
            const t0 = process.hrtime.bigint();
            try {
                for (let i = 0; i < count; i++) await e.sock.send(message);
            } catch (err) {
                if (isTimeout(err)) throw timedOut(`a send blocked longer than ${timeout}s`);
                throw err;
            }
            return { elapsed: Number(process.hrtime.bigint() - t0) / 1e9 };
        });
    },

    async bench_recv({ socket, count, timeout = 60.0 }) {
        const e = entry(socket);
        e.sock.setInt32Option(ZMQ_RCVTIMEO, millis(seconds(timeout, "timeout")));
        return exclusive(e, async () => {
            let received = 0;
            let t0;
            try {
                await e.sock.receive();
                received = 1;
                t0 = process.hrtime.bigint();
                for (; received < count; received++) await e.sock.receive();
            } catch (err) {
                if (isTimeout(err)) throw timedOut(`fewer than ${count} messages within ${timeout}s (got ${received})`);
                throw err;
            }
            return { elapsed: Number(process.hrtime.bigint() - t0) / 1e9, timed: count - 1, received };
        });
    },

    async bench_rtt({ socket, size, count, timeout = 10.0 }) {
        const e = entry(socket);
        const body = Buffer.alloc(int(size));
        // A DEALER talks to a REP or ROUTER echo through the empty delimiter a REQ would add.
        const message = e.type === "DEALER" ? [Buffer.alloc(0), body] : [body];
        const ms = millis(seconds(timeout, "timeout"));
        e.sock.setInt32Option(ZMQ_SNDTIMEO, ms);
        e.sock.setInt32Option(ZMQ_RCVTIMEO, ms);
        const samples = await exclusive(e, async () => {
            const out = [];
            try {
                for (let i = 0; i < count; i++) {
                    const t = process.hrtime.bigint();
                    await e.sock.send(message);
                    await e.sock.receive();
                    out.push(Number(process.hrtime.bigint() - t));
                }
            } catch (err) {
                if (isTimeout(err)) throw timedOut(`a round trip took longer than ${timeout}s`);
                throw err;
            }
            return out;
        });
        return latencySummary(samples);
    },

    async bench_echo({ socket, count, timeout = 10.0 }) {
        const e = entry(socket);
        const ms = millis(seconds(timeout, "timeout"));
        e.sock.setInt32Option(ZMQ_SNDTIMEO, ms);
        e.sock.setInt32Option(ZMQ_RCVTIMEO, ms);
        await exclusive(e, async () => {
            try {
                for (let i = 0; i < count; i++) await e.sock.send(await e.sock.receive());
            } catch (err) {
                if (isTimeout(err)) throw timedOut(`no message to echo within ${timeout}s`);
                throw err;
            }
        });
        return {};
    },
};

function subscription(e, topic, on) {
    if (e.type === "SUB") {
        if (on) e.sock.subscribe(topic);
        else e.sock.unsubscribe(topic);
    } else if (e.type === "XSUB") {
        // An XSUB subscribes by sending the subscription message itself (RFC 29).
        return e.sock.send(Buffer.concat([Buffer.from([on ? 1 : 0]), topic])).then(() => ({}));
    } else {
        throw new Error(`a ${e.type} socket has no subscriptions`);
    }
    return {};
}

function membership(e, group, on) {
    if (typeof group !== "string") throw invalid("group must be text");
    if (e.type !== "DISH") throw new Error(`a ${e.type} socket has no groups`);
    if (on) e.sock.join(group);
    else e.sock.leave(group);
    return {};
}

// Round-trip times in microseconds, percentiles by rank.
function latencySummary(samplesNs) {
    const s = [...samplesNs].sort((a, b) => a - b);
    if (s.length === 0) return { count: 0 };
    const pct = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] / 1000;
    const mean = s.reduce((a, b) => a + b, 0) / s.length / 1000;
    return { count: s.length, p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), mean };
}

// -- the request loop -----------------------------------------------------------------------------

function write(answer) {
    process.stdout.write(`${JSON.stringify(answer)}\n`);
}

async function handle(req) {
    const { id, op, ...fields } = req;
    const fn = Object.hasOwn(ops, op) ? ops[op] : null;
    if (!fn) return { id, ok: false, error: { kind: "unsupported", message: `op ${JSON.stringify(op)} is not supported by this agent` } };
    try {
        return { id, ok: true, ...(await fn(fields)) };
    } catch (err) {
        if (err instanceof AgentError) return { id, ok: false, error: { kind: err.kind, message: err.message } };
        const code = err && err.code && !String(err.message).includes(err.code) ? ` (${err.code})` : "";
        return { id, ok: false, error: { kind: "failed", message: `${err && err.message}${code}` } };
    }
}

function shutdown() {
    if (poker !== null) clearInterval(poker);
    for (const e of sockets.values()) {
        try {
            e.sock.setInt32Option(ZMQ_LINGER, 0);
            e.sock.close();
        } catch {
            // already closed
        }
    }
    sockets.clear();
    if (zapHandler) zapHandler.close();
}

// Never die on an error: the harness decides what a failure means.
process.on("unhandledRejection", (err) => process.stderr.write(`zeromqjs agent: unhandled: ${err && err.stack}\n`));
process.on("uncaughtException", (err) => process.stderr.write(`zeromqjs agent: uncaught: ${err && err.stack}\n`));

async function main() {
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
        if (!line.trim()) continue;
        let req;
        try {
            req = JSON.parse(line);
            if (req === null || typeof req !== "object" || !Number.isInteger(req.id) || typeof req.op !== "string") {
                throw new Error("a request needs an integer id and an op");
            }
        } catch (err) {
            write({ id: req && Number.isInteger(req.id) ? req.id : null, ok: false, error: { kind: "invalid", message: `bad request line: ${err.message}` } });
            continue;
        }
        write(await handle(req));
        if (req.op === "quit") break;
    }
    shutdown();
    process.exit(0);
}

main();
