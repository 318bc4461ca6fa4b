#!/usr/bin/env python3
"""Regenerates Tests/Fixtures/document-corpus.json (`make corpus`): the generated half of
the document contract between the controller and the edges (issue 16, item 3; the
hand-written half is Tests/Fixtures/policy-documents.json).

It starts a real redis-server, the controller (SWITCHYARD_BIN, default .build/debug) and a
tiny nginx running this tree's Lua decoders and the PCRE its ngx.re links
(scripts/doc_corpus.py), puts every generated document through POST /api/v1/apply and the
edge's decoder, and records one case per (field shape, controller error field, the reason
with quoted values left out, edge verdict), and up to VALID_PER_SHAPE accepted values per
field shape:
  valid    the document exactly as the controller stored it (minus "version")
  invalid  {doc, field, why, edge: "refuses"|"accepts", label}: what the controller
           refused, the field it named first, and what the edge's decoder does with the
           same document typed into Redis by hand ("accepts" only for the documented
           leniencies of LENIENT, each with its reason in "lenient")
  regexes  {pattern, compiles, captures} as the edge's engine judges every regex the
           corpus and the hand-written fixture use
It exits non-zero, writing nothing, when the edge refuses a document the controller stored
or accepts a refused one without a documented reason: a disagreement cannot be recorded.

Run it after changing a decoder or a validation rule (both sides), and commit the result:
    make corpus            # or: SWITCHYARD_BIN=... python3 scripts/gen_doc_corpus.py
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doc_corpus as dc  # noqa: E402

os.environ.setdefault("SWITCHYARD_HOME", dc.ROOT)
from harness import Controller, Redis  # noqa: E402

# Documents the controller refuses and the edge's decoder still accepts, on purpose: the
# edge only refuses what would break at request time, and stays lenient where a newer (or
# hand-typed) document does no harm. (kind or None, controller field regex, message regex
# or None, reason). Anything the edge accepts that is not listed here stops the generator.
LENIENT = [
    (None, r".*", r"^unknown field", "unknown members are ignored: newer writers may add some"),
    (None, r"^(owner|source)$", None,
     "owner and source are set by writers, not API requests; edges ignore both"),
    (None, r".*", r"not a fraction", "cjson reads 1000.0 as the integer 1000"),
    ("routes", r"^jwt\.keys\[\d+\]\.pem$", None,
     "the edge checks a key's PEM shape only; it parses the key when first used and refuses "
     "its tokens (401, logged once) when it does not read or does not fit its alg"),
    (None, r".*", r"(not array|not object)$",
     "cjson reads {} and [] alike (an empty table): an empty list or object does nothing"),
    (None, r".*", r"not null$", "JSON null is read as absent (the default)"),
    ("upstreams", r"^balance$", None, "an unknown balance is served as round_robin, with a warning"),
    ("routes", r"^priority$", None, "any integer priority orders routes"),
    ("routes", r"^id$", None, "ids are only compared with their key (upper case, length)"),
    ("upstreams", r"^name$", None, "names are only compared with their key (upper case, length)"),
    ("routes", r"^host$", None,
     "hosts are matched as nginx's $host gives them: '_', a trailing dot, long labels, "
     "leading/trailing hyphens do no harm"),
    ("routes", r"^(path|rewrite\.replace_prefix|rewrite\.replacement)$",
     r"(spaces or control|at most \d+ bytes)",
     "Unicode spaces and C1 controls (the edge refuses ASCII ones) and long paths only "
     "fail to match or are sent upstream as they are"),
    (None, r"(^|\.)(remove\[\d+\]|set\..*|header|key)$", r"(token|header)",
     "header names of 129-256 bytes are tokens the edge can read"),
    ("upstreams", r"^sticky\.path$", r"at most", "a long cookie path only makes a long Set-Cookie"),
    ("upstreams", r"^tls_server_name$", r"(hyphen|at most 63)",
     "an SNI name with odd labels is only sent to the endpoints"),
    (None, r"^(request|response)_headers(\.set|\.remove)?$",
     r"(at least one header|must be an (object|array))",
     "an empty header edit does nothing (cjson reads {} and [] alike)"),
    (None, r"^(request|response)_headers\.set\..*", r"at most \d+ bytes|control",
     "long values and Unicode controls in header values are sent as they are"),
    ("routes", r"^canary\.value$", None, "a long canary value only fails to match"),
    ("routes", r"^hsts(\..*)?$", None,
     "HSTS members are only formatted into the header (non-true booleans are false)"),
    ("routes", r"^redirect\.to$", r"(query or fragment|spaces or control)",
     "a query with keep_path or a Unicode space in the target only makes an odd Location"),
    ("routes", r"^(allow|deny)(\[\d+\])?$",
     r"(leading zeros|appears twice|must be an array)",
     "leading zeros are read as decimal, duplicates are harmless, {} is an empty list"),
    ("routes", r"^rate_limit\.burst$", r"not null", "a null burst is the default (0)"),
    ("upstreams", r"^health_check(\..*)?$", None,
     "the prober, not the edge, uses the health check's settings"),
    ("upstreams", r"^endpoints\[\d+\]\.address$", r"(cannot be an upstream endpoint|link-local)",
     "unusable and link-local endpoints are served (with a warning) from hand-typed documents"),
    ("upstreams", r"^endpoints\[\d+\]\.address$", r"duplicate endpoint",
     "a duplicate endpoint only gets twice the share"),
    ("upstreams", r"^(passive|retries|on_all_down)(\..*)?$", None,
     "health policy values outside the API's ranges are clamped by the edge"),
    ("routes", r"^cors\.origins\[\d+\]$", r"(IPv6 address as browsers send it|invalid IPv6 address)",
     "an IPv6 origin not written as browsers send it never equals an Origin header: harmless"),
    ("upstreams", r"^(tls_server_name|tls_verify)$", r"only applies with",
     "TLS settings of a plain-HTTP upstream are ignored"),
]


def lenient(kind, field, message):
    for k, field_re, message_re, reason in LENIENT:
        if k not in (None, kind):
            continue
        if re.search(field_re, field) and (message_re is None or re.search(message_re, message)):
            return reason
    return None


VALID_PER_SHAPE = 8


def reason_class(message):
    """The controller's message without the values it quotes: one case per kind of reason."""
    return re.sub(r"'[^']*'", "'…'", message)


