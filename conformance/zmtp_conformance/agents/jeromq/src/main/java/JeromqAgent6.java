/*  Agent for JeroMQ 0.6 (org.zeromq:jeromq, a pure Java port of libzmq 4),
    speaking the harness's control protocol: JSON lines on stdin and stdout
    (docs/agent-protocol.md).

    Built by agents/jeromq/build with Maven (agents/jeromq/pom.xml pins JeroMQ
    and Gson). The agent for JeroMQ 0.3.6 is agents/jeromq/JeromqAgent.java:
    0.3.6 lacks most of the API used here (mechanisms, heartbeats, event hooks,
    draft socket types), so each version has its own.

    JeroMQ follows libzmq closely, and so does this agent: one context for all
    sockets, a ZAP handler of ours on inproc://zeromq.zap.01 in that context,
    the socket monitor through an event hook.
*/

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.zeromq.SocketType;
import org.zeromq.ZEvent;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;
import org.zeromq.ZMonitor;
import zmq.ZError;

public final class JeromqAgent6 {

    /** The request could not be carried out for a reason the protocol names. */
    static final class AgentError extends Exception {
        private static final long serialVersionUID = 1L;
        final String kind;

        AgentError(String kind, String message) {
            super(message);
            this.kind = kind;
        }
    }

    static AgentError unsupported(String message) {
        return new AgentError("unsupported", message);
    }

    static AgentError invalid(String message) {
        return new AgentError("invalid", message);
    }

    static AgentError timeout(String message) {
        return new AgentError("timeout", message);
    }

    /**
     * A socket's connection events. JeroMQ calls the hook from its I/O thread
     * (and from ours, for bind and connect), so the log is shared under its lock.
     */
    static final class EventLog implements ZEvent.ZEventConsummer {
        private final Deque<JsonObject> events = new ArrayDeque<>();

        // The raw event keeps libzmq's numbers (ZAP status, protocol error code),
        // which JeroMQ's ZEvent wrapper turns into enums that reject unknown codes.
        @Override
        public void consume(zmq.ZMQ.Event ev) {
            JsonObject o = translate(ev);
            if (o != null) {
                synchronized (this) {
                    events.addLast(o);
                    notifyAll();
                }
            }
        }

        @Override
        public void consume(ZEvent ev) {
            // Never called: consume(zmq.ZMQ.Event) above replaces the default that would.
        }

        /** Everything queued, or up to and including the first `until` event, waiting for it. */
        synchronized JsonArray take(String until, long timeoutMs) throws AgentError {
            JsonArray out = new JsonArray();
            if (until == null) {
                while (!events.isEmpty()) out.add(events.pollFirst());
                return out;
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            while (true) {
                int at = 0;
                for (JsonObject o : events) {
                    if (until.equals(o.get("event").getAsString())) {
                        for (int i = 0; i <= at; i++) out.add(events.pollFirst());
                        return out;
                    }
                    at++;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    StringBuilder seen = new StringBuilder();
                    for (JsonObject o : events) {
                        seen.append(seen.length() > 0 ? ", " : "").append(o.get("event").getAsString());
                    }
                    throw timeout("no " + until + " event in time (saw "
                        + (seen.length() > 0 ? seen : "no events") + ")");
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw timeout("interrupted");
                }
            }
        }
    }

    /** libzmq's monitor events as the protocol names them; the rest have no counterpart. */
    static JsonObject translate(zmq.ZMQ.Event ev) {
        String name;
        String failure = null;
        String reason = null;
        int value = ev.arg instanceof Integer ? (Integer) ev.arg : 0;
        switch (ev.event) {
            case zmq.ZMQ.ZMQ_EVENT_LISTENING: name = "listening"; break;
            case zmq.ZMQ.ZMQ_EVENT_BIND_FAILED: name = "bind_failed"; reason = "errno " + value; break;
            case zmq.ZMQ.ZMQ_EVENT_ACCEPTED: name = "accepted"; break;
            case zmq.ZMQ.ZMQ_EVENT_CONNECTED: name = "connected"; break;
            case zmq.ZMQ.ZMQ_EVENT_CONNECT_RETRIED: name = "connect_retried"; break;
            case zmq.ZMQ.ZMQ_EVENT_HANDSHAKE_SUCCEEDED: name = "handshake_succeeded"; break;
            case zmq.ZMQ.ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                name = "handshake_failed";
                reason = "errno " + value;
                break;
            case zmq.ZMQ.ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
                name = "handshake_failed";
                failure = "protocol";
                reason = protocolError(value);
                break;
            case zmq.ZMQ.ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                name = "handshake_failed";
                failure = "auth";
                reason = "ZAP status " + value;
                break;
            case zmq.ZMQ.ZMQ_EVENT_DISCONNECTED: name = "disconnected"; break;
            case zmq.ZMQ.ZMQ_EVENT_MONITOR_STOPPED: name = "closed"; break;
            default: return null;  // CLOSED (one channel), CONNECT_DELAYED, HANDSHAKE_PROTOCOL, ...
        }
        JsonObject o = new JsonObject();
        o.addProperty("event", name);
        o.addProperty("endpoint", ev.addr == null ? "" : ev.addr);
        if (failure != null) o.addProperty("failure", failure);
        if (reason != null) o.addProperty("reason", reason);
        return o;
    }

