"""The API machinery of the double: routing, discovery, the verbs, watch streams and the two
controllers a real cluster runs that a Switchyard controller depends on (CRDs becoming served
resources, and EndpointSlice mirroring for Services without a selector)."""
import base64
import copy
import json
import random
import re
import time
import uuid
from datetime import datetime, timezone

import yaml

from .kinds import BUILTIN_GROUPS, BUILTINS, custom_types, prune_custom
from .patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import Expired, Store

SERVER_VERSION = {
    "major": "1", "minor": "33", "gitVersion": "v1.33.0-kubeapi-double", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
    "compiler": "gc", "platform": "linux/amd64",
}
MIRROR_MANAGER = "endpointslicemirroring-controller.k8s.io"
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class APIError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


def not_found(rtype, name):
    return APIError(404, "NotFound", f'{rtype.qualified} "{name}" not found',
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def conflict(rtype, name, message=None):
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.qualified} "{name}": '
                    + (message or "the object has been modified; please apply your changes to the latest version and try again"),
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def invalid(rtype, name, errors):
    causes = [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors]
    text = ", ".join(f"{e.field}: {e.message}" for e in errors)
    message = f'{rtype.kind}.{rtype.group} "{name}" is invalid: {text}' if rtype.group else f'{rtype.kind} "{name}" is invalid: {text}'
    return APIError(422, "Invalid", message, {"name": name, "group": rtype.group, "kind": rtype.kind, "causes": causes})


def bad_request(message):
    return APIError(400, "BadRequest", message)


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version_priority(v):
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (0, 0, 0, v)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (1, stage, int(m.group(1)), int(m.group(3) or 0))


def _encode_continue(rev, last_key):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": "/".join(last_key) + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        ns, name = data["start"].rstrip("\x00").split("/", 1)
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError) as e:
        raise bad_request(f"continue key is not valid: {e}") from None


def _meta_key(obj):
    m = obj.get("metadata") or {}
    return (m.get("namespace") or "", m.get("name") or "")


def _strip_volatile(obj):
    o = copy.deepcopy(obj)
    m = o.get("metadata") or {}
    m.pop("resourceVersion", None)
    m.pop("managedFields", None)
    return o


def _truthy(v):
    return v in ("1", "true", "True")


