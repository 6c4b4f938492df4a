/*  Agent for JeroMQ (a Java implementation of ZeroMQ), speaking the harness's
    control protocol: JSON lines on stdin and stdout (docs/agent-protocol.md).

    Built in its image (docker/jeromq-0.3.6/Dockerfile) against Debian's
    libjeromq-java and libgoogle-gson-java:
        javac -cp jeromq.jar:gson.jar JeromqAgent.java

    JeroMQ 0.3.6 is a port of libzmq 3.2: it speaks ZMTP 2.0, with no
    security mechanisms and no heartbeats or handshake events, which the agent
    answers "unsupported" for, so the report shows what this peer cannot do
    rather than failures. Its ipc:// is tcp on loopback at a port hashed from
    the path: the hello says so, and the harness pairs it over ipc only with
    another JeroMQ.
*/

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;

public final class JeromqAgent {

    /** The request could not be carried out for a reason the protocol names. */
    static final class AgentError extends Exception {
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

    static final Map<String, Integer> TYPES = new HashMap<>();

    static {
        TYPES.put("REQ", ZMQ.REQ);
        TYPES.put("REP", ZMQ.REP);
        TYPES.put("DEALER", ZMQ.DEALER);
        TYPES.put("ROUTER", ZMQ.ROUTER);
        TYPES.put("PUB", ZMQ.PUB);
        TYPES.put("SUB", ZMQ.SUB);
        TYPES.put("XPUB", ZMQ.XPUB);
        TYPES.put("XSUB", ZMQ.XSUB);
        TYPES.put("PUSH", ZMQ.PUSH);
        TYPES.put("PULL", ZMQ.PULL);
        TYPES.put("PAIR", ZMQ.PAIR);
    }

    /** One socket of the table, its context, the PAIR end of its monitor and the events read so far. */
    static final class Entry {
        final ZMQ.Context ctx;
        final ZMQ.Socket socket;
        final ZMQ.Socket monitor;
        final List<JsonObject> events = new ArrayList<>();

        Entry(ZMQ.Context ctx, ZMQ.Socket socket, ZMQ.Socket monitor) {
            this.ctx = ctx;
            this.socket = socket;
            this.monitor = monitor;
        }
    }
    final Map<String, Entry> sockets = new HashMap<>();
    int counter = 0;

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

    static long millis(JsonObject req, String key, double defaultSeconds) {
        JsonElement e = req.get(key);
        double s = (e == null || e.isJsonNull()) ? defaultSeconds : e.getAsDouble();
        return Math.max(0L, Math.round(s * 1000));
    }

    Entry entry(JsonObject req) throws AgentError {
        Entry e = sockets.get(text(req, "socket"));
        if (e == null) {
            throw invalid("no socket " + req.get("socket"));
        }
        return e;
    }

    static void tcpOrIpc(String endpoint) throws AgentError {
        if (!endpoint.startsWith("tcp://") && !endpoint.startsWith("ipc://")) {
            throw unsupported("the harness speaks tcp:// and ipc:// only, not " + endpoint);
        }
    }

    static int freePort(String host) throws AgentError {
        try (java.net.ServerSocket probe = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName(host))) {
            return probe.getLocalPort();
        } catch (java.io.IOException ex) {
            throw new AgentError("failed", "no free port on " + host + ": " + ex.getMessage());
        }
    }