    static String protocolError(int code) {
        try {
            return ZMonitor.ProtocolCode.findByCode(code).name();
        } catch (IllegalArgumentException e) {
            return "protocol error 0x" + Integer.toHexString(code);
        }
    }

    static final class Entry {
        final ZMQ.Socket socket;
        final SocketType type;
        final EventLog log = new EventLog();

        Entry(ZMQ.Socket socket, SocketType type) {
            this.socket = socket;
            this.type = type;
        }
    }

    /** What the ZAP handler allows: replaced whole by each `zap` request. */
    static final class ZapPolicy {
        final Map<String, String> users;
        final Set<String> curveKeys;  // Z85 public keys; null allows any key
        final int denyStatus;

        ZapPolicy(Map<String, String> users, Set<String> curveKeys, int denyStatus) {
            this.users = users;
            this.curveKeys = curveKeys;
            this.denyStatus = denyStatus;
        }
    }

    // One context for every socket: the ZAP handler must live in the context
    // of the sockets it serves (inproc:// does not cross contexts).
    final ZMQ.Context ctx = ZMQ.context(1);
    final Map<String, Entry> sockets = new LinkedHashMap<>();
    int counter = 0;
    volatile ZapPolicy zapPolicy;
    Thread zapThread;

    // ---- helpers ----------------------------------------------------------

    static byte[] hex(String text) throws AgentError {
        if (text.length() % 2 != 0) {
            throw invalid("odd-length hex: " + text);
        }
        byte[] out = new byte[text.length() / 2];
        for (int i = 0; i < out.length; i++) {
            int hi = Character.digit(text.charAt(2 * i), 16);
            int lo = Character.digit(text.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw invalid("not hex: " + text);
            }
            out[i] = (byte) (hi * 16 + lo);
        }
        return out;
    }

    static String hex(byte[] data) {
        StringBuilder sb = new StringBuilder(data.length * 2);
        for (byte b : data) {
            sb.append(Character.forDigit((b >> 4) & 15, 16)).append(Character.forDigit(b & 15, 16));
        }
        return sb.toString();
    }

    static String text(JsonObject req, String key) throws AgentError {
        JsonElement e = req.get(key);
        if (e == null || e.isJsonNull()) {
            throw invalid("missing field " + key);
        }
        return e.getAsString();
    }

    static String optionalText(JsonObject req, String key) {
        JsonElement e = req.get(key);
        return e == null || e.isJsonNull() ? null : e.getAsString();
    }

    static int millis(JsonObject req, String key, double defaultSeconds) {
        JsonElement e = req.get(key);
        double s = (e == null || e.isJsonNull()) ? defaultSeconds : e.getAsDouble();
        return (int) Math.max(0L, Math.min(Integer.MAX_VALUE, Math.round(s * 1000)));
    }

    static int secondsToMillis(JsonElement v) {
        return (int) Math.round(v.getAsDouble() * 1000);
    }

    static int count(JsonObject req) throws AgentError {
        JsonElement e = req.get("count");
        if (e == null || e.isJsonNull() || e.getAsInt() < 0) {
            throw invalid("count must be a number of messages");
        }
        return e.getAsInt();
    }

    Entry entry(JsonObject req) throws AgentError {
        Entry e = sockets.get(text(req, "socket"));
        if (e == null) {
            throw invalid("no socket " + req.get("socket"));
        }
        return e;
    }

    /** A jar's version from the pom.properties Maven packs into it ("?" if it has none). */
    static String mavenVersion(Class<?> inJar, String group, String artifact) {
        String path = "/META-INF/maven/" + group + "/" + artifact + "/pom.properties";
        try (InputStream in = inJar.getResourceAsStream(path)) {
            if (in != null) {
                Properties p = new Properties();
                p.load(in);
                return p.getProperty("version", "?");
            }
        } catch (java.io.IOException ignored) {
            // fall through: the version is only reported
        }
        return "?";
    }

    // ---- options ----------------------------------------------------------

