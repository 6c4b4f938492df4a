/*  Agent for czmq (and the libzmq it links), speaking the harness's control
    protocol: JSON lines on stdin and stdout (docs/agent-protocol.md).

    Built by the harness with the system compiler:
        cc -O2 -o czmq_agent czmq_agent.c -lczmq -lzmq -ljansson

    Sockets are czmq zsock_t objects; options the zsock API takes as C
    strings (routing ids, subscriptions) go through zmq_setsockopt on the
    resolved handle, so binary values survive.
*/

#include <czmq.h>
#include <jansson.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 4096

static zsock_t *sockets[MAX_SOCKETS];
static zsock_t *monitors[MAX_SOCKETS];   //  PAIR ends of each socket's libzmq monitor
static json_t *event_logs[MAX_SOCKETS];  //  events read so far and not yet reported
static int socket_count = 0;

static void reply (json_t *obj)
{
    char *text = json_dumps (obj, JSON_COMPACT);
    fputs (text, stdout);
    fputc ('\n', stdout);
    fflush (stdout);
    free (text);
    json_decref (obj);
}

static void ok (json_int_t id, json_t *fields)
{
    json_t *obj = fields ? fields : json_object ();
    json_object_set_new (obj, "id", json_integer (id));
    json_object_set_new (obj, "ok", json_true ());
    reply (obj);
}

static void fail (json_int_t id, const char *kind, const char *message)
{
    json_t *err = json_pack ("{s:s, s:s}", "kind", kind, "message", message);
    reply (json_pack ("{s:I, s:b, s:o}", "id", id, "ok", 0, "error", err));
}

static int hex_value (char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*  Decodes hex into a new buffer; returns its length, or -1 on bad hex.  */
static long unhex (const char *text, byte **out)
{
    size_t n = strlen (text);
    if (n % 2) return -1;
    *out = (byte *) malloc (n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value (text [2 * i]), lo = hex_value (text [2 * i + 1]);
        if (hi < 0 || lo < 0) { free (*out); return -1; }
        (*out) [i] = (byte) (hi * 16 + lo);
    }
    return (long) (n / 2);
}

static char *tohex (const byte *data, size_t size)
{
    static const char digits [] = "0123456789abcdef";
    char *out = (char *) malloc (size * 2 + 1);
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [size * 2] = 0;
    return out;
}

static int socket_type (const char *name)
{
    static const struct { const char *name; int type; } types [] = {
        {"PAIR", ZMQ_PAIR}, {"PUB", ZMQ_PUB}, {"SUB", ZMQ_SUB}, {"REQ", ZMQ_REQ}, {"REP", ZMQ_REP},
        {"DEALER", ZMQ_DEALER}, {"ROUTER", ZMQ_ROUTER}, {"PULL", ZMQ_PULL}, {"PUSH", ZMQ_PUSH},
        {"XPUB", ZMQ_XPUB}, {"XSUB", ZMQ_XSUB}, {NULL, 0}
    };
    for (int i = 0; types [i].name; i++)
        if (streq (types [i].name, name))
            return types [i].type;
    return -1;
}

static zsock_t *lookup (json_t *req)
{
    const char *name = json_string_value (json_object_get (req, "socket"));
    if (!name || name [0] != 's') return NULL;
    int index = atoi (name + 1);
    if (index < 1 || index > socket_count) return NULL;
    return sockets [index - 1];
}

/*  Applies one option; returns NULL on success or a message for "unsupported".  */
static const char *set_option (zsock_t *sock, const char *key, json_t *value, char *why, size_t whylen)
{
    void *handle = zsock_resolve (sock);
    static const struct { const char *name; int option; int millis; } ints [] = {
        {"sndhwm", ZMQ_SNDHWM, 0}, {"rcvhwm", ZMQ_RCVHWM, 0},
        {"handshake_timeout", ZMQ_HANDSHAKE_IVL, 1}, {"heartbeat_ivl", ZMQ_HEARTBEAT_IVL, 1},
        {"heartbeat_ttl", ZMQ_HEARTBEAT_TTL, 1}, {"heartbeat_timeout", ZMQ_HEARTBEAT_TIMEOUT, 1},
        {"reconnect_ivl", ZMQ_RECONNECT_IVL, 1}, {"reconnect_ivl_max", ZMQ_RECONNECT_IVL_MAX, 1},
        {"linger", ZMQ_LINGER, 1}, {"connect_timeout", ZMQ_CONNECT_TIMEOUT, 1},
        {"router_mandatory", ZMQ_ROUTER_MANDATORY, 0}, {"router_handover", ZMQ_ROUTER_HANDOVER, 0},
        {"req_relaxed", ZMQ_REQ_RELAXED, 0}, {"req_correlate", ZMQ_REQ_CORRELATE, 0},
        {"xpub_verbose", ZMQ_XPUB_VERBOSE, 0}, {"immediate", ZMQ_IMMEDIATE, 0},
        {"tcp_keepalive", ZMQ_TCP_KEEPALIVE, 0}, {NULL, 0, 0}
    };
    for (int i = 0; ints [i].name; i++) {
        if (!streq (ints [i].name, key)) continue;
        int v;
        if (json_is_boolean (value)) v = json_is_true (value);
        else if (ints [i].millis) v = (int) (json_number_value (value) * 1000.0 + 0.5);
        else v = (int) json_integer_value (value);
        if (zmq_setsockopt (handle, ints [i].option, &v, sizeof v)) {
            snprintf (why, whylen, "option %s: %s", key, zmq_strerror (errno));
            return why;
        }
        return NULL;
    }
    if (streq (key, "max_msg_size")) {
        int64_t v = json_is_null (value) ? -1 : (int64_t) json_integer_value (value);
        zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &v, sizeof v);
        return NULL;
    }
    if (streq (key, "routing_id")) {
        byte *data;
        long n = unhex (json_string_value (value) ? json_string_value (value) : "", &data);
        if (n < 0) { snprintf (why, whylen, "routing_id is not hex"); return why; }
        zmq_setsockopt (handle, ZMQ_ROUTING_ID, data, (size_t) n);
        free (data);
        return NULL;
    }
    //  Security options: zsock's setters take C strings (Z85 keys, names)
    const char *text = json_string_value (value);
    if (streq (key, "plain_server"))   { zsock_set_plain_server (sock, json_is_true (value)); return NULL; }
    if (streq (key, "curve_server"))   { zsock_set_curve_server (sock, json_is_true (value)); return NULL; }
    if (text && streq (key, "plain_username"))  { zsock_set_plain_username (sock, text); return NULL; }
    if (text && streq (key, "plain_password"))  { zsock_set_plain_password (sock, text); return NULL; }
    if (text && streq (key, "curve_secretkey")) { zsock_set_curve_secretkey (sock, text); return NULL; }
    if (text && streq (key, "curve_publickey")) { zsock_set_curve_publickey (sock, text); return NULL; }
    if (text && streq (key, "curve_serverkey")) { zsock_set_curve_serverkey (sock, text); return NULL; }
    if (text && streq (key, "zap_domain"))      { zsock_set_zap_domain (sock, text); return NULL; }
    snprintf (why, whylen, "option %s has no czmq equivalent in this agent", key);
    return why;
}

