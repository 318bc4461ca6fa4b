"""python3 -m kubeapi --port P [--dir D] [--token T] [--bookmark-interval S]

Starts the double and prints one JSON line on stdout with what a client needs: port, server
URL, token, CA file, an unrelated CA file, kubeconfig paths (bearer token; client certificate)
and client certificate/key files. Serves until SIGTERM or SIGINT."""
import argparse
import json
import signal
import sys
import threading

from .server import DEFAULT_TOKEN, KubeAPIServer


def main(argv=None):
    p = argparse.ArgumentParser(prog="kubeapi", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--dir", help="where certificates and kubeconfigs are written (default: a temporary directory)")
    p.add_argument("--token", action="append", help=f"accepted bearer token (repeatable; default {DEFAULT_TOKEN})")
    p.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds between watch bookmarks")
    p.add_argument("--watch-timeout", type=float, default=300.0, help="watch length when the client gives no timeoutSeconds")
    p.add_argument("--no-mirror-endpoints", action="store_true", help="do not mirror selector-less Endpoints into EndpointSlices")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    tokens = {t: f"user-{i}" for i, t in enumerate(a.token)} if a.token else None
    server = KubeAPIServer(directory=a.dir, host=a.host, port=a.port, tokens=tokens,
                           bookmark_interval=a.bookmark_interval, watch_timeout=a.watch_timeout,
                           verbose=a.verbose, mirror_endpoints=not a.no_mirror_endpoints)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    user = server.client_users[0]
    print(json.dumps({
        "port": server.port, "server": server.url, "token": server.token, "ca": server.ca_file,
        "wrongCA": server.wrong_ca_file, "kubeconfig": server.kubeconfig,
        "kubeconfigClientCert": server.kubeconfig_client_cert, "dir": server.dir,
        "clientCert": server.client_certs[user][0], "clientKey": server.client_certs[user][1],
    }), flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