    static void setOption(ZMQ.Socket s, String name, JsonElement v) throws AgentError {
        if (v == null || v.isJsonNull()) {
            if ("max_msg_size".equals(name)) {
                s.setMaxMsgSize(-1);  // null: no limit
            }
            return;
        }
        boolean ok;
        switch (name) {
            case "routing_id": ok = s.setIdentity(hex(v.getAsString())); break;
            case "max_msg_size": ok = s.setMaxMsgSize(v.getAsLong()); break;
            case "sndhwm": ok = s.setSndHWM(v.getAsInt()); break;
            case "rcvhwm": ok = s.setRcvHWM(v.getAsInt()); break;
            case "handshake_timeout": ok = s.setHandshakeIvl(secondsToMillis(v)); break;
            case "heartbeat_ivl": ok = s.setHeartbeatIvl(secondsToMillis(v)); break;
            case "heartbeat_ttl": ok = s.setHeartbeatTtl(secondsToMillis(v)); break;
            case "heartbeat_timeout": ok = s.setHeartbeatTimeout(secondsToMillis(v)); break;
            case "reconnect_ivl": ok = s.setReconnectIVL(secondsToMillis(v)); break;
            case "reconnect_ivl_max": ok = s.setReconnectIVLMax(secondsToMillis(v)); break;
            case "linger": ok = s.setLinger(secondsToMillis(v)); break;
            case "router_mandatory": ok = s.setRouterMandatory(v.getAsBoolean()); break;
            case "router_handover": ok = s.setRouterHandover(v.getAsBoolean()); break;
            case "req_relaxed": ok = s.setReqRelaxed(v.getAsBoolean()); break;
            case "req_correlate": ok = s.setReqCorrelate(v.getAsBoolean()); break;
            case "xpub_verbose": ok = s.setXpubVerbose(v.getAsBoolean()); break;
            case "immediate": ok = s.setImmediate(v.getAsBoolean()); break;
            case "plain_server": ok = s.setPlainServer(v.getAsBoolean()); break;
            case "plain_username": ok = s.setPlainUsername(v.getAsString()); break;
            case "plain_password": ok = s.setPlainPassword(v.getAsString()); break;
            case "zap_domain": ok = s.setZapDomain(v.getAsString()); break;
            case "curve_server": ok = s.setCurveServer(v.getAsBoolean()); break;
            // JeroMQ decodes a 40-character key as Z85 (zmq.Options.setCurveKey).
            case "curve_secretkey": ok = s.setCurveSecretKey(v.getAsString().getBytes(StandardCharsets.UTF_8)); break;
            case "curve_publickey": ok = s.setCurvePublicKey(v.getAsString().getBytes(StandardCharsets.UTF_8)); break;
            case "curve_serverkey": ok = s.setCurveServerKey(v.getAsString().getBytes(StandardCharsets.UTF_8)); break;
            case "send_buffer_size": ok = s.setSendBufferSize(v.getAsInt()); break;
            case "recv_buffer_size": ok = s.setReceiveBufferSize(v.getAsInt()); break;
            case "tcp_keepalive": ok = s.setTCPKeepAlive(v.getAsBoolean() ? 1 : 0); break;
            case "tcp_keepalive_idle": ok = s.setTCPKeepAliveIdle(Math.round(v.getAsDouble())); break;
            case "tcp_keepalive_interval": ok = s.setTCPKeepAliveInterval(Math.round(v.getAsDouble())); break;
            case "metadata":
                throw unsupported("JeroMQ 0.6.0 has no ZMQ_METADATA option (zmq.Options.setSocketOpt): it"
                    + " cannot add X- properties to READY");
            case "connect_timeout":
                throw unsupported("JeroMQ 0.6.0 has no ZMQ_CONNECT_TIMEOUT option (zmq.Options.setSocketOpt)");
            default:
                throw unsupported("option " + name + " has no JeroMQ counterpart in this agent");
        }
        if (!ok) {
            throw new AgentError("failed", "JeroMQ refused option " + name + " = " + v);
        }
    }

    // ---- operations -------------------------------------------------------

    JsonObject hello() {
        JsonObject out = new JsonObject();
        out.addProperty("peer", "jeromq");
        out.addProperty("protocol", 1);
        JsonObject versions = new JsonObject();
        versions.addProperty("jeromq", mavenVersion(ZMQ.class, "org.zeromq", "jeromq"));
        // jnacl: JeroMQ's CURVE cryptography (zmq.io.mechanism.curve.Curve).
        versions.addProperty("jnacl", mavenVersion(com.neilalexander.jnacl.NaCl.class, "eu.neilalexander", "jnacl"));
        versions.addProperty("gson", mavenVersion(com.google.gson.Gson.class, "com.google.code.gson", "gson"));
        versions.addProperty("java", System.getProperty("java.version"));
        out.add("versions", versions);
        // JeroMQ 0.6.0 greets with revision 3, minor 0 (zmq.io.StreamEngine.handshake): a ZMTP 3.0
        // peer, so the scenarios that need 3.1 of both peers (SUBSCRIBE/CANCEL and PING commands)
        // do not apply to it.
        com.google.gson.JsonArray zmtp = new com.google.gson.JsonArray();
        zmtp.add("3.0");
        out.add("zmtp", zmtp);
        // zmq.io.net.ipc.IpcAddress.resolve: ipc:// is tcp on the loopback address, at a port hashed
        // from the path, so only another JeroMQ meets it there (the harness matches ipc cells by this).
        out.addProperty("ipc", "jeromq");
        return out;
    }