//  The ZAP handler (RFC 27) is our own actor on inproc://zeromq.zap.01 rather
//  than czmq's zauth, which can refuse only with status 400: scenarios ask
//  for 300 and 500 too. The policy (the `zap` request itself, as JSON) is
//  handed to the actor over its pipe, so only the actor's thread reads it.
static zactor_t *zap_handler = NULL;

static int zap_allows (json_t *policy, const char *mechanism, zmsg_t *request, char **user_id)
{
    *user_id = strdup ("");
    if (streq (mechanism, "NULL"))
        return 1;
    if (streq (mechanism, "PLAIN") && zmsg_size (request) == 2) {
        char *user = zframe_strdup (zmsg_first (request));
        zframe_t *password = zmsg_next (request);
        const char *wanted = json_string_value (json_object_get (json_object_get (policy, "users"), user));
        int allowed = wanted && strlen (wanted) == zframe_size (password)
                      && memcmp (wanted, zframe_data (password), zframe_size (password)) == 0;
        free (*user_id);
        *user_id = user;
        return allowed;
    }
    if (streq (mechanism, "CURVE") && zmsg_size (request) == 1 && zframe_size (zmsg_first (request)) == 32) {
        char text [41];
        zmq_z85_encode (text, zframe_data (zmsg_first (request)), 32);
        free (*user_id);
        *user_id = strdup (text);
        json_t *keys = json_object_get (policy, "curve_keys");
        if (!json_is_array (keys))
            return 1;  //  null: any key
        size_t i;
        json_t *key;
        json_array_foreach (keys, i, key)
            if (json_string_value (key) && streq (json_string_value (key), text))
                return 1;
    }
    return 0;
}