class API:
    def __init__(self, store=None, bookmark_interval=1.0, watch_timeout=300.0, mirror_endpoints=True):
        self.store = store or Store()
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.mirror_endpoints = mirror_endpoints
        self.types = {}  # (group, version, plural) -> ResourceType
        self.custom = {}  # CRD name -> [ResourceType]
        for t in BUILTINS:
            self.types[(t.group, t.version, t.plural)] = t
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._system_create(self.types[("", "v1", "namespaces")], {"metadata": {"name": ns}})

    # -- routing --------------------------------------------------------------------------------

    def resolve(self, path):
        """Returns ('discovery', payload) or ('resource', rtype, namespace, name, subresource)."""
        segs = [s for s in path.split("/") if s]
        if segs == ["version"] or segs == ["version", ""]:
            return ("discovery", dict(SERVER_VERSION))
        if segs == ["api"]:
            return ("discovery", {"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if segs == ["apis"]:
            return ("discovery", {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
        if len(segs) == 2 and segs[0] == "apis":
            for g in self._groups():
                if g["name"] == segs[1]:
                    return ("discovery", {"kind": "APIGroup", "apiVersion": "v1", **g})
            raise self._no_route()
        if segs and segs[0] == "api" and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs and segs[0] == "apis" and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise self._no_route()
        if not rest:
            resources = [r for t in sorted(self.types.values(), key=lambda t: t.plural)
                         if t.group == group and t.version == version for r in t.discovery()]
            if not resources:
                raise self._no_route()
            gv = f"{group}/{version}" if group else version
            return ("discovery", {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise self._no_route()
        rtype = self.types.get((group, version, rest[0]))
        name = rest[1] if len(rest) > 1 else None
        if rtype is None or (ns is not None and not rtype.namespaced) or (rtype.namespaced and ns is None and name):
            raise self._no_route()
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (sub == "status" and rtype.has_status):
            raise self._no_route()
        return ("resource", rtype, ns, name, sub)

    @staticmethod
    def _no_route():
        return APIError(404, "NotFound", "the server could not find the requested resource", {})

    def _groups(self):
        versions = {g: set() for g in BUILTIN_GROUPS}
        for t in self.types.values():
            if t.group:
                versions.setdefault(t.group, set()).add(t.version)
        out = []
        for g, vs in versions.items():
            ordered = sorted(vs, key=_version_priority, reverse=True)
            entries = [{"groupVersion": f"{g}/{v}", "version": v} for v in ordered]
            out.append({"name": g, "versions": entries, "preferredVersion": entries[0]})
        return out

    # -- presentation ---------------------------------------------------------------------------

    def present(self, rtype, obj):
        out = {"apiVersion": rtype.group_version, "kind": rtype.kind}
        out.update({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
        return out

    def _check_body(self, rtype, body):
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != rtype.group_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected API version ({rtype.group_version})")
        if kind and kind != rtype.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
        if not isinstance(body.get("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        return copy.deepcopy(body)

    # -- reads ----------------------------------------------------------------------------------

    def get(self, rtype, ns, name):
        obj = self.store.get(rtype.storage_key, ns or "", name)
        if obj is None:
            raise not_found(rtype, name)
        return self.present(rtype, obj)

    def _selectors(self, rtype, q):
        try:
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(q.get("fieldSelector"), rtype.field_selectors)
        except SelectorError as e:
            raise bad_request(str(e)) from None
        return lambda o: labels((o.get("metadata") or {}).get("labels")) and fields(o)

    def _wait_for_revision(self, rev, seconds=3.0):
        deadline = time.monotonic() + seconds
        with self.store.changed:
            while self.store.rev < rev:
                left = deadline - time.monotonic()
                if left <= 0 or self.store.stopping:
                    raise APIError(504, "Timeout", f"Too large resource version: {rev}, current: {self.store.rev}",
                                   {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
                self.store.changed.wait(left)

    def list(self, rtype, ns, q):
        match = self._selectors(rtype, q)
        rv, rv_match, cont = q.get("resourceVersion"), q.get("resourceVersionMatch"), q.get("continue")
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise bad_request("limit must be an integer") from None
        start = None
        if rv not in (None, "", "0"):
            try:
                int(rv)
            except ValueError:
                raise bad_request(f"invalid resource version: {rv}") from None
        try:
            if cont:
                if rv not in (None, ""):
                    raise bad_request("specifying resource version is not allowed when using continue")
                at, start = _decode_continue(cont)
                try:
                    rev, items = self.store.snapshot(rtype.storage_key, ns, at)
                except Expired:
                    raise APIError(410, "Expired", "The provided continue parameter is too old to display a consistent "
                                   "list result. You can start a new list without the continue parameter.") from None
            elif rv_match == "Exact":
                if rv in (None, "", "0"):
                    raise bad_request("resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\" or unset")
                self._wait_for_revision(int(rv))
                rev, items = self.store.snapshot(rtype.storage_key, ns, int(rv))
            elif rv_match not in (None, "", "NotOlderThan"):
                raise bad_request(f"unsupported resourceVersionMatch {rv_match!r}")
            elif rv not in (None, "", "0") and limit and not rv_match:
                self._wait_for_revision(int(rv))  # legacy semantics: a paged list at an exact revision
                rev, items = self.store.snapshot(rtype.storage_key, ns, int(rv))
            else:
                if rv not in (None, "", "0"):
                    self._wait_for_revision(int(rv))
                rev, items = self.store.snapshot(rtype.storage_key, ns)
        except Expired as e:
            raise APIError(410, "Expired", f"too old resource version: {e.requested} ({e.compacted})") from None
        items = [o for o in items if match(o)]
        if start is not None:
            items = [o for o in items if _meta_key(o) > start]
        meta = {"resourceVersion": str(rev)}
        if limit and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            meta["continue"] = _encode_continue(rev, _meta_key(items[-1]))
            if not q.get("labelSelector") and not q.get("fieldSelector"):
                meta["remainingItemCount"] = rest
        if rtype.custom:
            items = [self.present(rtype, o) for o in items]
        else:
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        return {"apiVersion": rtype.group_version, "kind": f"{rtype.kind}List", "metadata": meta, "items": items}

    # -- watch ----------------------------------------------------------------------------------

    def watch(self, rtype, ns, q):
        """A generator of watch events (dicts), ending at the timeout, on drop-watches or on
        shutdown. Errors after the request was accepted arrive as ERROR events, as the real
        server sends them."""
        match = self._selectors(rtype, q)
        try:
            timeout = float(q.get("timeoutSeconds") or self.watch_timeout)
        except ValueError:
            raise bad_request("timeoutSeconds must be a number") from None
        rv = q.get("resourceVersion")
        if rv not in (None, "", "0"):
            try:
                rv = int(rv)
            except ValueError:
                raise bad_request(f"invalid resource version: {rv}") from None
        return self._watch_events(rtype, ns, match, rv, timeout, _truthy(q.get("allowWatchBookmarks")),
                                  _truthy(q.get("sendInitialEvents")))

    def _bookmark(self, rtype, rev, initial_end=False):
        meta = {"resourceVersion": str(rev), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"type": "BOOKMARK", "object": {"kind": rtype.kind, "apiVersion": rtype.group_version, "metadata": meta}}

    def _watch_events(self, rtype, ns, match, rv, timeout, bookmarks, send_initial):
        store = self.store
        deadline = time.monotonic() + timeout
        skey = rtype.storage_key
        with store.lock:
            generation = store.generation
        if isinstance(rv, int):
            try:
                self._wait_for_revision(rv)
            except APIError as e:
                yield {"type": "ERROR", "object": e.status()}
                return
        with store.lock:
            if rv in (None, "", "0") or send_initial:
                sent, items = store.snapshot(skey, ns)
                initial = [{"type": "ADDED", "object": self.present(rtype, o)} for o in items if match(o)]
            elif rv < store.compacted:
                initial = None
                compacted = store.compacted
            else:
                sent, initial = rv, []
        if initial is None:
            yield {"type": "ERROR", "object": status_object(410, "Expired", f"too old resource version: {rv} ({compacted})")}
            return
        yield from initial
        if send_initial and bookmarks:
            yield self._bookmark(rtype, sent, initial_end=True)
        next_bookmark = time.monotonic() + self.bookmark_interval
        while True:
            out = []
            with store.changed:
                while True:
                    if store.stopping or store.generation != generation:
                        return
                    now = time.monotonic()
                    if now >= deadline:
                        if bookmarks:
                            out.append(self._bookmark(rtype, sent))
                        break
                    try:
                        events = store.events_after(sent)
                    except Expired as e:
                        out.append({"type": "ERROR", "object": status_object(410, "Expired", str(e))})
                        break
                    if events:
                        sent = store.rev
                        out.extend(self._translate(rtype, ns, match, events))
                        if out:
                            break
                        continue
                    if bookmarks and now >= next_bookmark:
                        sent = store.rev
                        out.append(self._bookmark(rtype, sent))
                        next_bookmark = now + self.bookmark_interval
                        break
                    wake = min(deadline, next_bookmark if bookmarks else deadline, now + 1.0)
                    store.changed.wait(max(wake - now, 0.001))
            yield from out
            if out and out[-1]["type"] in ("ERROR",) or time.monotonic() >= deadline:
                return

    def _translate(self, rtype, ns, match, events):
        out = []
        for e in events:
            if e.skey != rtype.storage_key or (ns is not None and e.namespace != ns):
                continue
            now_matches = match(e.obj)
            before = e.prev is not None and match(e.prev)
            if e.type == "ADDED":
                etype = "ADDED" if now_matches else None
            elif e.type == "DELETED":
                etype = "DELETED" if (before or now_matches) else None
            elif now_matches and before:
                etype = "MODIFIED"
            elif now_matches:
                etype = "ADDED"
            elif before:
                etype = "DELETED"
            else:
                etype = None
            if etype:
                out.append({"type": etype, "object": self.present(rtype, e.obj)})
        return out

    # -- writes ---------------------------------------------------------------------------------

    def _namespace_of(self, rtype, ns, obj):
        meta = obj.setdefault("metadata", {})
        if not rtype.namespaced:
            meta.pop("namespace", None)
            return ""
        body_ns = meta.get("namespace")
        if ns is None:
            raise bad_request("the namespace must be given in the request path")
        if body_ns and body_ns != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = ns
        return ns

    def create(self, rtype, ns, body, q):
        obj = self._check_body(rtype, body)
        ns = self._namespace_of(rtype, ns, obj)
        dry = q.get("dryRun") == "All"
        with self.store.lock:
            if rtype.namespaced and self.store.get("/namespaces", "", ns) is None:
                raise APIError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(20):
                    candidate = meta["generateName"] + "".join(random.choice(_GENERATE_CHARS) for _ in range(5))
                    if self.store.get(rtype.storage_key, ns, candidate) is None:
                        meta["name"] = candidate
                        break
            name = meta.get("name") or ""
            if name and self.store.get(rtype.storage_key, ns, name) is not None:
                raise APIError(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists',
                               {"name": name, "group": rtype.group, "kind": rtype.plural})
            return 201, self._store_new(rtype, ns, obj, dry)

    def _store_new(self, rtype, ns, obj, dry=False):
        meta = obj["metadata"]
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rtype.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rtype.has_status:
            obj.pop("status", None)
        if rtype.custom:
            obj = prune_custom(rtype, obj)
        obj["apiVersion"], obj["kind"] = rtype.group_version, rtype.kind
        if rtype.defaulter:
            rtype.defaulter(obj, None)
        errors = rtype.validate(obj)
        if errors:
            raise invalid(rtype, meta.get("name") or meta.get("generateName") or "", errors)
        if dry:
            return self.present(rtype, obj)
        stored = self.store.write(rtype.storage_key, ns, meta["name"], obj, "ADDED")
        self._after_write(rtype, ns, meta["name"])
        return self.present(rtype, stored)

    def update(self, rtype, ns, name, body, q, sub):
        obj = self._check_body(rtype, body)
        ns = self._namespace_of(rtype, ns, obj)
        if obj["metadata"].get("name") and obj["metadata"]["name"] != name:
            raise bad_request(f"the name of the object ({obj['metadata']['name']}) does not match the name on the URL ({name})")
        obj["metadata"]["name"] = name
        with self.store.lock:
            old = self.store.get(rtype.storage_key, ns, name)
            if old is None:
                if sub or not rtype.create_on_update:
                    raise not_found(rtype, name)
                return self.create(rtype, ns, obj, q)
            return self._commit(rtype, ns, name, old, obj, sub, q)

    def _commit(self, rtype, ns, name, old, new, sub, q):
        om, nm = old["metadata"], new.setdefault("metadata", {})
        if nm.get("resourceVersion") and nm["resourceVersion"] != om.get("resourceVersion"):
            raise conflict(rtype, name)
        if nm.get("uid") and nm["uid"] != om.get("uid"):
            raise conflict(rtype, name, f"Precondition failed: UID in precondition: {nm['uid']}, UID in object meta: {om.get('uid')}")
        if sub == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new, nm = merged, merged["metadata"]
        elif rtype.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "name", "namespace"):
            if k in om:
                nm[k] = om[k]
            else:
                nm.pop(k, None)
        nm.pop("managedFields", None)
        if rtype.custom:
            new = prune_custom(rtype, new)
            nm = new["metadata"]
        new["apiVersion"], new["kind"] = rtype.group_version, rtype.kind
        if rtype.defaulter and sub != "status":
            rtype.defaulter(new, old)
        if rtype.tracks_generation:
            def spec_part(o):
                return {k: v for k, v in o.items() if k not in ("metadata", "apiVersion", "kind") and not (rtype.has_status and k == "status")}
            if spec_part(new) != spec_part(old):
                nm["generation"] = int(om.get("generation") or 0) + 1
        errors = rtype.validate(new)
        if errors:
            raise invalid(rtype, name, errors)
        nm["resourceVersion"] = om.get("resourceVersion")
        if _strip_volatile(new) == _strip_volatile(old):
            return 200, self.present(rtype, old)  # a no-op update does not move the revision
        if q.get("dryRun") == "All":
            return 200, self.present(rtype, new)
        if om.get("deletionTimestamp") and not nm.get("finalizers"):
            stored = self.store.write(rtype.storage_key, ns, name, new, "DELETED")
            self._after_delete(rtype, ns, name, new)
            return 200, self.present(rtype, stored)
        stored = self.store.write(rtype.storage_key, ns, name, new, "MODIFIED")
        self._after_write(rtype, ns, name)
        return 200, self.present(rtype, stored)

    def patch(self, rtype, ns, name, raw, content_type, q, sub):
        ct = (content_type or "").split(";")[0].strip().lower()
        ns = ns or ""
        if ct not in ("application/merge-patch+json", "application/json-patch+json",
                      "application/strategic-merge-patch+json", "application/apply-patch+yaml"):
            raise APIError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                           + ("" if rtype.custom else ", application/strategic-merge-patch+json"))
        if ct == "application/strategic-merge-patch+json" and rtype.custom:
            raise APIError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources; use merge patch")
        try:
            patch = yaml.safe_load(raw) if ct == "application/apply-patch+yaml" else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"error decoding patch: {e}") from None
        with self.store.lock:
            old = self.store.get(rtype.storage_key, ns, name)
            if ct == "application/apply-patch+yaml":
                if not q.get("fieldManager"):
                    raise bad_request("PATCH, PUT or POST requests of type application/apply-patch+yaml must contain a fieldManager")
                applied = self._check_body(rtype, patch)
                if applied.get("metadata", {}).get("name") not in (None, name):
                    raise bad_request("the name of the object does not match the name on the URL")
                applied["metadata"]["name"] = name
                if old is None:
                    if sub:
                        raise not_found(rtype, name)
                    return self.create(rtype, ns or None, applied, q)
                new = strategic_merge_patch(old, applied, rtype.smp)
            else:
                if old is None:
                    raise not_found(rtype, name)
                try:
                    if ct == "application/merge-patch+json":
                        new = merge_patch(old, patch)
                    elif ct == "application/json-patch+json":
                        new = json_patch(old, patch)
                    else:
                        new = strategic_merge_patch(old, patch, rtype.smp)
                except PatchError as e:
                    if e.conflict:
                        raise conflict(rtype, name, str(e)) from None
                    raise APIError(422, "Invalid", str(e)) from None
            if not isinstance(new, dict):
                raise APIError(422, "Invalid", "the patched object must be a JSON object")
            new.setdefault("metadata", {})
            if new["metadata"].get("name") != name:
                raise bad_request("the patch must not change metadata.name")
            if not new["metadata"].get("resourceVersion"):
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self._commit(rtype, ns, name, old, new, sub, q)

    def delete(self, rtype, ns, name, options, q):
        ns = ns or ""
        options = options or {}
        policy = q.get("propagationPolicy") or options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        dry = q.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        with self.store.lock:
            old = self.store.get(rtype.storage_key, ns, name)
            if old is None:
                raise not_found(rtype, name)
            om = old["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != om.get("uid"):
                raise conflict(rtype, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {om.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != om.get("resourceVersion"):
                raise conflict(rtype, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                               f"ResourceVersion in object meta: {om.get('resourceVersion')}")
            if dry:
                return 200, self.present(rtype, old)
            if om.get("finalizers"):
                if not om.get("deletionTimestamp"):
                    om["deletionTimestamp"] = now_rfc3339()
                    om["deletionGracePeriodSeconds"] = 0
                    old = self.store.write(rtype.storage_key, ns, name, old, "MODIFIED")
                return 202, self.present(rtype, old)
            stored = self._delete_now(rtype, ns, name, old)
            if rtype.returns_deleted_object:
                return 200, self.present(rtype, stored)
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": name, "group": rtype.group, "kind": rtype.plural, "uid": om.get("uid")}}

    def delete_collection(self, rtype, ns, q):
        listed = self.list(rtype, ns, {k: v for k, v in q.items() if k in ("labelSelector", "fieldSelector")})
        for item in listed["items"]:
            m = item["metadata"]
            try:
                self.delete(rtype, m.get("namespace"), m["name"], {}, q)
            except APIError as e:
                if e.code != 404:
                    raise
        return 200, listed

    def _delete_now(self, rtype, ns, name, old):
        if rtype.kind == "Namespace" and not rtype.group:
            for skey, bucket in list(self.store.objects.items()):
                for (ons, oname), obj in list(bucket.items()):
                    if ons == name:
                        self.store.write(skey, ons, oname, obj, "DELETED")
        stored = self.store.write(rtype.storage_key, ns, name, old, "DELETED")
        self._after_delete(rtype, ns, name, old)
        return stored

    # -- controllers ----------------------------------------------------------------------------

    def _after_write(self, rtype, ns, name):
        if rtype.kind == "CustomResourceDefinition":
            self._register_crd(self.store.get(rtype.storage_key, "", name))
        elif not rtype.group and rtype.plural in ("services", "endpoints") and self.mirror_endpoints:
            self._mirror(ns, name)

    def _after_delete(self, rtype, ns, name, old):
        if rtype.kind == "CustomResourceDefinition":
            for t in self.custom.pop(name, []):
                self.types.pop((t.group, t.version, t.plural), None)
            skey = f"{old['spec']['group']}/{old['spec']['names']['plural']}"
            for (ons, oname), obj in list(self.store.objects.get(skey, {}).items()):
                self.store.write(skey, ons, oname, obj, "DELETED")
        elif not rtype.group and rtype.plural in ("services", "endpoints") and self.mirror_endpoints:
            self._mirror(ns, name)

    def _register_crd(self, crd):
        name = crd["metadata"]["name"]
        for t in self.custom.pop(name, []):
            self.types.pop((t.group, t.version, t.plural), None)
        types = custom_types(crd)
        self.custom[name] = types
        for t in types:
            self.types[(t.group, t.version, t.plural)] = t

    def _system_create(self, rtype, obj):
        obj = copy.deepcopy(obj)
        ns = (obj.get("metadata") or {}).get("namespace", "") if rtype.namespaced else ""
        return self._store_new(rtype, ns, obj)

    def _mirror(self, ns, name):
        """What the EndpointSliceMirroring controller does: the hand-written Endpoints of a
        Service without a selector become EndpointSlices (one per subset and address family)."""
        slice_type = self.types[("discovery.k8s.io", "v1", "endpointslices")]
        svc = self.store.get("/services", ns, name)
        ep = self.store.get("/endpoints", ns, name)
        want = []
        if svc is not None and not (svc.get("spec") or {}).get("selector") and ep is not None \
                and ((ep["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/skip-mirror") != "true"):
            for subset in ep.get("subsets") or []:
                ports = [{k: v for k, v in {"name": p.get("name"), "port": p.get("port"), "protocol": p.get("protocol", "TCP"),
                                             "appProtocol": p.get("appProtocol")}.items() if v is not None}
                         for p in subset.get("ports") or []]
                for family in ("IPv4", "IPv6"):
                    endpoints = []
                    for kind, ready in (("addresses", True), ("notReadyAddresses", False)):
                        for a in subset.get(kind) or []:
                            ip = a.get("ip", "")
                            if (":" in ip) != (family == "IPv6"):
                                continue
                            e = {"addresses": [ip], "conditions": {"ready": ready}}
                            for src, dst in (("hostname", "hostname"), ("nodeName", "nodeName"), ("targetRef", "targetRef")):
                                if a.get(src):
                                    e[dst] = a[src]
                            endpoints.append(e)
                    if endpoints:
                        want.append({"addressType": family, "endpoints": endpoints, "ports": ports})
        have = sorted((o for o in self.store.objects.get(slice_type.storage_key, {}).values()
                       if o["metadata"].get("namespace") == ns
                       and (o["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name
                       and (o["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") == MIRROR_MANAGER),
                      key=lambda o: o["metadata"]["name"])
        labels = {**((ep or {}).get("metadata", {}).get("labels") or {}),
                  "kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": MIRROR_MANAGER}
        for i, body in enumerate(want):
            if i < len(have):
                cur = copy.deepcopy(have[i])
                cur.update(body)
                cur["metadata"]["labels"] = labels
                self._commit(slice_type, ns, cur["metadata"]["name"], have[i], cur, None, {})
            else:
                self._store_new(slice_type, ns, {"metadata": {
                    "name": f"{name}-{''.join(random.choice(_GENERATE_CHARS) for _ in range(5))}",
                    "namespace": ns, "labels": labels,
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": name,
                                         "uid": ep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
                    **body})
        for extra in have[len(want):]:
            self.store.write(slice_type.storage_key, ns, extra["metadata"]["name"], extra, "DELETED")
