"""TLS to Redis for the tests and bench/api_latency.py: certificates made with the openssl
CLI (a CA, a server certificate for localhost and 127.0.0.1, a client certificate) and a
redis-server that listens with TLS only and wants client certificates."""
import os
import shutil
import subprocess

from harness import Process, free_port, wait_until


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(d):
    """ca.pem; server.pem/server.key for localhost and 127.0.0.1; client.pem/client.key.
    Returns the directory's paths by name."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=switchyard test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)   # nginx's master reads them before dropping root
    return {n: os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


class TLSRedis:
    """redis-server with `port 0` (no plain-text listener) and a TLS port that wants client
    certificates; cli() is redis-cli over TLS with the client certificate."""

    password = None

    def __init__(self, workdir, certs):
        self.port = free_port()
        self.certs = certs
        argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", "0",
                "--tls-port", str(self.port), "--tls-cert-file", certs["server.pem"],
                "--tls-key-file", certs["server.key"], "--tls-ca-cert-file", certs["ca.pem"],
                "--tls-auth-clients", "yes", "--save", "", "--appendonly", "no", "--dir", workdir]
        self.process = Process(f"redis-tls-{self.port}", argv, log_dir=workdir)
        wait_until(lambda: self.cli("PING") == "PONG", 10, what="redis-server with TLS")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def cli(self, *args, raw=False):
        argv = ["redis-cli", "-p", str(self.port), "--tls", "--cacert", self.certs["ca.pem"],
                "--cert", self.certs["client.pem"], "--key", self.certs["client.key"]]
        if raw:
            argv.append("--raw")
        out = subprocess.run(argv + [str(a) for a in args], capture_output=True, check=True, timeout=10)
        return out.stdout.decode().rstrip("\n")

    def get(self, key):
        v = self.cli("GET", key, raw=True)
        return v if v != "" else None

    def stop(self):
        self.process.stop()


def tls_flags(certs):
    return ["--redis-tls", "--redis-tls-ca", certs["ca.pem"], "--redis-tls-cert", certs["client.pem"],
            "--redis-tls-key", certs["client.key"], "--redis-tls-server-name", "localhost"]