//  `args` is the ROUTER socket, bound by the main thread so that a failed bind
//  is reported to the harness; from here on only this thread uses it. A
//  ROUTER rather than a REP, so that the server's address delimiter reaches
//  us as the server sent it. Each request is kept, frames as hex, until the
//  main thread asks for them ("REQUESTS" on the pipe, for `zap_requests`).
static void zap_actor (zsock_t *pipe, void *args)
{
    zsock_t *handler = (zsock_t *) args;
    json_t *policy = json_object ();
    json_t *recorded = json_array ();
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    while (1) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *text = zstr_recv (pipe);
            if (!text || streq (text, "$TERM")) { zstr_free (&text); break; }
            if (streq (text, "REQUESTS")) {
                zstr_free (&text);
                char *dump = json_dumps (recorded, JSON_COMPACT);
                zstr_send (pipe, dump);
                free (dump);
                json_array_clear (recorded);
                continue;
            }
            json_array_clear (recorded);  //  a new `zap` starts a new record
            json_t *next = json_loads (text, 0, NULL);
            zstr_free (&text);
            if (next) { json_decref (policy); policy = next; }
            zsock_signal (pipe, next ? 0 : 1);
        }
        else if (which == handler) {
            //  routing id, delimiter, then version, request id, domain, address,
            //  identity, mechanism, credentials...
            zmsg_t *request = zmsg_recv (handler);
            if (!request) break;
            json_t *frames = json_array ();
            for (zframe_t *f = zmsg_first (request); f; f = zmsg_next (request)) {
                char *hex = tohex (zframe_data (f), zframe_size (f));
                json_array_append_new (frames, json_string (hex));
                free (hex);
            }
            json_array_append_new (recorded, frames);
            zframe_t *routing_id = zmsg_pop (request);
            //  A request without its delimiter is recorded for the harness to
            //  judge, and answered as well as can be.
            if (zmsg_first (request) && zframe_size (zmsg_first (request)) == 0) {
                zframe_t *delimiter = zmsg_pop (request);
                zframe_destroy (&delimiter);
            }
            if (zmsg_size (request) < 6) {
                zframe_destroy (&routing_id);
                zmsg_destroy (&request);
                continue;
            }
            zframe_t *version = zmsg_pop (request);
            zframe_t *request_id = zmsg_pop (request);
            for (int i = 0; i < 3; i++) {
                zframe_t *skip = zmsg_pop (request);  //  domain, address, identity
                zframe_destroy (&skip);
            }
            char *mechanism = zmsg_popstr (request);
            char *user_id;
            int allowed = zap_allows (policy, mechanism, request, &user_id);
            json_int_t deny = json_integer_value (json_object_get (policy, "deny_status"));
            char status [8];
            snprintf (status, sizeof status, "%d", allowed ? 200 : (int) (deny ? deny : 400));
            zmsg_t *reply = zmsg_new ();
            zmsg_append (reply, &routing_id);
            zmsg_addmem (reply, NULL, 0);  //  the delimiter
            zmsg_append (reply, &version);
            zmsg_append (reply, &request_id);
            zmsg_addstr (reply, status);
            zmsg_addstr (reply, allowed ? "OK" : "not on the allow list");
            zmsg_addstr (reply, allowed ? user_id : "");
            zmsg_addmem (reply, NULL, 0);  //  no metadata
            zmsg_send (&reply, handler);
            free (user_id);
            zstr_free (&mechanism);
            zmsg_destroy (&request);
        }
        else
            break;  //  interrupted
    }
    zpoller_destroy (&poller);
    json_decref (policy);
    json_decref (recorded);
    zsock_destroy (&handler);
}

//  Allows the PLAIN users and CURVE keys of the request (curve_keys null: any
//  key), NULL peers too, and refuses everyone else with deny_status.
static void op_zap (json_int_t id, json_t *req)
{
    json_t *deny = json_object_get (req, "deny_status");
    if (deny && !json_is_null (deny)) {
        json_int_t status = json_integer_value (deny);
        if (status != 300 && status != 400 && status != 500) {
            fail (id, "invalid", "deny_status must be 300, 400 or 500");
            return;
        }
    }
    if (!zap_handler) {
        zsock_t *handler = zsock_new (ZMQ_ROUTER);
        zsock_set_linger (handler, 0);
        if (zsock_bind (handler, "inproc://zeromq.zap.01") < 0) {
            char msg [200];
            snprintf (msg, sizeof msg, "cannot bind the ZAP handler on inproc://zeromq.zap.01: %s", zmq_strerror (errno));
            zsock_destroy (&handler);
            fail (id, "failed", msg);
            return;
        }
        zap_handler = zactor_new (zap_actor, handler);
    }
    char *policy = json_dumps (req, JSON_COMPACT);
    zstr_send (zap_handler, policy);
    free (policy);
    if (zsock_wait (zap_handler)) {
        fail (id, "failed", "the ZAP handler did not take the policy");
        return;
    }
    ok (id, NULL);
}

//  The ZAP requests the handler got since the last call, each as its ROUTER
//  received it: the routing id it added, then the server's frames.
static void op_zap_requests (json_int_t id)
{
    if (!zap_handler) {
        fail (id, "invalid", "no ZAP handler is installed: op zap first");
        return;
    }
    zstr_send (zap_handler, "REQUESTS");
    char *text = zstr_recv (zap_handler);
    json_t *requests = text ? json_loads (text, 0, NULL) : NULL;
    zstr_free (&text);
    if (!requests) {
        fail (id, "failed", "the ZAP handler did not hand over its requests");
        return;
    }
    ok (id, json_pack ("{s:s, s:o}", "handler", "ROUTER", "requests", requests));
}