    JsonObject socket(JsonObject req) throws AgentError {
        String typeName = text(req, "type").toUpperCase(java.util.Locale.ROOT);
        SocketType type;
        try {
            type = SocketType.valueOf(typeName);
        } catch (IllegalArgumentException e) {
            throw unsupported("JeroMQ 0.6.0 has no socket type " + typeName + " (org.zeromq.SocketType)");
        }
        String mech = optionalText(req, "mechanism");
        if (mech != null && !Arrays.asList("NULL", "PLAIN", "CURVE").contains(mech)) {
            throw unsupported("JeroMQ 0.6.0 implements NULL, PLAIN and CURVE only"
                + " (org.zeromq.ZMQ.Socket.Mechanism: GSSAPI is a TODO), not " + mech);
        }
        ZMQ.Socket s = ctx.socket(type);
        // close() must not linger (cells must not leak into each other); an explicit
        // `linger` option below overrides this.
        s.setLinger(0);
        try {
            JsonElement opts = req.get("options");
            if (opts != null && opts.isJsonObject()) {
                for (Map.Entry<String, JsonElement> o : opts.getAsJsonObject().entrySet()) {
                    setOption(s, o.getKey(), o.getValue());
                }
            }
        } catch (AgentError | RuntimeException e) {
            s.setLinger(0);
            s.close();
            throw e;
        }
        Entry entry = new Entry(s, type);
        s.setEventHook(entry.log, ZMQ.EVENT_ALL);
        String name = "s" + (++counter);
        sockets.put(name, entry);
        JsonObject out = new JsonObject();
        out.addProperty("socket", name);
        return out;
    }

    JsonObject bind(JsonObject req) throws AgentError {
        Entry e = entry(req);
        String endpoint = text(req, "endpoint");
        e.socket.bind(endpoint);
        JsonObject out = new JsonObject();
        out.addProperty("endpoint", e.socket.getLastEndpoint());
        return out;
    }

    JsonObject connect(JsonObject req) throws AgentError {
        Entry e = entry(req);
        String endpoint = text(req, "endpoint");
        e.socket.connect(endpoint);
        return new JsonObject();
    }

    /** A send that returned false: EAGAIN is a timeout, anything else the library's refusal. */
    static AgentError sendFailure(ZMQ.Socket s) {
        int errno = s.errno();
        if (errno == ZError.EAGAIN || errno == 0) {
            return timeout("send did not complete in time (no peer to take it)");
        }
        return new AgentError("failed", "send refused: " + ZError.toString(errno) + " (errno " + errno + ")");
    }

    static AgentError recvFailure(ZMQ.Socket s, String what) {
        int errno = s.errno();
        if (errno == ZError.EAGAIN || errno == 0) {
            return timeout(what);
        }
        return new AgentError("failed", "recv failed: " + ZError.toString(errno) + " (errno " + errno + ")");
    }

    static void sendFrames(ZMQ.Socket s, List<byte[]> frames) throws AgentError {
        for (int i = 0; i < frames.size(); i++) {
            if (!s.send(frames.get(i), i < frames.size() - 1 ? ZMQ.SNDMORE : 0)) {
                throw sendFailure(s);
            }
        }
    }

    /** One whole message, or null when nothing came before the receive timeout. */
    static List<byte[]> recvFrames(ZMQ.Socket s) throws AgentError {
        byte[] first = s.recv(0);
        if (first == null) {
            return null;
        }
        List<byte[]> frames = new ArrayList<>();
        frames.add(first);
        while (s.hasReceiveMore()) {
            byte[] more = s.recv(0);
            if (more == null) {
                throw recvFailure(s, "the rest of a multipart message did not arrive");
            }
            frames.add(more);
        }
        return frames;
    }

    /** The draft types (RFCs 47-49) carry a group or a routing id beside the frame: ZFrame's API. */
    static boolean isDraft(SocketType t) {
        switch (t) {
            case CLIENT: case SERVER: case RADIO: case DISH: case SCATTER: case GATHER: return true;
            default: return false;
        }
    }

    JsonObject send(JsonObject req) throws AgentError {
        Entry e = entry(req);
        try {
            return sendOn(e, req);
        } catch (UnsupportedOperationException ex) {
            // JeroMQ refuses a send on a receive-only type (PULL, GATHER, SUB, DISH) by throwing
            // from zmq.SocketBase.xsend where libzmq returns ENOTSUP: the library's refusal, not a
            // bad request, so it is reported as "failed".
            throw new AgentError("failed", "send refused: JeroMQ's " + e.type
                    + " cannot send (UnsupportedOperationException from zmq.SocketBase.xsend)");
        }
    }

    /** The first frames of a message, each sent with SNDMORE (the last too); a later send ends it. */
    JsonObject sendMore(JsonObject req) throws AgentError {
        Entry e = entry(req);
        JsonArray frames = req.getAsJsonArray("frames");
        if (frames == null || frames.size() == 0) {
            throw invalid("send_more needs frames");
        }
        e.socket.setSendTimeOut(millis(req, "timeout", 5.0));
        try {
            for (JsonElement f : frames) {
                if (!e.socket.send(hex(f.getAsString()), ZMQ.SNDMORE)) {
                    throw sendFailure(e.socket);
                }
            }
        } catch (UnsupportedOperationException ex) {
            throw new AgentError("failed", "send refused: JeroMQ's " + e.type
                    + " cannot send (UnsupportedOperationException from zmq.SocketBase.xsend)");
        }
        return new JsonObject();
    }

