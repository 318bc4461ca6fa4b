"""Helpers for e2e/test_hardening.py (issue 16): raw HTTP over a socket, a tiny nginx that
runs the edge's own Lua decoders and ngx.re (the PCRE the edges link), TLS handshakes
with a chosen SNI name and session, and the generated document corpus that the
controller and the edge must judge the same way. Real processes only, loopback only,
every loop bounded."""
import os
import socket
import subprocess
import sys
import time

from harness import ROOT


def use_worktree_files():
    """The controller and the edges find redis/switchyard.lua, lua/ and deploy/ from
    SWITCHYARD_HOME first: point it at this checkout, so a SWITCHYARD_BIN built elsewhere
    still runs THIS tree's Lua and Function library (harness passes os.environ on)."""
    os.environ["SWITCHYARD_HOME"] = ROOT


# --- raw HTTP -------------------------------------------------------------------------

def raw_http(port, data, timeout=5.0, host="127.0.0.1"):
    """Sends `data` (bytes) on a fresh connection and reads one answer (until the
    Content-Length is complete or the peer closes). Returns (status, headers dict with
    lowercase names, body bytes)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines or len(lines[0].split()) < 2:
            raise AssertionError(f"no HTTP answer: {buf[:200]!r}")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = int(headers.get("content-length", "-1"))
        while (want < 0 or len(body) < want) and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            body += chunk
        return status, headers, body


def routed(status, headers):
    """True unless the edge answered its own 404 "no route"."""
    return not (status == 404 and headers.get("x-switchyard-route") == "none")


# --- the edge's decoders in a tiny nginx, the regex and document corpora -----------------
# (issue 16, items 2 and 3) live in scripts/doc_corpus.py, shared with the corpus
# generator (scripts/gen_doc_corpus.py, `make corpus`).

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from doc_corpus import (DecoderProbe, REGEX_CORPUS, generate_corpus,  # noqa: E402,F401
                        judge_corpus, load_fixture, referenced_upstreams)


# --- TLS ------------------------------------------------------------------------------

def openssl_sni_handshake(port, server_name_bytes, timeout=5):
    """A handshake whose SNI carries arbitrary bytes (a newline, say), which Python's ssl
    refuses to send: openssl s_client with the name as an argument. Returns its output."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                          "-servername", server_name_bytes], input=b"", capture_output=True,
                         timeout=timeout)
    return out.stdout + out.stderr
