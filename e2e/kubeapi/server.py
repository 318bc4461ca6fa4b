"""HTTPS transport of the double: TLS with its own CA, bearer-token and client-certificate
authentication, JSON responses, chunked watch streams, and the admin endpoints tests use
(`/_kubeapi/...`: compact, drop-watches, fail, requests, state)."""
import collections
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import certs
from .api import API, APIError, status_object
from .kubeconfig import write_kubeconfig

DEFAULT_TOKEN = "kubeapi-double-token"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, double, family):
        self.address_family = family
        self.double = double
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, never in the accept loop.
        request.settimeout(30)
        try:
            tls = self.double.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def shutdown_request(self, request):
        try:
            request.close()
        except OSError:
            pass

    def handle_error(self, request, client_address):
        pass  # clients going away mid-request are normal for watches


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeapi-double"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.double.verbose:
            super().log_message(fmt, *args)

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _user(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.server.double.tokens.get(auth[7:].strip())
        try:
            cert = self.connection.getpeercert()
        except (ValueError, OSError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return None

    def _dispatch(self):
        double = self.server.double
        url = urlsplit(self.path)
        path = unquote(url.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._body()
        entry = {"method": self.command, "path": path, "query": q, "at": time.monotonic()}
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return
        user = self._user()
        entry["user"] = user
        if user is None:
            entry["code"] = 401
            double.log(entry)
            self._send(401, status_object(401, "Unauthorized", "Unauthorized"))
            return
        if path.startswith("/_kubeapi/"):
            code, payload = double.admin(self.command, path, body)
            self._send(code, payload)
            return
        failure = double.take_failure(self.command, path)
        if failure:
            entry["code"] = failure
            double.log(entry)
            self._send(failure, status_object(failure, "ServiceUnavailable" if failure == 503 else "InternalError",
                                              "injected failure"))
            return
        try:
            code, payload = double.handle(self.command, path, q, self.headers, body)
        except APIError as e:
            code, payload = e.code, e.status()
        entry["code"] = code
        entry["watch"] = not isinstance(payload, dict)
        double.log(entry)
        if isinstance(payload, dict):
            self._send(code, payload)
        else:
            self._stream(payload)

    def _stream(self, events):
        double = self.server.double
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        self.connection.settimeout(30)
        with double.counter_lock:
            double.active_watches += 1
        try:
            for event in events:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            pass
        finally:
            events.close()
            with double.counter_lock:
                double.active_watches -= 1


class KubeAPIServer:
    """A Kubernetes API-server double on a loopback port.

    with KubeAPIServer() as api:
        api.kubeconfig        # bearer-token kubeconfig (CA embedded)
        api.compact(advance=True, drop_watches=True)
    """

    def __init__(self, directory=None, host="127.0.0.1", port=0, tokens=None, bookmark_interval=1.0,
                 watch_timeout=300.0, verbose=False, client_users=("client-cert-user",), mirror_endpoints=True):
        self.own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="kubeapi-")
        os.makedirs(self.dir, exist_ok=True)
        self.host, self.requested_port = host, port
        self.tokens = dict(tokens or {DEFAULT_TOKEN: "admin"})
        self.verbose = verbose
        self.client_users = client_users
        self.api = API(bookmark_interval=bookmark_interval, watch_timeout=watch_timeout, mirror_endpoints=mirror_endpoints)
        self.requests = collections.deque(maxlen=5000)
        self.requests_lock = threading.Lock()
        self.counter_lock = threading.Lock()
        self.active_watches = 0
        self.failures = []
        self.httpd = None
        self.thread = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        self.ca_file, self.ca_key = certs.make_ca(self.dir)
        self.cert_file, self.key_file = certs.make_server_cert(self.dir)
        self.wrong_ca_file, _ = certs.make_ca(self.dir, name="wrong-ca", cn="unrelated-ca")
        self.client_certs = {u: certs.make_client_cert(self.dir, u) for u in self.client_users}
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.cert_file, self.key_file)
        tls.load_verify_locations(self.ca_file)
        tls.verify_mode = ssl.CERT_OPTIONAL
        tls.set_alpn_protocols(["http/1.1"])
        self.tls = tls
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.httpd = _Server((self.host, self.requested_port), _Handler, self, family)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="kubeapi", daemon=True)
        self.thread.start()
        self.kubeconfig = self.write_kubeconfig(os.path.join(self.dir, "kubeconfig"))
        user = self.client_users[0] if self.client_users else None
        self.kubeconfig_client_cert = (self.write_kubeconfig(os.path.join(self.dir, "kubeconfig-client-cert"),
                                                             token=None, client_user=user) if user else None)
        return self

    def stop(self):
        if self.httpd:
            self.api.store.stop()
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def token(self):
        return next(iter(self.tokens))

    def write_kubeconfig(self, path, token=..., client_user=None, ca_file=..., insecure=False, namespace=None,
                         embed=True):
        """A kubeconfig for this server: bearer token by default, or a client certificate."""
        cert = key = None
        if client_user:
            cert, key = self.client_certs[client_user]
        return write_kubeconfig(path, self.url, ca_file=self.ca_file if ca_file is ... else ca_file,
                                token=self.token if token is ... else token, client_cert=cert, client_key=key,
                                insecure=insecure, namespace=namespace, embed=embed)

    # -- test controls --------------------------------------------------------------------------

    def compact(self, advance=False, drop_watches=False):
        """Forgets history up to the current revision (after moving it by one with advance, so
        that every client's last-seen revision is now too old). Returns the compacted revision."""
        store = self.api.store
        with store.lock:
            if advance:
                store.advance()
            rev = store.compact()
            if drop_watches:
                store.end_watches()
        return rev

    def drop_watches(self):
        self.api.store.end_watches()

    def fail_next(self, count, code=503, path_prefix="/", method=None):
        with self.requests_lock:
            self.failures.append({"count": count, "code": code, "path": path_prefix, "method": method})

    def take_failure(self, method, path):
        with self.requests_lock:
            for f in self.failures:
                if f["count"] > 0 and path.startswith(f["path"]) and f["method"] in (None, method):
                    f["count"] -= 1
                    return f["code"]
        return None

    def log(self, entry):
        with self.requests_lock:
            self.requests.append(entry)

    def request_log(self):
        with self.requests_lock:
            return list(self.requests)

    @property
    def revision(self):
        return self.api.store.rev

    def admin(self, method, path, body):
        try:
            args = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "body must be JSON"}
        if path == "/_kubeapi/compact" and method == "POST":
            rev = self.compact(bool(args.get("advance")), bool(args.get("dropWatches")))
            return 200, {"compacted": rev}
        if path == "/_kubeapi/drop-watches" and method == "POST":
            self.drop_watches()
            return 200, {"dropped": True}
        if path == "/_kubeapi/fail" and method == "POST":
            if args.get("clear"):
                with self.requests_lock:
                    self.failures.clear()
                return 200, {"cleared": True}
            self.fail_next(int(args.get("count", 1)), int(args.get("code", 503)), args.get("pathPrefix", "/"), args.get("method"))
            return 200, {"armed": True}
        if path == "/_kubeapi/requests" and method == "GET":
            return 200, {"requests": self.request_log()}
        if path == "/_kubeapi/requests" and method == "DELETE":
            with self.requests_lock:
                self.requests.clear()
            return 200, {"cleared": True}
        if path == "/_kubeapi/state" and method == "GET":
            store = self.api.store
            return 200, {"revision": store.rev, "compacted": store.compacted, "activeWatches": self.active_watches}
        return 404, {"error": f"no admin endpoint {method} {path}"}

    # -- the API --------------------------------------------------------------------------------

    def handle(self, method, path, q, headers, body):
        api = self.api
        route = api.resolve(path)
        if route[0] == "discovery":
            if method != "GET":
                raise APIError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource")
            return 200, route[1]
        _, rtype, ns, name, sub = route
        if method == "GET":
            if name is None:
                if q.get("watch") in ("1", "true"):
                    return 200, api.watch(rtype, ns, q)
                return 200, api.list(rtype, ns, q)
            return 200, api.get(rtype, ns, name)
        if method == "PATCH" and name:
            return api.patch(rtype, ns, name, body, headers.get("Content-Type"), q, sub)
        obj = _decode(body, headers.get("Content-Type"))
        if method == "POST" and name is None:
            return api.create(rtype, ns, obj, q)
        if method == "PUT" and name:
            return api.update(rtype, ns, name, obj, q, sub)
        if method == "DELETE" and name and not sub:
            return api.delete(rtype, ns, name, obj, q)
        if method == "DELETE" and name is None:
            return api.delete_collection(rtype, ns, q)
        raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def _decode(body, content_type):
    if not body:
        return None
    ct = (content_type or "application/json").split(";")[0].strip().lower()
    if ct == "application/vnd.kubernetes.protobuf":
        from .protobuf import ProtobufError, decode
        try:
            return decode(body)
        except ProtobufError as e:
            raise APIError(415, "UnsupportedMediaType", str(e)) from None
    try:
        if ct in ("application/yaml", "application/x-yaml"):
            import yaml
            return yaml.safe_load(body)
        if ct in ("application/json", "*/*", ""):
            return json.loads(body)
    except ValueError as e:
        raise APIError(400, "BadRequest", f"error decoding the body: {e}") from None
    raise APIError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