    JsonObject sendOn(Entry e, JsonObject req) throws AgentError {
        JsonArray frames = req.getAsJsonArray("frames");
        if (frames == null || frames.size() == 0) {
            throw invalid("send needs frames");
        }
        List<byte[]> data = new ArrayList<>();
        for (JsonElement f : frames) data.add(hex(f.getAsString()));
        e.socket.setSendTimeOut(millis(req, "timeout", 5.0));
        String group = optionalText(req, "group");
        String routingId = optionalText(req, "routing_id");
        if (!isDraft(e.type)) {
            if (group != null || routingId != null) {
                throw invalid("group and routing_id are for RADIO and SERVER sockets, not " + e.type);
            }
            sendFrames(e.socket, data);
            return new JsonObject();
        }
        int rid = 0;
        if (routingId != null) {
            byte[] r = hex(routingId);
            if (r.length != 4) {
                throw invalid("a SERVER routing id is 4 octets, not " + r.length);
            }
            rid = java.nio.ByteBuffer.wrap(r).getInt();  // network order, as the protocol gives it
        }
        for (int i = 0; i < data.size(); i++) {
            org.zeromq.ZFrame f = new org.zeromq.ZFrame(data.get(i));
            if (group != null) f.setGroup(group);
            f.setRoutingId(rid);
            // A multipart send is the draft types' to refuse (they are single-part), not ours.
            if (!f.send(e.socket, i < data.size() - 1 ? org.zeromq.ZFrame.MORE : 0)) {
                throw sendFailure(e.socket);
            }
        }
        return new JsonObject();
    }

    /**
     * Message n is the frames with "n " before the last frame's octets, sent with
     * ZMQ.DONTWAIT until JeroMQ answers EAGAIN (a send that would wait, or a SERVER's
     * refusal for a full queue) or max went. As in libzmq, only a message's first part
     * can find the queue full: the rest follow it into the same pipe, so EAGAIN later
     * on is an error, not "full".
     */
    JsonObject sendUntilFull(JsonObject req) throws AgentError {
        Entry e = entry(req);
        JsonArray frames = req.getAsJsonArray("frames");
        if (frames == null || frames.size() == 0) {
            throw invalid("send_until_full needs frames");
        }
        JsonElement maxField = req.get("max");
        int max = maxField == null || maxField.isJsonNull() ? 0 : maxField.getAsInt();
        if (max < 1) {
            throw invalid("max must be a positive integer");
        }
        List<byte[]> template = new ArrayList<>();
        for (JsonElement f : frames) template.add(hex(f.getAsString()));
        String group = optionalText(req, "group");
        String routingId = optionalText(req, "routing_id");
        boolean draft = isDraft(e.type);
        if (!draft && (group != null || routingId != null)) {
            throw invalid("group and routing_id are for RADIO and SERVER sockets, not " + e.type);
        }
        int rid = 0;
        if (routingId != null) {
            byte[] r = hex(routingId);
            if (r.length != 4) {
                throw invalid("a SERVER routing id is 4 octets, not " + r.length);
            }
            rid = java.nio.ByteBuffer.wrap(r).getInt();
        }
        byte[] last = template.get(template.size() - 1);
        JsonObject out = new JsonObject();
        try {
            for (int n = 0; n < max; n++) {
                byte[] prefix = (n + " ").getBytes(StandardCharsets.US_ASCII);
                byte[] numbered = new byte[prefix.length + last.length];
                System.arraycopy(prefix, 0, numbered, 0, prefix.length);
                System.arraycopy(last, 0, numbered, prefix.length, last.length);
                for (int i = 0; i < template.size(); i++) {
                    boolean more = i < template.size() - 1;
                    byte[] part = more ? template.get(i) : numbered;
                    boolean went;
                    if (draft) {
                        org.zeromq.ZFrame f = new org.zeromq.ZFrame(part);
                        if (group != null) f.setGroup(group);
                        f.setRoutingId(rid);
                        went = f.send(e.socket, org.zeromq.ZFrame.DONTWAIT | (more ? org.zeromq.ZFrame.MORE : 0));
                    } else {
                        went = e.socket.send(part, ZMQ.DONTWAIT | (more ? ZMQ.SNDMORE : 0));
                    }
                    if (went) continue;
                    if (i == 0 && e.socket.errno() == ZError.EAGAIN) {
                        out.addProperty("sent", n);
                        out.addProperty("full", true);
                        return out;
                    }
                    throw new AgentError("failed", "message " + n + " refused: "
                            + ZError.toString(e.socket.errno()) + " (errno " + e.socket.errno() + ")");
                }
            }
        } catch (UnsupportedOperationException ex) {
            throw new AgentError("failed", "send refused: JeroMQ's " + e.type
                    + " cannot send (UnsupportedOperationException from zmq.SocketBase.xsend)");
        }
        out.addProperty("sent", max);
        out.addProperty("full", false);
        return out;
    }