//  Socket events come from libzmq's own monitor (zmq_socket_monitor) on the
//  socket zsock wraps, read through a zsock PAIR; they are translated to the
//  control protocol's names. EVENT_CLOSED (one descriptor closed) and
//  CONNECT_DELAYED have no counterpart and are dropped.
static const char *event_name (int event, const char **failure)
{
    *failure = NULL;
    switch (event) {
        case ZMQ_EVENT_LISTENING: return "listening";
        case ZMQ_EVENT_BIND_FAILED: return "bind_failed";
        case ZMQ_EVENT_ACCEPTED: return "accepted";
        case ZMQ_EVENT_CONNECTED: return "connected";
        case ZMQ_EVENT_CONNECT_RETRIED: return "connect_retried";
        case ZMQ_EVENT_DISCONNECTED: return "disconnected";
        case ZMQ_EVENT_MONITOR_STOPPED: return "closed";
#ifdef ZMQ_EVENT_HANDSHAKE_SUCCEEDED
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return "handshake_succeeded";
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return "handshake_failed";
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: *failure = "protocol"; return "handshake_failed";
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: *failure = "auth"; return "handshake_failed";
#endif
        default: return NULL;
    }
}

static void read_events (int index)
{
    zsock_t *mon = monitors [index];
    while (mon && (zsock_events (mon) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv (mon);
        if (!msg) break;
        zframe_t *head = zmsg_first (msg);
        zframe_t *addr = zmsg_next (msg);
        if (head && zframe_size (head) == 6) {
            const byte *d = zframe_data (head);
            uint16_t event;
            uint32_t value;
            memcpy (&event, d, 2);
            memcpy (&value, d + 2, 4);
            const char *failure;
            const char *name = event_name (event, &failure);
            if (name) {
                char *endpoint = addr ? zframe_strdup (addr) : strdup ("");
                json_t *ev = json_pack ("{s:s, s:s}", "event", name, "endpoint", endpoint);
                free (endpoint);
                if (failure)
                    json_object_set_new (ev, "failure", json_string (failure));
                if (streq (name, "handshake_failed")) {
                    char reason [64];
                    snprintf (reason, sizeof reason, "libzmq code %u", value);
                    json_object_set_new (ev, "reason", json_string (reason));
                }
                json_array_append_new (event_logs [index], ev);
            }
        }
        zmsg_destroy (&msg);
    }
}

//  Stop the monitor before closing the socket: closing a monitored socket
//  with its monitor still attached stalls libzmq's I/O thread for later
//  connections in this process.
static void close_socket (int index)
{
    if (sockets [index] && monitors [index])
        zmq_socket_monitor (zsock_resolve (sockets [index]), NULL, 0);
    zsock_destroy (&monitors [index]);
    zsock_destroy (&sockets [index]);
}

//  Everything queued, or up to and including the first `until` event,
//  waiting up to `timeout` seconds for it; on timeout the queue stays.
static void op_events (json_int_t id, json_t *req, int index)
{
    const char *until = json_string_value (json_object_get (req, "until"));
    json_t *timeout = json_object_get (req, "timeout");
    int64_t deadline = zclock_mono () + (int64_t) ((timeout ? json_number_value (timeout) : 2.0) * 1000);
    json_t *log = event_logs [index];
    while (1) {
        read_events (index);
        size_t upto = json_array_size (log);
        if (until) {
            upto = 0;
            for (size_t i = 0; i < json_array_size (log); i++)
                if (streq (json_string_value (json_object_get (json_array_get (log, i), "event")), until)) {
                    upto = i + 1;
                    break;
                }
        }
        if (!until || upto) {
            json_t *out = json_array ();
            for (size_t i = 0; i < upto; i++)
                json_array_append (out, json_array_get (log, i));
            for (size_t i = 0; i < upto; i++)
                json_array_remove (log, 0);
            ok (id, json_pack ("{s:o}", "events", out));
            return;
        }
        if (zclock_mono () >= deadline) {
            //  Name what did come, as the other agents do: a deviation's signature tells
            //  "the handshake failed" from "nothing happened" by it.
            char seen [400] = "";
            size_t used = 0;
            for (size_t i = 0; i < json_array_size (log) && used < sizeof seen - 1; i++)
                used += snprintf (seen + used, sizeof seen - used, "%s%s", i ? ", " : "",
                                  json_string_value (json_object_get (json_array_get (log, i), "event")));
            char msg [512];
            snprintf (msg, sizeof msg, "no %s event within %gs (saw %s)", until,
                      timeout ? json_number_value (timeout) : 2.0, used ? seen : "no events");
            fail (id, "timeout", msg);
            return;
        }
        if (!monitors [index]) {
            zclock_sleep (10);
            continue;
        }
        zmq_pollitem_t item = {zsock_resolve (monitors [index]), 0, ZMQ_POLLIN, 0};
        zmq_poll (&item, 1, 10);
        for (int i = 0; i < socket_count; i++)
            if (sockets [i])
                zsock_events (sockets [i]);  //  as the main loop does: let libzmq attach pipes
    }
}

static void op_socket (json_int_t id, json_t *req)
{
    const char *type = json_string_value (json_object_get (req, "type"));
    const char *mechanism = json_string_value (json_object_get (req, "mechanism"));
    if (mechanism && !streq (mechanism, "NULL") && !streq (mechanism, "PLAIN") && !streq (mechanism, "CURVE")) {
        fail (id, "unsupported", "unknown mechanism");
        return;
    }
    int t = type ? socket_type (type) : -1;
    if (t < 0) { fail (id, "unsupported", "unknown socket type"); return; }
    if (socket_count == MAX_SOCKETS) { fail (id, "failed", "too many sockets"); return; }
    zsock_t *sock = zsock_new (t);
    if (!sock) { fail (id, "failed", zmq_strerror (errno)); return; }
    zsock_set_linger (sock, 0);
    json_t *options = json_object_get (req, "options");
    const char *key;
    json_t *value;
    char why [256];
    json_object_foreach (options, key, value) {
        if (set_option (sock, key, value, why, sizeof why)) {
            zsock_destroy (&sock);
            fail (id, "unsupported", why);
            return;
        }
    }
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://monitor-s%d", socket_count + 1);
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, ZMQ_EVENT_ALL) == 0)
        monitors [socket_count] = zsock_new_pair (endpoint);
    event_logs [socket_count] = json_array ();
    sockets [socket_count++] = sock;
    char name [32];
    snprintf (name, sizeof name, "s%d", socket_count);
    ok (id, json_pack ("{s:s}", "socket", name));
}

