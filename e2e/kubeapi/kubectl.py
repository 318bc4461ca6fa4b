"""Runs a real kubectl against the double (for tests): the newest versioned kubectl of the
image's Google Cloud SDK (kubectl.1.33 when present), else kubectl on PATH, or $KUBECTL."""
import glob
import json
import os
import re
import shutil
import subprocess


def find_kubectl():
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    versioned = glob.glob("/usr/lib/google-cloud-sdk/bin/kubectl.1.*")
    if versioned:
        return max(versioned, key=lambda p: int(re.search(r"\.1\.(\d+)$", p).group(1)))
    return shutil.which("kubectl")


class KubectlError(AssertionError):
    def __init__(self, argv, proc):
        super().__init__(f"kubectl {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
        self.stderr = proc.stderr
        self.returncode = proc.returncode


class Kubectl:
    def __init__(self, kubeconfig, cache_dir, binary=None, timeout=30):
        self.binary = binary or find_kubectl()
        self.kubeconfig, self.cache_dir, self.timeout = kubeconfig, cache_dir, timeout

    def argv(self, *args):
        # The double serves no OpenAPI document, so client-side validation is off for the
        # commands that would download it (the server still validates: 422 Invalid).
        extra = ["--validate=false"] if args and args[0] in ("create", "apply", "replace") else []
        return [self.binary, "--kubeconfig", self.kubeconfig, "--cache-dir", self.cache_dir,
                "--request-timeout", "20s", *args, *extra]

    def run(self, *args, stdin=None, check=True, timeout=None):
        proc = subprocess.run(self.argv(*args), input=stdin, capture_output=True, text=True,
                              timeout=timeout or self.timeout)
        if check and proc.returncode != 0:
            raise KubectlError(args, proc)
        return proc

    def __call__(self, *args, **kw):
        return self.run(*args, **kw).stdout

    def json(self, *args, **kw):
        return json.loads(self.run(*args, "-o", "json", **kw).stdout)

    def fails(self, *args, stdin=None):
        """Runs a command that must fail; returns its stderr."""
        proc = self.run(*args, stdin=stdin, check=False)
        assert proc.returncode != 0, f"kubectl {' '.join(args)} should have failed: {proc.stdout}"
        return proc.stderr

    def version(self):
        out = subprocess.run([self.binary, "version", "--client", "-o", "json"], capture_output=True, text=True,
                             timeout=self.timeout)
        return json.loads(out.stdout)["clientVersion"]["gitVersion"]