    static String jeromqVersion() {
        try (InputStream in = ZMQ.class.getResourceAsStream("/META-INF/maven/org.zeromq/jeromq/pom.properties")) {
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

    void setOption(ZMQ.Socket s, String name, JsonElement v) throws AgentError {
        if (v == null || v.isJsonNull()) {
            return;
        }
        switch (name) {
            case "routing_id": s.setIdentity(hex(v.getAsString())); break;
            case "sndhwm": s.setSndHWM(v.getAsLong()); break;
            case "rcvhwm": s.setRcvHWM(v.getAsLong()); break;
            case "linger": s.setLinger(Math.round(v.getAsDouble() * 1000)); break;
            case "reconnect_ivl": s.setReconnectIVL(Math.round(v.getAsDouble() * 1000)); break;
            case "reconnect_ivl_max": s.setReconnectIVLMax(Math.round(v.getAsDouble() * 1000)); break;
            case "max_msg_size": s.setMaxMsgSize(v.getAsLong()); break;
            case "router_mandatory": s.setRouterMandatory(v.getAsBoolean()); break;
            case "router_handover": s.setRouterHandover(v.getAsBoolean()); break;
            case "xpub_verbose": s.setXpubVerbose(v.getAsBoolean()); break;
            case "immediate": s.setDelayAttachOnConnect(v.getAsBoolean()); break;
            case "send_buffer_size": s.setSendBufferSize(v.getAsLong()); break;
            case "recv_buffer_size": s.setReceiveBufferSize(v.getAsLong()); break;
            default:
                throw unsupported("JeroMQ 0.3.6 has no option " + name + " (ZMTP 2.0: no heartbeats, mechanisms"
                    + " or handshake timeout)");
        }
    }

    // ---- operations -------------------------------------------------------

    JsonObject hello() {
        JsonObject out = new JsonObject();
        out.addProperty("peer", "jeromq");
        out.addProperty("protocol", 1);
        JsonObject versions = new JsonObject();
        versions.addProperty("jeromq", jeromqVersion());
        versions.addProperty("java", System.getProperty("java.version"));
        out.add("versions", versions);
        JsonArray zmtp = new JsonArray();
        zmtp.add("2.0");  // scenarios about ZMTP 3 behaviour do not apply to this peer
        out.add("zmtp", zmtp);
        // zmq.IpcAddress.resolve: ipc:// is tcp on the loopback address, at a port hashed from the
        // path, so only another JeroMQ meets it there (the harness matches ipc cells by this).
        out.addProperty("ipc", "jeromq");
        return out;
    }

    JsonObject socket(JsonObject req) throws AgentError {
        String type = text(req, "type");
        Integer t = TYPES.get(type);
        if (t == null) {
            throw unsupported("no socket type " + type);
        }
        JsonElement mech = req.get("mechanism");
        if (mech != null && !mech.isJsonNull() && !"NULL".equals(mech.getAsString())) {
            throw unsupported("JeroMQ 0.3.6 speaks ZMTP 2.0, which has no security mechanisms ("
                + mech.getAsString() + ")");
        }
        // A context per socket: a JeroMQ 0.3.6 context was seen, now and then under load, to stop
        // making connections for every socket after some earlier one; one per socket keeps
        // whatever goes wrong in one cell out of the next.
        ZMQ.Context ctx = ZMQ.context(1);
        ZMQ.Socket s = ctx.socket(t);
        try {
            JsonElement opts = req.get("options");
            if (opts != null && opts.isJsonObject()) {
                for (Map.Entry<String, JsonElement> o : opts.getAsJsonObject().entrySet()) {
                    setOption(s, o.getKey(), o.getValue());
                }
            }
        } catch (AgentError e) {
            s.setLinger(0);
            s.close();
            terminate(ctx);
            throw e;
        }
        String name = "s" + (++counter);
        String monitorAddress = "inproc://monitor-" + name;
        s.monitor(monitorAddress, ZMQ.EVENT_ALL);
        ZMQ.Socket mon = ctx.socket(ZMQ.PAIR);
        mon.connect(monitorAddress);
        sockets.put(name, new Entry(ctx, s, mon));
        JsonObject out = new JsonObject();
        out.addProperty("socket", name);
        return out;
    }

    JsonObject bind(JsonObject req) throws AgentError {
        Entry e = entry(req);
        String endpoint = text(req, "endpoint");
        tcpOrIpc(endpoint);
        String bound;
        if (endpoint.startsWith("tcp://") && endpoint.endsWith(":0")) {
            // JeroMQ 0.3.6 cannot say which port ":0" got, and bindToRandomPort walks a range from
            // its start: ask the kernel for a free ephemeral port, as libzmq's ":0" does.
            String host = endpoint.substring(0, endpoint.length() - 2);
            bound = host + ":" + freePort(host.substring("tcp://".length()));
            e.socket.bind(bound);
        } else {
            e.socket.bind(endpoint);
            bound = endpoint;
        }
        JsonObject out = new JsonObject();
        out.addProperty("endpoint", bound);
        return out;
    }

    JsonObject connect(JsonObject req) throws AgentError {
        Entry e = entry(req);
        String endpoint = text(req, "endpoint");
        tcpOrIpc(endpoint);
        e.socket.connect(endpoint);
        return new JsonObject();
    }

    JsonObject send(JsonObject req) throws AgentError {
        Entry e = entry(req);
        JsonArray frames = req.getAsJsonArray("frames");
        if (frames == null || frames.size() == 0) {
            throw invalid("send needs frames");
        }
        e.socket.setSendTimeOut((int) millis(req, "timeout", 5.0));
        for (int i = 0; i < frames.size(); i++) {
            boolean more = i < frames.size() - 1;
            if (!e.socket.send(hex(frames.get(i).getAsString()), more ? ZMQ.SNDMORE : 0)) {
                throw new AgentError("timeout", "send did not complete in time (no peer to take it)");
            }
        }
        return new JsonObject();
    }

    JsonObject recv(JsonObject req) throws AgentError {
        Entry e = entry(req);
        e.socket.setReceiveTimeOut((int) millis(req, "timeout", 2.0));
        byte[] first = e.socket.recv(0);
        if (first == null) {
            throw new AgentError("timeout", "nothing arrived in time");
        }
        JsonArray frames = new JsonArray();
        frames.add(hex(first));
        while (e.socket.hasReceiveMore()) {
            frames.add(hex(e.socket.recv(0)));
        }
        JsonObject out = new JsonObject();
        out.add("frames", frames);
        return out;
    }

    JsonObject subscribe(JsonObject req, boolean on) throws AgentError {
        Entry e = entry(req);
        JsonElement topic = req.get("topic");
        byte[] t = hex(topic == null || topic.isJsonNull() ? "" : topic.getAsString());
        if (on) {
            e.socket.subscribe(t);
        } else {
            e.socket.unsubscribe(t);
        }
        return new JsonObject();
    }

    static String eventName(int event) {
        if (event == ZMQ.EVENT_LISTENING) return "listening";
        if (event == ZMQ.EVENT_BIND_FAILED) return "bind_failed";
        if (event == ZMQ.EVENT_ACCEPTED) return "accepted";
        if (event == ZMQ.EVENT_CONNECTED) return "connected";
        if (event == ZMQ.EVENT_CONNECT_RETRIED) return "connect_retried";
        if (event == ZMQ.EVENT_DISCONNECTED) return "disconnected";
        if (event == ZMQ.EVENT_MONITOR_STOPPED) return "closed";
        return null;  // CLOSED (one descriptor), CONNECT_DELAYED, *_FAILED: no counterpart
    }

    void drain(Entry e) {
        ZMQ.Event ev;
        while ((ev = ZMQ.Event.recv(e.monitor, ZMQ.DONTWAIT)) != null) {
            String name = eventName(ev.getEvent());
            if (name != null) {
                JsonObject o = new JsonObject();
                o.addProperty("event", name);
                o.addProperty("endpoint", ev.getAddress());
                e.events.add(o);
            }
        }
    }

    JsonObject events(JsonObject req) throws AgentError {
        Entry e = entry(req);
        JsonElement u = req.get("until");
        String until = (u == null || u.isJsonNull()) ? null : u.getAsString();
        if ("handshake_succeeded".equals(until) || "handshake_failed".equals(until)) {
            throw unsupported("JeroMQ 0.3.6's socket monitor has no handshake events");
        }
        long deadline = System.currentTimeMillis() + millis(req, "timeout", 2.0);
        JsonArray out = new JsonArray();
        while (true) {
            drain(e);
            if (until == null) {
                for (JsonObject o : e.events) out.add(o);
                e.events.clear();
                break;
            }
            int at = -1;
            for (int i = 0; i < e.events.size(); i++) {
                if (until.equals(e.events.get(i).get("event").getAsString())) {
                    at = i;
                    break;
                }
            }
            if (at >= 0) {
                for (int i = 0; i <= at; i++) out.add(e.events.remove(0));
                break;
            }
            if (System.currentTimeMillis() >= deadline) {
                StringBuilder seen = new StringBuilder();
                for (JsonObject o : e.events) seen.append(seen.length() > 0 ? ", " : "").append(o.get("event").getAsString());
                throw new AgentError("timeout", "no " + until + " event in time (saw "
                    + (seen.length() > 0 ? seen : "no events") + ")");
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }
        JsonObject resp = new JsonObject();
        resp.add("events", out);
        return resp;
    }

    JsonObject close(JsonObject req) throws AgentError {
        Entry e = entry(req);
        sockets.remove(text(req, "socket"));
        // Stop the monitor first: a JeroMQ 0.3.6 socket closed while monitored leaves its
        // context unable to make new connections.
        e.socket.monitor(null, 0);
        e.monitor.setLinger(0);
        e.monitor.close();
        e.socket.setLinger(0);
        e.socket.close();
        terminate(e.ctx);
        return new JsonObject();
    }

    /** Ends a context off the request loop: with linger 0 it is quick, and if it is not, nobody waits. */
    static void terminate(ZMQ.Context ctx) {
        Thread t = new Thread(ctx::term, "term");
        t.setDaemon(true);
        t.start();
    }

    JsonObject dispatch(String op, JsonObject req) throws AgentError {
        switch (op) {
            case "hello": return hello();
            case "socket": return socket(req);
            case "bind": return bind(req);
            case "connect": return connect(req);
            case "send": return send(req);
            case "recv": return recv(req);
            case "subscribe": return subscribe(req, true);
            case "unsubscribe": return subscribe(req, false);
            case "events": return events(req);
            case "close": return close(req);
            case "quit": return new JsonObject();
            case "zap": throw unsupported("JeroMQ 0.3.6 has no ZAP (ZMTP 2.0)");
            default: throw unsupported("op " + op + " is not supported by the JeroMQ agent");
        }
    }

    // ---- the loop -----------------------------------------------------------

    /**
     * Lets idle sockets take in what their I/O thread queued for them. JeroMQ 0.3.6, like the
     * libzmq 3.2 it ports, attaches a new connection only when the application calls into the
     * socket (zmq.SocketBase.processCommands): a bound SUB left alone between requests sends its
     * subscriptions to a PUB that connected meanwhile only at the next call. Reading ZMQ_EVENTS
     * processes those commands; it runs on this thread, which owns the sockets.
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
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        // stdin is read on a thread of its own so that this one, which owns the sockets, can poke
        // them while no request is pending.
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String l;
                while ((l = in.readLine()) != null) lines.add(l);
            } catch (java.io.IOException e) {
                System.err.println("stdin: " + e.getMessage());
            }
            lines.add(EOF);
        }, "stdin");
        reader.setDaemon(true);
        reader.start();
        JeromqAgent agent = new JeromqAgent();
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
            } catch (com.google.gson.JsonParseException | IllegalStateException | ClassCastException e) {
                resp = error("invalid", "bad request: " + e.getMessage());
            } catch (RuntimeException e) {
                resp = error("failed", e.toString());
            }
            resp.add("id", id);
            out.println(resp.toString());
            out.flush();
            if ("quit".equals(op)) break;
        }
        // Sockets were closed without linger; do not wait on ctx.term for anything else.
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