    JsonObject recv(JsonObject req) throws AgentError {
        Entry e = entry(req);
        e.socket.setReceiveTimeOut(millis(req, "timeout", 2.0));
        JsonObject resp = new JsonObject();
        JsonArray out = new JsonArray();
        if (!isDraft(e.type)) {
            List<byte[]> frames = recvFrames(e.socket);
            if (frames == null) {
                throw recvFailure(e.socket, "nothing arrived in time");
            }
            for (byte[] f : frames) out.add(hex(f));
        } else {
            org.zeromq.ZFrame first = org.zeromq.ZFrame.recvFrame(e.socket);
            if (first == null) {
                throw recvFailure(e.socket, "nothing arrived in time");
            }
            if (e.type == SocketType.DISH) {
                resp.addProperty("group", first.getGroup() == null ? "" : first.getGroup());
            } else if (e.type == SocketType.SERVER) {
                resp.addProperty("routing_id", String.format("%08x", first.getRoutingId()));
            }
            out.add(hex(first.getData()));
            for (org.zeromq.ZFrame f = first; f.hasMore();) {
                f = org.zeromq.ZFrame.recvFrame(e.socket);
                if (f == null) {
                    throw recvFailure(e.socket, "the rest of a multipart message did not arrive");
                }
                out.add(hex(f.getData()));
            }
        }
        resp.add("frames", out);
        return resp;
    }

    JsonObject join(JsonObject req, boolean on) throws AgentError {
        Entry e = entry(req);
        if (e.type != SocketType.DISH) {
            throw invalid((on ? "join" : "leave") + " is for DISH sockets, not " + e.type);
        }
        String group = text(req, "group");
        if (!(on ? e.socket.join(group) : e.socket.leave(group))) {
            throw new AgentError("failed", (on ? "join " : "leave ") + group + " refused by JeroMQ: "
                + ZError.toString(e.socket.errno()) + " (errno " + e.socket.errno() + ")");
        }
        return new JsonObject();
    }

    JsonObject subscribe(JsonObject req, boolean on) throws AgentError {
        Entry e = entry(req);
        String topic = optionalText(req, "topic");
        byte[] t = hex(topic == null ? "" : topic);
        boolean ok = on ? e.socket.subscribe(t) : e.socket.unsubscribe(t);
        if (!ok) {
            throw new AgentError("failed", (on ? "subscribe" : "unsubscribe") + " refused by JeroMQ (errno "
                + e.socket.errno() + ")");
        }
        return new JsonObject();
    }

    JsonObject events(JsonObject req) throws AgentError {
        Entry e = entry(req);
        if ("handshake_succeeded".equals(optionalText(req, "until"))) {
            // zmq/io/StreamEngine.java: the only handshake event on success is HANDSHAKE_PROTOCOL,
            // sent by handshake() once the greeting is done, before the security handshake;
            // mechanismReady() never calls SocketBase.eventHandshakeSucceeded.
            throw unsupported("JeroMQ 0.6.0 never reports a completed handshake: it declares"
                + " EVENT_HANDSHAKE_SUCCEEDED but zmq.io.StreamEngine.mechanismReady never emits it (its"
                + " HANDSHAKE_PROTOCOL event comes after the greeting, before the security handshake)");
        }
        JsonObject resp = new JsonObject();
        resp.add("events", e.log.take(optionalText(req, "until"), millis(req, "timeout", 2.0)));
        return resp;
    }

    JsonObject close(JsonObject req) throws AgentError {
        Entry e = entry(req);
        sockets.remove(text(req, "socket"));
        e.socket.setLinger(0);
        e.socket.close();
        return new JsonObject();
    }

    // ---- ZAP (RFC 27) ------------------------------------------------------

    JsonObject zap(JsonObject req) throws AgentError {
        Map<String, String> users = new HashMap<>();
        JsonElement u = req.get("users");
        if (u != null && u.isJsonObject()) {
            for (Map.Entry<String, JsonElement> kv : u.getAsJsonObject().entrySet()) {
                users.put(kv.getKey(), kv.getValue().getAsString());
            }
        }
        Set<String> keys = null;
        JsonElement k = req.get("curve_keys");
        if (k != null && !k.isJsonNull()) {
            keys = new HashSet<>();
            for (JsonElement key : k.getAsJsonArray()) {
                String z85 = key.getAsString();
                if (z85.length() != 40) {
                    throw invalid("not a Z85 public key: " + z85);
                }
                // Re-encode so the comparison is on the key, not on its spelling.
                keys.add(ZMQ.Curve.z85Encode(ZMQ.Curve.z85Decode(z85)));
            }
        }
        JsonElement d = req.get("deny_status");
        int deny = d == null || d.isJsonNull() ? 400 : d.getAsInt();
        if (deny != 300 && deny != 400 && deny != 500) {
            throw invalid("deny_status must be 300, 400 or 500, not " + deny);
        }
        zapPolicy = new ZapPolicy(users, keys, deny);
        if (zapThread == null) {
            // Bound here, before any socket that needs it asks: JeroMQ's sessions
            // connect to inproc://zeromq.zap.01 at handshake time (zmq.io.SessionBase.zapConnect).
            ZMQ.Socket handler = ctx.socket(SocketType.REP);
            handler.setLinger(0);
            handler.bind("inproc://zeromq.zap.01");
            zapThread = new Thread(() -> serveZap(handler), "zap");
            zapThread.setDaemon(true);
            zapThread.start();
        }
        return new JsonObject();
    }