static void op_send (json_int_t id, json_t *req, zsock_t *sock)
{
    json_t *frames = json_object_get (req, "frames");
    json_t *timeout = json_object_get (req, "timeout");
    if (!json_is_array (frames) || json_array_size (frames) == 0) { fail (id, "invalid", "frames must be a non-empty list"); return; }
    zmsg_t *msg = zmsg_new ();
    size_t i;
    json_t *frame;
    json_array_foreach (frames, i, frame) {
        byte *data;
        long n = unhex (json_string_value (frame) ? json_string_value (frame) : "?", &data);
        if (n < 0) { zmsg_destroy (&msg); fail (id, "invalid", "frame is not hex"); return; }
        zmsg_addmem (msg, data, (size_t) n);
        free (data);
    }
    zsock_set_sndtimeo (sock, timeout ? (int) (json_number_value (timeout) * 1000) : 5000);
    if (zmsg_send (&msg, sock)) {
        int err = errno;
        zmsg_destroy (&msg);
        fail (id, err == EAGAIN ? "timeout" : "failed", zmq_strerror (err));
        return;
    }
    ok (id, NULL);
}

/*  The first frames of a message, each sent with ZFRAME_MORE (the last too): libzmq holds
    them until a later send brings the final frame.  */
static void op_send_more (json_int_t id, json_t *req, zsock_t *sock)
{
    json_t *frames = json_object_get (req, "frames");
    json_t *timeout = json_object_get (req, "timeout");
    if (!json_is_array (frames) || json_array_size (frames) == 0) { fail (id, "invalid", "frames must be a non-empty list"); return; }
    zsock_set_sndtimeo (sock, timeout ? (int) (json_number_value (timeout) * 1000) : 5000);
    size_t i;
    json_t *frame;
    json_array_foreach (frames, i, frame) {
        byte *data;
        long n = unhex (json_string_value (frame) ? json_string_value (frame) : "?", &data);
        if (n < 0) { fail (id, "invalid", "frame is not hex"); return; }
        zframe_t *part = zframe_new (data, (size_t) n);
        free (data);
        if (zframe_send (&part, sock, ZFRAME_MORE)) {
            int err = errno;
            zframe_destroy (&part);
            fail (id, err == EAGAIN ? "timeout" : "failed", zmq_strerror (err));
            return;
        }
    }
    ok (id, NULL);
}

/*  Message n is `frames` with "n " before the last frame's octets, sent part by part with
    ZMQ_DONTWAIT on the libzmq handle (czmq's zmsg_send has no flags), as the libzmq agent
    does. libzmq decides "would wait" on a message's first part only: once that went, the
    rest of the message goes to the same pipe, so EAGAIN later on is an error, not "full".  */
