"""The resources the double serves: the built-in kinds a Switchyard controller and kubectl use,
plus the custom resources that CustomResourceDefinitions declare. Each kind carries what the
real registry strategy decides for it: scope, status subresource, generation tracking, create
on update, the strategic-merge list rules, the supported field selectors, defaults and the
validation that makes the real server answer 422."""
import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Metadata lists common to every kind (strategic merge).
_META_SMP = {
    "metadata.finalizers": {"strategy": "merge"},
    "metadata.ownerReferences": {"strategy": "merge", "key": "uid"},
}


@dataclass
class Invalid:
    field: str
    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported
    message: str


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: list = field(default_factory=list)
    has_status: bool = False
    tracks_generation: bool = False
    create_on_update: bool = False
    custom: bool = False  # a custom resource: no strategic merge patch, schema pruning
    smp: dict = field(default_factory=dict)
    field_selectors: tuple = ("metadata.name", "metadata.namespace")
    name_is_label: bool = False  # DNS-1123 label instead of subdomain
    defaulter: object = None
    validator: object = None
    schema: dict = None  # openAPIV3Schema of a custom resource version
    categories: list = field(default_factory=list)
    returns_deleted_object: bool = False

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self):
        """Versions of one group/resource share one storage (like etcd's key prefix)."""
        return f"{self.group}/{self.plural}"

    @property
    def qualified(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self):
        out = [{
            "name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
            "kind": self.kind, "verbs": VERBS,
        }]
        if self.short_names:
            out[0]["shortNames"] = list(self.short_names)
        if self.categories:
            out[0]["categories"] = list(self.categories)
        if self.has_status:
            out.append({"name": f"{self.plural}/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out

    def validate(self, obj):
        errors = []
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        pattern, limit = (_DNS_LABEL, 63) if self.name_is_label else (_DNS_SUBDOMAIN, 253)
        if not name:
            errors.append(Invalid("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
        elif len(name) > limit or not pattern.match(name):
            errors.append(Invalid("metadata.name", "FieldValueInvalid",
                                  f"Invalid value: {name!r}: a lowercase RFC 1123 "
                                  f"{'label' if self.name_is_label else 'subdomain'} must consist of lower case "
                                  "alphanumeric characters, '-' or '.'"))
        for m in ("labels", "annotations"):
            vals = meta.get(m)
            if vals is not None and (not isinstance(vals, dict) or not all(isinstance(v, str) for v in vals.values())):
                errors.append(Invalid(f"metadata.{m}", "FieldValueInvalid", "Invalid value: values must be strings"))
        if self.validator:
            errors += self.validator(obj)
        if self.schema is not None:
            for part in ("spec", "status"):
                if part in obj:
                    sub = (self.schema.get("properties") or {}).get(part)
                    if sub is not None:
                        errors += validate_schema(sub, obj[part], part)
            for req in self.schema.get("required") or []:
                if req not in obj:
                    errors.append(Invalid(req, "FieldValueRequired", "Required value"))
        return errors


# --- defaults and validation of the built-in kinds --------------------------------------------

def _req(errors, cond, path, message="Required value"):
    if not cond:
        errors.append(Invalid(path, "FieldValueRequired", message))


class _ServiceIPs:
    """Cluster IPs come from a loopback range here (a real cluster uses its service CIDR,
    e.g. 10.96.0.0/12): the double must never make a test send traffic off the machine."""
    next = 1

    @classmethod
    def allocate(cls):
        n = cls.next
        cls.next += 1
        return f"127.96.{(n >> 8) & 255}.{n & 255}"


def _default_service(obj, old):
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if old is not None and "clusterIP" not in spec:
            spec["clusterIP"] = (old.get("spec") or {}).get("clusterIP")
            spec["clusterIPs"] = (old.get("spec") or {}).get("clusterIPs")
        if not spec.get("clusterIP"):
            spec["clusterIP"] = _ServiceIPs.allocate()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
    obj.setdefault("status", {"loadBalancer": {}})


def _validate_service(obj):
    errors = []
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName":
        _req(errors, spec.get("externalName"), "spec.externalName")
        return errors
    ports = spec.get("ports")
    _req(errors, isinstance(ports, list) and ports, "spec.ports")
    names = set()
    for i, p in enumerate(ports or []):
        if not isinstance(p, dict) or not isinstance(p.get("port"), int) or not 0 < p["port"] < 65536:
            errors.append(Invalid(f"spec.ports[{i}].port", "FieldValueInvalid",
                                  "Invalid value: must be between 1 and 65535, inclusive"))
            continue
        if len(ports) > 1:
            _req(errors, p.get("name"), f"spec.ports[{i}].name")
        if p.get("name") in names:
            errors.append(Invalid(f"spec.ports[{i}].name", "FieldValueDuplicate", f"Duplicate value: {p['name']!r}"))
        names.add(p.get("name"))
    return errors


def _validate_ip(errors, value, path):
    try:
        ipaddress.ip_address(value)
    except (ValueError, TypeError):
        errors.append(Invalid(path, "FieldValueInvalid", f"Invalid value: {value!r}: must be a valid IP address"))


def _validate_endpoints(obj):
    errors = []
    for i, s in enumerate(obj.get("subsets") or []):
        for kind in ("addresses", "notReadyAddresses"):
            for j, a in enumerate((s or {}).get(kind) or []):
                _validate_ip(errors, (a or {}).get("ip"), f"subsets[{i}].{kind}[{j}].ip")
        for j, p in enumerate((s or {}).get("ports") or []):
            if not isinstance((p or {}).get("port"), int):
                errors.append(Invalid(f"subsets[{i}].ports[{j}].port", "FieldValueInvalid", "Invalid value"))
    return errors


def _default_endpointslice(obj, old):
    for p in obj.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for e in obj.get("endpoints") or []:
        if isinstance(e, dict):
            e.setdefault("conditions", {})


def _validate_endpointslice(obj):
    errors = []
    family = obj.get("addressType")
    if family not in ("IPv4", "IPv6", "FQDN"):
        errors.append(Invalid("addressType", "FieldValueNotSupported",
                              f"Unsupported value: {family!r}: supported values: \"FQDN\", \"IPv4\", \"IPv6\""))
    for i, e in enumerate(obj.get("endpoints") or []):
        addrs = (e or {}).get("addresses")
        _req(errors, isinstance(addrs, list) and addrs, f"endpoints[{i}].addresses")
        for j, a in enumerate(addrs or []):
            if family in ("IPv4", "IPv6"):
                try:
                    ok = ipaddress.ip_address(a).version == (4 if family == "IPv4" else 6)
                except (ValueError, TypeError):
                    ok = False
                if not ok:
                    errors.append(Invalid(f"endpoints[{i}].addresses[{j}]", "FieldValueInvalid",
                                          f"Invalid value: {a!r}: must be a valid {family} address"))
    return errors


def _default_secret(obj, old):
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {}) or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data


def _validate_secret(obj):
    errors = []
    data = obj.get("data") or {}
    for k, v in data.items():
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, TypeError, ValueError):
            errors.append(Invalid(f"data[{k}]", "FieldValueInvalid", "Invalid value: must be base64"))
    if obj.get("type") == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            _req(errors, k in data, f"data[{k}]")
    return errors


_PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


def _validate_ingress(obj):
    errors = []
    spec = obj.get("spec") or {}

    def backend(b, path):
        if not isinstance(b, dict):
            return
        svc, res = b.get("service"), b.get("resource")
        if (svc is None) == (res is None):
            errors.append(Invalid(path, "FieldValueInvalid", "Invalid value: exactly one of service or resource is required"))
        if isinstance(svc, dict):
            _req(errors, svc.get("name"), f"{path}.service.name")
            port = svc.get("port") or {}
            if ("name" in port) == ("number" in port):
                errors.append(Invalid(f"{path}.service.port", "FieldValueInvalid",
                                      "Invalid value: exactly one of name or number is required"))
    if "defaultBackend" in spec:
        backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(spec.get("rules") or []):
        host = (rule or {}).get("host")
        if host is not None and (not isinstance(host, str) or not re.match(r"^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", host)):
            errors.append(Invalid(f"spec.rules[{i}].host", "FieldValueInvalid", f"Invalid value: {host!r}"))
        for j, p in enumerate(((rule or {}).get("http") or {}).get("paths") or []):
            where = f"spec.rules[{i}].http.paths[{j}]"
            pt = (p or {}).get("pathType")
            if pt is None:
                errors.append(Invalid(f"{where}.pathType", "FieldValueRequired", "Required value: pathType must be specified"))
            elif pt not in _PATH_TYPES:
                errors.append(Invalid(f"{where}.pathType", "FieldValueNotSupported",
                                      f"Unsupported value: {pt!r}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""))
            path = (p or {}).get("path")
            if pt in ("Exact", "Prefix") and (not isinstance(path, str) or not path.startswith("/")):
                errors.append(Invalid(f"{where}.path", "FieldValueInvalid", f"Invalid value: {path!r}: must be an absolute path"))
            backend((p or {}).get("backend"), f"{where}.backend")
    return errors


def _default_namespace(obj, old):
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = (old or {}).get("status") or {"phase": "Active"}
    labels = obj.setdefault("metadata", {}).setdefault("labels", {}) or {}
    labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
    obj["metadata"]["labels"] = labels


def _validate_lease(obj):
    errors = []
    d = (obj.get("spec") or {}).get("leaseDurationSeconds")
    if d is not None and (not isinstance(d, int) or d <= 0):
        errors.append(Invalid("spec.leaseDurationSeconds", "FieldValueInvalid", "Invalid value: must be greater than 0"))
    return errors


def _validate_crd(obj):
    errors = []
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    _req(errors, group and "." in group, "spec.group", "Required value: should be a domain with at least one dot")
    _req(errors, names.get("plural"), "spec.names.plural")
    _req(errors, names.get("kind"), "spec.names.kind")
    if names.get("plural") and group and (obj.get("metadata") or {}).get("name") != f"{names['plural']}.{group}":
        errors.append(Invalid("metadata.name", "FieldValueInvalid",
                              f"Invalid value: must be spec.names.plural+\".\"+spec.group"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(Invalid("spec.scope", "FieldValueNotSupported", "Unsupported value: supported values: \"Cluster\", \"Namespaced\""))
    versions = spec.get("versions") or []
    _req(errors, versions, "spec.versions")
    if versions and sum(1 for v in versions if (v or {}).get("storage")) != 1:
        errors.append(Invalid("spec.versions", "FieldValueInvalid", "Invalid value: must have exactly one version marked as storage version"))
    return errors


def _default_crd(obj, old):
    spec = obj.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", (names.get("kind") or "").lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    spec["names"] = names
    stored = sorted({v.get("name") for v in spec.get("versions") or [] if v.get("storage")} |
                    set(((old or {}).get("status") or {}).get("storedVersions") or []))
    obj["status"] = {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": obj["metadata"].get("creationTimestamp")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": obj["metadata"].get("creationTimestamp")},
        ],
        "storedVersions": stored,
    }


_CONDITIONS = {"strategy": "merge", "key": "type"}

BUILTINS = [
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ["ns"], has_status=True,
                 name_is_label=True, defaulter=_default_namespace,
                 smp={"status.conditions": _CONDITIONS}, field_selectors=("metadata.name", "status.phase")),
    ResourceType("", "v1", "services", "service", "Service", True, ["svc"], has_status=True, name_is_label=True,
                 defaulter=_default_service, validator=_validate_service, categories=["all"],
                 smp={"spec.ports": {"strategy": "merge", "key": "port"}, "status.conditions": _CONDITIONS}),
    ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", True, ["ep"], create_on_update=True,
                 validator=_validate_endpoints),
    ResourceType("", "v1", "secrets", "secret", "Secret", True, defaulter=_default_secret, validator=_validate_secret,
                 field_selectors=("metadata.name", "metadata.namespace", "type")),
    ResourceType("", "v1", "events", "event", "Event", True, ["ev"], create_on_update=True,
                 field_selectors=("metadata.name", "metadata.namespace", "involvedObject.kind",
                                  "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                                  "involvedObject.apiVersion", "involvedObject.resourceVersion",
                                  "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True,
                 tracks_generation=True, defaulter=_default_endpointslice, validator=_validate_endpointslice),
    ResourceType("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", True, ["ing"], has_status=True,
                 tracks_generation=True, validator=_validate_ingress),
    ResourceType("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", False,
                 tracks_generation=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, validator=_validate_lease),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
                 "CustomResourceDefinition", False, ["crd", "crds"], has_status=True, tracks_generation=True,
                 defaulter=_default_crd, validator=_validate_crd, categories=["api-extensions"]),
]
for _t in BUILTINS:
    _t.smp = {**_META_SMP, **_t.smp}

# Preferred version of each built-in group, in the order /apis lists them.
BUILTIN_GROUPS = ["networking.k8s.io", "discovery.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"]


def custom_types(crd):
    """The ResourceTypes a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        schema = ((v.get("schema") or {}).get("openAPIV3Schema")) or None
        out.append(ResourceType(
            spec["group"], v["name"], names["plural"], names.get("singular") or names["kind"].lower(),
            names["kind"], spec.get("scope") == "Namespaced", list(names.get("shortNames") or []),
            has_status="status" in ((v.get("subresources") or {})), tracks_generation=True, custom=True,
            schema=schema, categories=list(names.get("categories") or []), returns_deleted_object=True,
            smp=dict(_META_SMP)))
    return out


# --- OpenAPI v3 structural schema: validation and pruning of custom resources -----------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def validate_schema(schema, value, path):
    errors = []
    if value is None:
        if not schema.get("nullable"):
            errors.append(Invalid(path, "FieldValueTypeInvalid", "Invalid value: \"null\": must not be null"))
        return errors
    if schema.get("x-kubernetes-int-or-string"):
        if not (_TYPES["integer"](value) or isinstance(value, str)):
            errors.append(Invalid(path, "FieldValueTypeInvalid", "Invalid value: must be an integer or a string"))
        return errors
    t = schema.get("type")
    if t and t in _TYPES and not _TYPES[t](value):
        errors.append(Invalid(path, "FieldValueTypeInvalid", f"Invalid value: {type(value).__name__}: {path} in body must be of type {t}"))
        return errors
    if "enum" in schema and value not in schema["enum"]:
        errors.append(Invalid(path, "FieldValueNotSupported", f"Unsupported value: {value!r}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(Invalid(path, "FieldValueInvalid", f"Invalid value: {value}: should be greater than or equal to {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(Invalid(path, "FieldValueInvalid", f"Invalid value: {value}: should be less than or equal to {schema['maximum']}"))
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(Invalid(path, "FieldValueInvalid", f"Invalid value: {value!r}: should match {schema['pattern']!r}"))
    if isinstance(value, dict):
        for req in schema.get("required") or []:
            if req not in value:
                errors.append(Invalid(f"{path}.{req}", "FieldValueRequired", "Required value"))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                errors += validate_schema(props[k], v, f"{path}.{k}")
            elif isinstance(extra, dict):
                errors += validate_schema(extra, v, f"{path}.{k}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errors += validate_schema(schema["items"], v, f"{path}[{i}]")
    return errors


def prune(schema, value):
    """Drops fields the schema does not declare, as the server does for structural schemas."""
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and extra is None:
            return value if schema.get("type") != "object" else {}
        out = {}
        for k, v in value.items():
            if props and k in props:
                out[k] = prune(props[k], v)
            elif isinstance(extra, dict):
                out[k] = prune(extra, v)
            elif extra is True:
                out[k] = v
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], v) for v in value]
    return value


def prune_custom(rtype, obj):
    if rtype.schema is None:
        return obj
    props = rtype.schema.get("properties") or {}
    if rtype.schema.get("x-kubernetes-preserve-unknown-fields"):
        return obj
    out = {k: v for k, v in obj.items() if k in ("apiVersion", "kind", "metadata")}
    for k, v in obj.items():
        if k in props:
            out[k] = prune(props[k], v)
    return out
