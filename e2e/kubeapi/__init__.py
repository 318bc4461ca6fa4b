"""A Kubernetes API-server double for Switchyard's tests (see README.md beside this file)."""
from .api import API, APIError
from .kubeconfig import write_kubeconfig
from .server import DEFAULT_TOKEN, KubeAPIServer

__all__ = ["API", "APIError", "KubeAPIServer", "DEFAULT_TOKEN", "write_kubeconfig"]