static void op_send_until_full (json_int_t id, json_t *req, zsock_t *sock)
{
    json_t *frames = json_object_get (req, "frames");
    json_t *max_field = json_object_get (req, "max");
    if (!json_is_array (frames) || json_array_size (frames) == 0) { fail (id, "invalid", "frames must be a non-empty list"); return; }
    if (!json_is_integer (max_field) || json_integer_value (max_field) < 1) { fail (id, "invalid", "max must be a positive integer"); return; }
    if (json_object_get (req, "group") || json_object_get (req, "routing_id")) {
        //  only RADIO and SERVER sockets take them, and this agent makes neither
        fail (id, "invalid", "group and routing_id are for RADIO and SERVER sockets");
        return;
    }
    size_t count = json_array_size (frames);
    byte **parts = (byte **) zmalloc (sizeof (byte *) * count);
    size_t *sizes = (size_t *) zmalloc (sizeof (size_t) * count);
    for (size_t i = 0; i < count; i++) {
        const char *text = json_string_value (json_array_get (frames, i));
        long n = unhex (text ? text : "?", &parts [i]);
        if (n < 0) {
            for (size_t j = 0; j < i; j++) free (parts [j]);
            free (parts);
            free (sizes);
            fail (id, "invalid", "frame is not hex");
            return;
        }
        sizes [i] = (size_t) n;
    }
    void *handle = zsock_resolve (sock);
    json_int_t max = json_integer_value (max_field);
    json_int_t sent = 0;
    int full = 0, err = 0;
    byte *last = (byte *) malloc (sizes [count - 1] + 32);
    for (; sent < max; sent++) {
        int prefix = snprintf ((char *) last, 32, "%" JSON_INTEGER_FORMAT " ", sent);
        memcpy (last + prefix, parts [count - 1], sizes [count - 1]);
        for (size_t i = 0; i < count; i++) {
            int more = i + 1 < count;
            const byte *data = more ? parts [i] : last;
            size_t size = more ? sizes [i] : sizes [i] + (size_t) prefix;
            if (zmq_send (handle, data, size, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0) {
                if (errno == EAGAIN && i == 0) full = 1;
                else err = errno;
                break;
            }
        }
        if (full || err) break;
    }
    for (size_t i = 0; i < count; i++) free (parts [i]);
    free (parts);
    free (sizes);
    free (last);
    if (err) {
        char msg [200];
        snprintf (msg, sizeof msg, "message %" JSON_INTEGER_FORMAT " failed: %s", sent, zmq_strerror (err));
        fail (id, "failed", msg);
    }
    else
        ok (id, json_pack ("{s:I, s:b}", "sent", sent, "full", full));
}

static void op_recv (json_int_t id, json_t *req, zsock_t *sock)
{
    json_t *timeout = json_object_get (req, "timeout");
    zsock_set_rcvtimeo (sock, timeout ? (int) (json_number_value (timeout) * 1000) : 2000);
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg) {
        fail (id, errno == EAGAIN ? "timeout" : "failed", errno == EAGAIN ? "nothing arrived in time" : zmq_strerror (errno));
        return;
    }
    json_t *frames = json_array ();
    for (zframe_t *f = zmsg_first (msg); f; f = zmsg_next (msg)) {
        char *hex = tohex (zframe_data (f), zframe_size (f));
        json_array_append_new (frames, json_string (hex));
        free (hex);
    }
    zmsg_destroy (&msg);
    ok (id, json_pack ("{s:o}", "frames", frames));
}

static void op_subscription (json_int_t id, json_t *req, zsock_t *sock, int option)
{
    byte *data;
    const char *topic = json_string_value (json_object_get (req, "topic"));
    long n = unhex (topic ? topic : "", &data);
    if (n < 0) { fail (id, "invalid", "topic is not hex"); return; }
    int rc = zmq_setsockopt (zsock_resolve (sock), option, data, (size_t) n);
    free (data);
    if (rc) fail (id, "failed", zmq_strerror (errno));
    else ok (id, NULL);
}

/*  Benchmarks: the hot loops run here on the raw libzmq handle, timed with a
    monotonic clock, so the control protocol is never in the timed path.  */

static double now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int bench_timeout_ms (json_t *req, double fallback)
{
    json_t *t = json_object_get (req, "timeout");
    return (int) ((t ? json_number_value (t) : fallback) * 1000);
}