def value_class(label):
    text = label.split("=", 1)[1] if "=" in label else ""
    if text == "<deleted>":
        return "deleted"
    return {"\"": "string", "t": "bool", "f": "bool", "n": "null", "[": "array",
            "{": "object"}.get(text[:1], "number")


def shape(label, doc):
    """The mutated field's path with array indexes as #: what the corpus keeps one case of
    per outcome (a route's path per match kind)."""
    path = re.split(r"[=+]", label, maxsplit=1)[0]
    path = re.sub(r"(^|/)\d+(?=/|$)", r"\1#", path)
    if path == "path" and isinstance(doc.get("match"), str):
        path += "@" + doc["match"]
    return path + ("+" if "+" in label.split("=", 1)[0] else "")


def regexes_of(doc, kind):
    out = []
    if kind == "routes":
        if doc.get("match") == "regex" and isinstance(doc.get("path"), str):
            out.append(doc["path"])
        rw = doc.get("rewrite")
        if isinstance(rw, dict) and isinstance(rw.get("regex"), str):
            out.append(rw["regex"])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=dc.CORPUS)
    parser.add_argument("--report-only", action="store_true",
                        help="print the disagreements and leniencies, write nothing")
    args = parser.parse_args()

    fixture = dc.load_fixture()
    workdir = tempfile.mkdtemp(prefix="switchyard-corpus-")
    os.chmod(workdir, 0o755)
    redis = controller = probe = None
    try:
        redis = Redis(workdir)
        controller = Controller(redis, workdir)
        probe = dc.DecoderProbe(workdir)
        for name in sorted(dc.referenced_upstreams(fixture)):
            controller.upstream(name, 9)
        corpus = list(dc.generate_corpus(fixture))
        records = dc.judge(controller, redis, probe, corpus)

        problems, cases, keys = [], {"routes": {"valid": [], "invalid": []},
                                     "upstreams": {"valid": [], "invalid": []}}, set()
        undocumented = []
        per_shape = {}
        patterns = list(dc.REGEX_CORPUS)
        for kind in ("routes", "upstreams"):
            for d in fixture[kind]["valid"] + [c["doc"] for c in fixture[kind]["invalid"]]:
                patterns += regexes_of(d, kind)
        counts = {"stored": 0, "refused": 0, "missing_upstream": 0}
        for rec in records:
            kind, label, doc = rec["kind"], rec["label"], rec["doc"]
            sh = shape(label, doc)
            if rec["status"] == 200:
                counts["stored"] += 1
                if not rec["edge_ok"]:
                    problems.append(f"{kind} {label}: stored, but the edge refuses it: "
                                    f"{rec['edge_err']}\n    {rec['stored_raw'][:300]}")
                    continue
                stored = json.loads(rec["stored_raw"])
                stored.pop("version", None)
                text = json.dumps(stored, sort_keys=True)
                per_shape[(kind, sh)] = per_shape.get((kind, sh), 0)
                if text not in keys and per_shape[(kind, sh)] < VALID_PER_SHAPE:
                    keys.add(text)
                    per_shape[(kind, sh)] += 1
                    cases[kind]["valid"].append(stored)
                    patterns += regexes_of(stored, kind)
                continue
            counts["refused"] += 1
            found = [p for p in rec["problems"] if p["code"] != "missing_upstream"]
            if not found:
                counts["missing_upstream"] += 1   # valid as a document; Redis lacks the upstream
                continue
            field, why = found[0]["field"], found[0]["message"]
            case = {"doc": doc, "field": field, "why": why,
                    "edge": "accepts" if rec["edge_ok"] else "refuses", "label": label}
            if rec["edge_ok"]:
                reason = lenient(kind, field, why)
                if reason is None:
                    undocumented.append(f"{kind} {label}: controller refuses at {field} "
                                        f"({why[:120]}), the edge accepts")
                    continue
                case["lenient"] = reason
            key = (kind, sh, "invalid", re.sub(r"\[\d+\]", "[#]", field), reason_class(why),
                   case["edge"])
            if key not in keys:
                keys.add(key)
                cases[kind]["invalid"].append(case)
                patterns += regexes_of(doc, kind)

        # documents a writer with an owner stores (the API cannot: it refuses the members)
        owned = []
        for kind in ("routes", "upstreams"):
            base = cases[kind]["valid"][0]
            for owner, source in (("k8s/switchyard", "k8s:default/bbs"), ("x" * 253, " ")):
                owned.append((kind, dict(base, owner=owner, source=source)))
        verdicts = probe.decode([(k[:-1], d.get("id") or d.get("name"), json.dumps(d))
                                 for k, d in owned])
        for (kind, d), (ok, err) in zip(owned, verdicts):
            if not ok:
                problems.append(f"{kind} owned document refused by the edge: {err}")
            cases[kind]["valid"].append(d)

        seen, regexes = set(), []
        unique = [p for p in patterns if not (p in seen or seen.add(p))]
        for p, (ok, err, captures) in zip(unique, probe.regex_details(unique)):
            entry = {"pattern": p, "compiles": ok}
            if ok:
                entry["captures"] = captures
            regexes.append(entry)

        print(f"corpus: {len(records)} documents; controller stored {counts['stored']}, refused "
              f"{counts['refused']} ({counts['missing_upstream']} only for a missing upstream); "
              f"kept {sum(len(v['valid']) for v in cases.values())} valid and "
              f"{sum(len(v['invalid']) for v in cases.values())} invalid cases, "
              f"{len(regexes)} regexes", file=sys.stderr)
        failed = problems + undocumented
        for line in failed:
            print(line, file=sys.stderr)
        if failed:
            print(f"{len(problems)} stored documents the edge refuses, {len(undocumented)} "
                  "undocumented leniencies: nothing written", file=sys.stderr)
            return 1
        if args.report_only:
            return 0
        out = {
            "_comment": (
                "GENERATED by scripts/gen_doc_corpus.py (make corpus); do not edit. The "
                "generated half of the document contract (the hand-written half: "
                "policy-documents.json), read by Tests/SwitchyardCoreTests/Policies/"
                "PolicyFixtureTests.swift and lua/switchyard/route/policy_documents_spec.lua. "
                "valid: documents exactly as the controller stored them (minus version); the "
                "edge decodes each. invalid: {doc, field, why, edge, label}: the controller "
                "refuses doc naming field first; edge says what the edge's decoder does with "
                "the same document typed into Redis by hand (accepts: a documented leniency, "
                "reason in lenient). regexes: the edge's ngx.re verdict and group count."),
            "routes": cases["routes"],
            "upstreams": cases["upstreams"],
            "regexes": regexes,
        }
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1, sort_keys=True, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {os.path.relpath(args.out, dc.ROOT)}", file=sys.stderr)
        return 0
    finally:
        for p in (probe, controller, redis):
            if p is not None:
                p.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