    /** Answers ZAP requests with the current policy; runs on its own thread with its own socket. */
    void serveZap(ZMQ.Socket handler) {
        while (!Thread.currentThread().isInterrupted()) {
            List<byte[]> request;
            try {
                request = recvFrames(handler);
            } catch (AgentError | ZMQException e) {
                System.err.println("zap: " + e.getMessage());
                return;
            }
            if (request == null) {
                continue;
            }
            if (request.size() < 6) {
                System.err.println("zap: malformed request of " + request.size() + " frames");
                // REP must answer before it can receive again; a short reply is what libzmq rejects too.
                handler.send(new byte[0], 0);
                continue;
            }
            ZapPolicy policy = zapPolicy;
            String mechanism = new String(request.get(5), StandardCharsets.UTF_8);
            boolean allowed;
            String userId = "";
            if ("PLAIN".equals(mechanism) && request.size() == 8) {
                String user = new String(request.get(6), StandardCharsets.UTF_8);
                String password = policy.users.get(user);
                allowed = password != null
                    && Arrays.equals(password.getBytes(StandardCharsets.UTF_8), request.get(7));
                userId = user;
            } else if ("CURVE".equals(mechanism) && request.size() == 7 && request.get(6).length == 32) {
                String key = ZMQ.Curve.z85Encode(request.get(6));
                allowed = policy.curveKeys == null || policy.curveKeys.contains(key);
                userId = key;
            } else {
                allowed = "NULL".equals(mechanism);
            }
            String status = allowed ? "200" : Integer.toString(policy.denyStatus);
            String statusText = allowed ? "OK" : "not on the allow list";
            List<byte[]> reply = Arrays.asList(request.get(0), request.get(1),
                status.getBytes(StandardCharsets.UTF_8), statusText.getBytes(StandardCharsets.UTF_8),
                (allowed ? userId : "").getBytes(StandardCharsets.UTF_8), new byte[0]);
            try {
                sendFrames(handler, reply);
            } catch (AgentError | ZMQException e) {
                System.err.println("zap: reply failed: " + e.getMessage());
            }
        }
    }

    // ---- benchmarks: the hot loops, timed here -----------------------------

    JsonObject benchSend(JsonObject req) throws AgentError {
        Entry e = entry(req);
        int count = count(req);
        byte[] msg = new byte[req.get("size").getAsInt()];
        e.socket.setSendTimeOut(millis(req, "timeout", 60.0));
        long t0 = System.nanoTime();
        for (int i = 0; i < count; i++) {
            if (!e.socket.send(msg, 0)) {
                throw sendFailure(e.socket);
            }
        }
        long elapsed = System.nanoTime() - t0;
        JsonObject out = new JsonObject();
        out.addProperty("elapsed", elapsed / 1e9);
        return out;
    }

    JsonObject benchRecv(JsonObject req) throws AgentError {
        Entry e = entry(req);
        int count = count(req);
        e.socket.setReceiveTimeOut(millis(req, "timeout", 60.0));
        long t0 = 0;
        for (int i = 0; i < count; i++) {
            if (recvFrames(e.socket) == null) {
                throw recvFailure(e.socket, "received " + i + " of " + count + " messages in time");
            }
            if (i == 0) {
                t0 = System.nanoTime();  // timed from the first arrival
            }
        }
        long elapsed = count > 0 ? System.nanoTime() - t0 : 0;
        JsonObject out = new JsonObject();
        out.addProperty("elapsed", elapsed / 1e9);
        out.addProperty("timed", Math.max(0, count - 1));
        out.addProperty("received", count);
        return out;
    }

    JsonObject benchRtt(JsonObject req) throws AgentError {
        Entry e = entry(req);
        int count = count(req);
        byte[] body = new byte[req.get("size").getAsInt()];
        List<byte[]> msg = e.type == SocketType.DEALER ? Arrays.asList(new byte[0], body) : Arrays.asList(body);
        int ms = millis(req, "timeout", 10.0);
        e.socket.setSendTimeOut(ms);
        e.socket.setReceiveTimeOut(ms);
        long[] samples = new long[count];
        for (int i = 0; i < count; i++) {
            long t = System.nanoTime();
            sendFrames(e.socket, msg);
            if (recvFrames(e.socket) == null) {
                throw recvFailure(e.socket, "no reply to round trip " + i + " in time");
            }
            samples[i] = System.nanoTime() - t;
        }
        return latencySummary(samples);
    }

    /** Percentiles by rank and the mean, in microseconds, as the protocol reports round trips. */
    static JsonObject latencySummary(long[] samples) {
        JsonObject out = new JsonObject();
        out.addProperty("count", samples.length);
        if (samples.length == 0) {
            return out;
        }
        long[] s = samples.clone();
        Arrays.sort(s);
        double sum = 0;
        for (long v : s) sum += v;
        for (double p : new double[] {0.50, 0.95, 0.99}) {
            int at = Math.min(s.length - 1, (int) (p * s.length));
            out.addProperty("p" + Math.round(p * 100), s[at] / 1000.0);
        }
        out.addProperty("mean", sum / s.length / 1000.0);
        return out;
    }

