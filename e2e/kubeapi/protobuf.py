"""Decoding of the protobuf request bodies kubectl's typed commands send (`kubectl create
namespace|secret|service|ingress`), for the kinds that have such a generator: Namespace, Secret,
Service, Ingress. The wire format is Kubernetes' envelope (magic `k8s\\0`, then a
runtime.Unknown holding the type and the raw message); field numbers come from the API's
generated.proto files. The result is the JSON form of the object, with zero values omitted as
the JSON encoding omits them. Other kinds answer 415 (send JSON)."""
import base64
from datetime import datetime, timezone

MAGIC = b"k8s\x00"


class ProtobufError(Exception):
    pass


def _varint(data, i):
    shift = result = 0
    while True:
        if i >= len(data):
            raise ProtobufError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data):
    """Yields (field number, wire type, value) of one message."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value = data[i:i + length]
            if len(value) != length:
                raise ProtobufError("truncated field")
            i += length
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


# Schemas: field number -> (json name, type, repeated). Types: "string", "bytes", "int", "bool",
# "map" (string->string), "mapbytes" (string->bytes, base64 in JSON), "time", "intorstring",
# "inline" (a message whose fields appear in the parent), or a nested schema dict.
_TIME = "time"
OWNER_REFERENCE = {1: ("kind", "string", False), 3: ("name", "string", False), 4: ("uid", "string", False),
                   5: ("apiVersion", "string", False), 6: ("controller", "bool", False),
                   7: ("blockOwnerDeletion", "bool", False)}
OBJECT_META = {1: ("name", "string", False), 2: ("generateName", "string", False), 3: ("namespace", "string", False),
               5: ("uid", "string", False), 6: ("resourceVersion", "string", False), 7: ("generation", "int", False),
               8: ("creationTimestamp", _TIME, False), 9: ("deletionTimestamp", _TIME, False),
               10: ("deletionGracePeriodSeconds", "int", False), 11: ("labels", "map", False),
               12: ("annotations", "map", False), 13: ("ownerReferences", OWNER_REFERENCE, True),
               14: ("finalizers", "string", True)}
NAMESPACE = {1: ("metadata", OBJECT_META, False), 2: ("spec", {1: ("finalizers", "string", True)}, False),
             3: ("status", {1: ("phase", "string", False)}, False)}
SECRET = {1: ("metadata", OBJECT_META, False), 2: ("data", "mapbytes", False), 3: ("type", "string", False),
          4: ("stringData", "map", False), 5: ("immutable", "bool", False)}
SERVICE_PORT = {1: ("name", "string", False), 2: ("protocol", "string", False), 3: ("port", "int", False),
                4: ("targetPort", "intorstring", False), 5: ("nodePort", "int", False), 6: ("appProtocol", "string", False)}
SERVICE = {1: ("metadata", OBJECT_META, False), 2: ("spec", {
    1: ("ports", SERVICE_PORT, True), 2: ("selector", "map", False), 3: ("clusterIP", "string", False),
    4: ("type", "string", False), 5: ("externalIPs", "string", True), 7: ("sessionAffinity", "string", False),
    8: ("loadBalancerIP", "string", False), 9: ("loadBalancerSourceRanges", "string", True),
    10: ("externalName", "string", False), 11: ("externalTrafficPolicy", "string", False),
    13: ("publishNotReadyAddresses", "bool", False), 17: ("ipFamilyPolicy", "string", False),
    18: ("clusterIPs", "string", True), 19: ("ipFamilies", "string", True), 22: ("internalTrafficPolicy", "string", False),
}, False)}
INGRESS_BACKEND = {4: ("service", {1: ("name", "string", False),
                                   2: ("port", {1: ("name", "string", False), 2: ("number", "int", False)}, False)}, False),
                   3: ("resource", {1: ("apiGroup", "string", False), 2: ("kind", "string", False),
                                    3: ("name", "string", False)}, False)}
INGRESS = {1: ("metadata", OBJECT_META, False), 2: ("spec", {
    1: ("defaultBackend", INGRESS_BACKEND, False),
    2: ("tls", {1: ("hosts", "string", True), 2: ("secretName", "string", False)}, True),
    3: ("rules", {1: ("host", "string", False), 2: ("", {1: ("http", {1: ("paths", {
        1: ("path", "string", False), 3: ("pathType", "string", False), 2: ("backend", INGRESS_BACKEND, False),
    }, True)}, False)}, False)}, True),
    4: ("ingressClassName", "string", False),
}, False)}

SCHEMAS = {("v1", "Namespace"): NAMESPACE, ("v1", "Secret"): SECRET, ("v1", "Service"): SERVICE,
           ("networking.k8s.io/v1", "Ingress"): INGRESS}


def _decode(data, schema):
    out = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            continue
        name, kind, repeated = schema[number]
        if kind == "map" or kind == "mapbytes":
            entry = {n: v for n, _, v in _fields(value)}
            key = entry.get(1, b"").decode()
            raw = entry.get(2, b"")
            out.setdefault(name, {})[key] = base64.b64encode(raw).decode() if kind == "mapbytes" else raw.decode()
            continue
        if kind == "string":
            decoded = value.decode()
        elif kind == "bytes":
            decoded = base64.b64encode(value).decode()
        elif kind == "int":
            decoded = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            decoded = bool(value)
        elif kind == _TIME:
            parts = {n: v for n, _, v in _fields(value)}
            seconds = parts.get(1, 0)
            decoded = (datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else None)
        elif kind == "intorstring":
            parts = {n: v for n, _, v in _fields(value)}
            decoded = parts.get(3, b"").decode() if parts.get(1, 0) == 1 else parts.get(2, 0)
        else:
            decoded = _decode(value, kind)
            if name == "":  # an inlined message: its fields belong to the parent
                out.update(decoded)
                continue
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return {k: v for k, v in out.items() if v not in ("", None, {}, []) and v is not False
            and not (k != "port" and v == 0 and not isinstance(v, bool))}


def decode(body):
    """The JSON form of a protobuf-encoded object, or ProtobufError."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf envelope")
    unknown = {n: v for n, _, v in _fields(body[len(MAGIC):])}
    type_meta = {n: v.decode() for n, _, v in _fields(unknown.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    schema = SCHEMAS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"protobuf bodies of {api_version} {kind} are not supported; send JSON")
    obj = _decode(unknown.get(2, b""), schema)
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj
