"""Writes kubeconfig files for clients of the double (kubectl, the Swift client)."""
import base64
import json
import os


def _b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfig(path, server, ca_file=None, token=None, client_cert=None, client_key=None,
                     insecure=False, namespace=None, context="kubeapi-double", embed=True):
    """A kubeconfig with one cluster, one user and one current context. With embed=True the CA
    and client certificate are inlined (`*-data`); otherwise the files are referenced by path.
    JSON is valid YAML, so the file is written as JSON."""
    cluster = {"server": server}
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif ca_file:
        if embed:
            cluster["certificate-authority-data"] = _b64(ca_file)
        else:
            cluster["certificate-authority"] = ca_file
    user = {}
    if token:
        user["token"] = token
    if client_cert:
        if embed:
            user["client-certificate-data"] = _b64(client_cert)
            user["client-key-data"] = _b64(client_key)
        else:
            user["client-certificate"] = client_cert
            user["client-key"] = client_key
    ctx = {"cluster": context, "user": context}
    if namespace:
        ctx["namespace"] = namespace
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    os.chmod(path, 0o600)
    return path