static void op_bench_send (json_int_t id, json_t *req, zsock_t *sock)
{
    size_t size = (size_t) json_integer_value (json_object_get (req, "size"));
    json_int_t count = json_integer_value (json_object_get (req, "count"));
    void *handle = zsock_resolve (sock);
    int timeout = bench_timeout_ms (req, 60);
    zmq_setsockopt (handle, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    byte *buf = (byte *) zmalloc (size ? size : 1);
    double t0 = now ();
    for (json_int_t i = 0; i < count; i++)
        if (zmq_send (handle, buf, size, 0) < 0) {
            free (buf);
            fail (id, errno == EAGAIN ? "timeout" : "failed", zmq_strerror (errno));
            return;
        }
    double elapsed = now () - t0;
    free (buf);
    ok (id, json_pack ("{s:f}", "elapsed", elapsed));
}

static int recv_one (void *handle)
{
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = zmq_msg_recv (&msg, handle, 0);
    zmq_msg_close (&msg);
    return rc;
}

static void op_bench_recv (json_int_t id, json_t *req, zsock_t *sock)
{
    json_int_t count = json_integer_value (json_object_get (req, "count"));
    void *handle = zsock_resolve (sock);
    int timeout = bench_timeout_ms (req, 60);
    zmq_setsockopt (handle, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (recv_one (handle) < 0) { fail (id, "timeout", "no message arrived in time"); return; }
    double t0 = now ();
    for (json_int_t i = 1; i < count; i++)
        if (recv_one (handle) < 0) { fail (id, "timeout", "fewer messages than asked arrived in time"); return; }
    ok (id, json_pack ("{s:f, s:I, s:I}", "elapsed", now () - t0, "timed", count - 1, "received", count));
}

static int compare_ll (const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;
    return (x > y) - (x < y);
}

static void op_bench_rtt (json_int_t id, json_t *req, zsock_t *sock)
{
    size_t size = (size_t) json_integer_value (json_object_get (req, "size"));
    json_int_t count = json_integer_value (json_object_get (req, "count"));
    void *handle = zsock_resolve (sock);
    int timeout = bench_timeout_ms (req, 10);
    zmq_setsockopt (handle, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int dealer = zsock_type (sock) == ZMQ_DEALER;
    byte *buf = (byte *) zmalloc (size ? size : 1);
    long long *samples = (long long *) zmalloc (sizeof (long long) * (size_t) (count ? count : 1));
    for (json_int_t i = 0; i < count; i++) {
        double t = now ();
        if (dealer) zmq_send (handle, "", 0, ZMQ_SNDMORE);  //  the envelope a REP expects
        zmq_send (handle, buf, size, 0);
        int more = 1;
        while (more) {
            if (recv_one (handle) < 0) { free (buf); free (samples); fail (id, "timeout", "no reply in time"); return; }
            more = zsock_rcvmore (sock);
        }
        samples [i] = (long long) ((now () - t) * 1e9);
    }
    qsort (samples, (size_t) count, sizeof (long long), compare_ll);
    double sum = 0;
    for (json_int_t i = 0; i < count; i++) sum += (double) samples [i];
    #define PCT(p) ((double) samples [(json_int_t) ((p) * (double) count) < count ? (json_int_t) ((p) * (double) count) : count - 1] / 1000.0)
    json_t *out = json_pack ("{s:I, s:f, s:f, s:f, s:f}", "count", count, "p50", PCT (0.50), "p95", PCT (0.95),
                             "p99", PCT (0.99), "mean", count ? sum / (double) count / 1000.0 : 0.0);
    free (buf);
    free (samples);
    ok (id, out);
}

/*  The echo side of the reference's round trips is libzmq's own calls too: czmq's zmsg
    would add an allocation and a list per message to every round trip timed against it.  */
static void op_bench_echo (json_int_t id, json_t *req, zsock_t *sock)
{
    json_int_t count = json_integer_value (json_object_get (req, "count"));
    void *handle = zsock_resolve (sock);
    int timeout = bench_timeout_ms (req, 10);
    zmq_setsockopt (handle, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_msg_t part;
    zmq_msg_init (&part);
    for (json_int_t i = 0; i < count; i++) {
        int more = 1;
        while (more) {
            if (zmq_msg_recv (&part, handle, 0) < 0) {
                zmq_msg_close (&part);
                fail (id, "timeout", "no request in time");
                return;
            }
            more = zmq_msg_more (&part);
            if (zmq_msg_send (&part, handle, more ? ZMQ_SNDMORE : 0) < 0) {
                zmq_msg_close (&part);
                fail (id, "failed", zmq_strerror (errno));
                return;
            }
        }
    }
    zmq_msg_close (&part);
    ok (id, NULL);
}

static int handle (const char *line)
{
    json_error_t error;
    json_t *req = json_loads (line, 0, &error);
    json_int_t id = 0;
    if (!req || !json_is_integer (json_object_get (req, "id")) || !json_is_string (json_object_get (req, "op"))) {
        char msg [300];
        snprintf (msg, sizeof msg, "bad request line: %s", req ? "needs integer id and string op" : error.text);
        json_t *err = json_pack ("{s:s, s:s}", "kind", "invalid", "message", msg);
        reply (json_pack ("{s:n, s:b, s:o}", "id", "ok", 0, "error", err));
        json_decref (req);
        return 0;
    }
    id = json_integer_value (json_object_get (req, "id"));
    const char *op = json_string_value (json_object_get (req, "op"));
    int quit = 0;
    if (streq (op, "hello")) {
        int major, minor, patch;
        zmq_version (&major, &minor, &patch);
        char czmq_v [32], zmq_v [32];
        snprintf (czmq_v, sizeof czmq_v, "%d.%d.%d", CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH);
        snprintf (zmq_v, sizeof zmq_v, "%d.%d.%d", major, minor, patch);
        ok (id, json_pack ("{s:s, s:i, s:{s:s, s:s}}", "peer", "czmq", "protocol", 1,
                           "versions", "czmq", czmq_v, "libzmq", zmq_v));
    }
    else if (streq (op, "socket"))
        op_socket (id, req);
    else if (streq (op, "zap"))
        op_zap (id, req);
    else if (streq (op, "zap_requests"))
        op_zap_requests (id);
    else if (streq (op, "quit")) {
        ok (id, NULL);
        quit = 1;
    }
    else if (streq (op, "bind") || streq (op, "connect") || streq (op, "send") || streq (op, "recv")
             || streq (op, "subscribe") || streq (op, "unsubscribe") || streq (op, "close")
             || streq (op, "events") || streq (op, "bench_send") || streq (op, "bench_recv")
             || streq (op, "bench_rtt") || streq (op, "bench_echo") || streq (op, "send_until_full")
             || streq (op, "send_more")) {
        zsock_t *sock = lookup (req);
        const char *endpoint = json_string_value (json_object_get (req, "endpoint"));
        if (!sock)
            fail (id, "invalid", "no such socket");
        else if (streq (op, "bind")) {
            if (!endpoint || zsock_bind (sock, "%s", endpoint) < 0)
                fail (id, "failed", zmq_strerror (errno));
            else {
                char *last = zsock_last_endpoint (sock);
                ok (id, json_pack ("{s:s}", "endpoint", last));
                free (last);
            }
        }
        else if (streq (op, "connect")) {
            if (!endpoint || zsock_connect (sock, "%s", endpoint))
                fail (id, "failed", zmq_strerror (errno));
            else
                ok (id, NULL);
        }
        else if (streq (op, "send"))
            op_send (id, req, sock);
        else if (streq (op, "recv"))
            op_recv (id, req, sock);
        else if (streq (op, "send_until_full"))
            op_send_until_full (id, req, sock);
        else if (streq (op, "send_more"))
            op_send_more (id, req, sock);
        else if (streq (op, "bench_send"))
            op_bench_send (id, req, sock);
        else if (streq (op, "bench_recv"))
            op_bench_recv (id, req, sock);
        else if (streq (op, "bench_rtt"))
            op_bench_rtt (id, req, sock);
        else if (streq (op, "bench_echo"))
            op_bench_echo (id, req, sock);
        else if (streq (op, "subscribe"))
            op_subscription (id, req, sock, ZMQ_SUBSCRIBE);
        else if (streq (op, "unsubscribe"))
            op_subscription (id, req, sock, ZMQ_UNSUBSCRIBE);
        else {
            int index = atoi (json_string_value (json_object_get (req, "socket")) + 1) - 1;
            if (streq (op, "events"))
                op_events (id, req, index);
            else {
                close_socket (index);
                ok (id, NULL);
            }
        }
    }
    else {
        char msg [200];
        snprintf (msg, sizeof msg, "op '%s' is not supported by the czmq agent", op);
        fail (id, "unsupported", msg);
    }
    json_decref (req);
    return quit;
}

int main (void)
{
    zsys_handler_set (NULL);  //  the harness stops us with quit or a signal
    char *buffer = NULL;
    size_t size = 0, used = 0;
    int quit = 0;
    while (!quit) {
        //  Wait for stdin, but keep calling into every socket meanwhile:
        //  libzmq attaches new pipes (and sends a bound SUB's subscriptions)
        //  only when the application does, as a live application would.
        //  With no socket open there is nothing to call into: sleep until a
        //  request comes (a run keeps dozens of agents alive between cells).
        int open = 0;
        for (int i = 0; i < socket_count && !open; i++)
            open = sockets [i] != NULL;
        struct pollfd pfd = {0, POLLIN, 0};
        int rc = poll (&pfd, 1, open ? 10 : -1);
        for (int i = 0; i < socket_count; i++)
            if (sockets [i]) {
                zsock_events (sockets [i]);
                read_events (i);
            }
        if (rc <= 0) continue;
        if (used + 65536 > size) {
            size = (size + 65536) * 2;
            buffer = (char *) realloc (buffer, size);
        }
        ssize_t n = read (0, buffer + used, size - used - 1);
        if (n <= 0) break;
        used += (size_t) n;
        char *start = buffer, *nl;
        while (!quit && (nl = memchr (start, '\n', used - (size_t) (start - buffer)))) {
            *nl = 0;
            if (nl > start) quit = handle (start);
            start = nl + 1;
        }
        used -= (size_t) (start - buffer);
        memmove (buffer, start, used);
    }
    for (int i = 0; i < socket_count; i++) {
        close_socket (i);
        json_decref (event_logs [i]);
    }
    zactor_destroy (&zap_handler);
    free (buffer);
    return 0;
}
