"""Certificates for the double, made with the openssl command line: a CA, a server
certificate for 127.0.0.1/::1/localhost signed by it, client certificates (CN = user name,
O = group) for client-certificate authentication, and an unrelated CA for tests that must see
verification fail."""
import os
import subprocess
import tempfile

_DAYS = "3"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _key(path, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", path, cwd=cwd)


def make_ca(directory, name="ca", cn="kubeapi-double-ca"):
    key, crt = f"{name}.key", f"{name}.crt"
    _key(key, directory)
    _openssl("req", "-x509", "-new", "-key", key, "-out", crt, "-days", _DAYS, "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    return os.path.join(directory, crt), os.path.join(directory, key)


def _signed(directory, name, subject, extensions, ca="ca"):
    key, csr, crt = f"{name}.key", f"{name}.csr", f"{name}.crt"
    _key(key, directory)
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", subject, cwd=directory)
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".ext", delete=False) as f:
        f.write(extensions)
        ext = f.name
    try:
        _openssl("x509", "-req", "-in", csr, "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
                 "-out", crt, "-days", _DAYS, "-extfile", ext, cwd=directory)
    finally:
        os.unlink(ext)
        os.unlink(os.path.join(directory, csr))
    return os.path.join(directory, crt), os.path.join(directory, key)


def make_server_cert(directory, hosts=("127.0.0.1", "::1", "localhost")):
    sans = ",".join(f"IP:{h}" if h[0].isdigit() or ":" in h else f"DNS:{h}" for h in hosts)
    return _signed(directory, "server", "/CN=kube-apiserver",
                   f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n")


def make_client_cert(directory, user, group="system:masters"):
    safe = "".join(c if c.isalnum() else "-" for c in user)
    return _signed(directory, f"client-{safe}", f"/O={group}/CN={user}",
                   "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n")