    JsonObject benchEcho(JsonObject req) throws AgentError {
        Entry e = entry(req);
        int count = count(req);
        int ms = millis(req, "timeout", 10.0);
        e.socket.setSendTimeOut(ms);
        e.socket.setReceiveTimeOut(ms);
        for (int i = 0; i < count; i++) {
            List<byte[]> frames = recvFrames(e.socket);
            if (frames == null) {
                throw recvFailure(e.socket, "echoed " + i + " of " + count + " messages in time");
            }
            sendFrames(e.socket, frames);
        }
        return new JsonObject();
    }

    // ---- the loop -----------------------------------------------------------

    JsonObject dispatch(String op, JsonObject req) throws AgentError {
        switch (op) {
            case "hello": return hello();
            case "socket": return socket(req);
            case "bind": return bind(req);
            case "connect": return connect(req);
            case "send": return send(req);
            case "send_more": return sendMore(req);
            case "send_until_full": return sendUntilFull(req);
            case "recv": return recv(req);
            case "subscribe": return subscribe(req, true);
            case "unsubscribe": return subscribe(req, false);
            case "join": return join(req, true);
            case "leave": return join(req, false);
            case "zap": return zap(req);
            case "events": return events(req);
            case "close": return close(req);
            case "bench_send": return benchSend(req);
            case "bench_recv": return benchRecv(req);
            case "bench_rtt": return benchRtt(req);
            case "bench_echo": return benchEcho(req);
            case "quit": return new JsonObject();
            default: throw unsupported("op " + op + " is not supported by the JeroMQ agent");
        }
    }

    /**
     * Lets idle sockets take in what their I/O thread queued for them. As in libzmq,
     * a JeroMQ socket attaches new connections only when the application calls into
     * it (zmq.SocketBase.processCommands), so a bound SUB left alone between requests
     * would never send its subscriptions to a PUB that connected meanwhile. Reading
     * ZMQ_EVENTS processes those commands; it runs on this thread, which owns the sockets.
     */
    void poke() {
        for (Entry e : sockets.values()) {
            try {
                e.socket.getEvents();
            } catch (ZMQException | IllegalStateException ignored) {
                // a socket whose context is ending: its next request reports it
            }
        }
    }

    static final String EOF = new String("EOF");  // a unique sentinel, compared by identity

    public static void main(String[] args) throws Exception {
        // stdout carries the protocol alone, but JeroMQ prints there too (zmq.io.mechanism.plain.
        // PlainClientMechanism.processHandshakeCommand: "PLAIN Client I: invalid handshake command"),
        // so the replies keep the real stdout and anything else printed goes to stderr.
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, "UTF-8");
        System.setOut(System.err);
        // stdin is read on a thread of its own so that this one, which owns the
        // sockets, can poke them while no request is pending.
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) lines.add(line);
            } catch (java.io.IOException e) {
                System.err.println("stdin: " + e.getMessage());
            }
            lines.add(EOF);
        }, "stdin");
        reader.setDaemon(true);
        reader.start();

        JeromqAgent6 agent = new JeromqAgent6();
        while (true) {
            // Poke only while a socket is open: idle between cells, the agent sleeps until a
            // request comes instead of waking 100 times a second (a run keeps dozens alive).
            String line = agent.sockets.isEmpty() ? lines.take() : lines.poll(10, TimeUnit.MILLISECONDS);
            if (line == null) {
                agent.poke();
                continue;
            }
            if (line == EOF) break;
            if (line.trim().isEmpty()) continue;
            JsonObject resp;
            JsonElement id = JsonNull.INSTANCE;
            String op = "";
            try {
                JsonObject req = JsonParser.parseString(line).getAsJsonObject();
                id = req.has("id") ? req.get("id") : JsonNull.INSTANCE;
                op = text(req, "op");
                resp = agent.dispatch(op, req);
                resp.addProperty("ok", true);
            } catch (AgentError e) {
                resp = error(e.kind, e.getMessage());
            } catch (ZMQException e) {
                resp = error("failed", "ZMQException: " + e.getMessage() + " (errno " + e.getErrorCode() + ")");
            } catch (com.google.gson.JsonParseException | IllegalStateException | ClassCastException
                     | UnsupportedOperationException | NumberFormatException e) {
                resp = error("invalid", "bad request: " + e);
            } catch (RuntimeException e) {
                resp = error("failed", e.toString());
            }
            resp.add("id", id);
            out.println(resp.toString());
            out.flush();
            if ("quit".equals(op)) break;
        }
        // Every socket was set not to linger; a context term could still wait on
        // the ZAP thread's blocking receive, so leave without one.
        System.exit(0);
    }

    static JsonObject error(String kind, String message) {
        JsonObject err = new JsonObject();
        err.addProperty("kind", kind);
        err.addProperty("message", message == null ? "" : message);
        JsonObject resp = new JsonObject();
        resp.addProperty("ok", false);
        resp.add("error", err);
        return resp;
    }
}
