#!/usr/bin/env bash
# Installs the Debian packages Switchyard needs to build, test and run, if any are missing.
# As root it runs apt-get itself; otherwise it prints the exact command and fails.
set -euo pipefail

packages=(
    # edges
    nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache lua-cjson
    # configuration store
    redis-server redis-tools
    # controller and prober build
    pkg-config libpcre2-dev libssl-dev libcurl4-openssl-dev
    libpcre3-dev  # the controller validates regexes with PCRE 8.x, the library the edges' ngx.re links
    # tests and benchmarks
    lua-busted lua5.2 openssl curl wrk hyperfine python3 python3-pip procps iproute2
    lua-check  # make lint-lua: luacheck
    valgrind   # bench/instructions.py counts instructions per request with callgrind
    chromium chromium-driver  # e2e/test_ui_browser.py drives the status page in headless Chromium
    prometheus # promtool checks deploy/prometheus; e2e/test_prometheus.py scrapes the stack with a real Prometheus
    libnginx-mod-stream haproxy  # bench/stream.py: the static nginx stream and HAProxy references (docs/stream.md)
    caddy           # bench/peers.py: Caddy 2.6 beside HAProxy, static nginx and the edges
    nghttp2-client  # bench/tls.py: HTTP/2 load with h2load
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    line="apt-get update && apt-get install -y ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "switchyard: missing Debian packages. Run as root:" >&2
        echo "    $line" >&2
        exit 1
    fi
    echo "switchyard: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    # Debian starts the stock services on install; Switchyard runs its own instances.
    for svc in nginx redis-server prometheus haproxy caddy; do
        if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
    done
fi

# The integration tests are pytest + requests, the Kubernetes API-server double (e2e/kubeapi)
# reads YAML with PyYAML, and the metrics tests parse /metrics with prometheus-client's parser
# (install what is missing).
if ! python3 -c 'import pytest, requests, yaml, prometheus_client' 2>/dev/null; then
    echo "switchyard: installing pytest, requests, PyYAML and prometheus-client for the integration tests" >&2
    python3 -m pip install --quiet pytest requests pyyaml prometheus-client || {
        echo "switchyard: could not install them: python3 -m pip install pytest requests pyyaml prometheus-client" >&2
        exit 1
    }
fi

# gRPC through the edges is tested with a real gRPC client and servers (e2e/test_grpc.py).
if ! python3 -c 'import grpc' 2>/dev/null; then
    echo "switchyard: installing grpcio for the gRPC test" >&2
    python3 -m pip install --quiet grpcio || {
        echo "switchyard: could not install it: python3 -m pip install grpcio" >&2
        exit 1
    }
fi

# The status page (/ui) is tested in headless Chromium driven by Selenium (e2e/test_ui_browser.py),
# with Debian's chromedriver (never one Selenium would download).
if ! python3 -c 'import selenium' 2>/dev/null; then
    echo "switchyard: installing selenium for the status page's browser test" >&2
    python3 -m pip install --quiet selenium || {
        echo "switchyard: could not install it: python3 -m pip install selenium" >&2
        exit 1
    }
fi

# The admin API is checked against docs/openapi.yaml with schemathesis, and the document itself
# with openapi-spec-validator (e2e/test_openapi.py); pinned versions, as schemathesis's checks
# and data generation change between releases.
if ! python3 -c 'import schemathesis, openapi_spec_validator, sys; sys.exit(schemathesis.__version__ != "4.32.5")' 2>/dev/null; then
    echo "switchyard: installing schemathesis 4.32.5 and openapi-spec-validator for the OpenAPI test" >&2
    python3 -m pip install --quiet 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0' || {
        echo "switchyard: could not install them: python3 -m pip install 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'" >&2
        exit 1
    }
fi

# deploy/kubernetes is checked against the Kubernetes schemas offline (e2e/test_kube_manifests.py).
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
    echo "switchyard: installing kubernetes-validate for the deploy/kubernetes checks" >&2
    python3 -m pip install --quiet kubernetes-validate || {
        echo "switchyard: could not install it: python3 -m pip install kubernetes-validate" >&2
        exit 1
    }
fi

# The Kubernetes tests drive the API-server double with a real kubectl: the image's Google Cloud
# SDK ships kubectl.1.27 to 1.33; without any kubectl, Debian's kubernetes-client is the fallback.
if ! ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* >/dev/null 2>&1 && ! command -v kubectl >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        echo "switchyard: installing kubernetes-client (kubectl) for the Kubernetes tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends kubernetes-client >&2
    else
        echo "switchyard: no kubectl; the Kubernetes tests need one (apt-get install kubernetes-client)" >&2
    fi
fi

if ! command -v swift >/dev/null; then
    echo "switchyard: swift (6.x) is not on PATH; install the Swift toolchain first" >&2
    exit 1
fi
