"""The four patch formats the Kubernetes API server accepts, on plain JSON values.

- JSON merge patch (RFC 7386): application/merge-patch+json.
- JSON patch (RFC 6902): application/json-patch+json.
- Strategic merge patch: application/strategic-merge-patch+json. The faithful subset: maps merge
  recursively, null deletes a key; a list is merged by its merge key, or as a set for a list of
  scalars with strategy `merge`, when the kind's schema (kinds.py) declares it, and replaced
  otherwise; the directives `$patch: replace|delete|merge`, `$deleteFromPrimitiveList/<field>`,
  `$setElementOrder/<field>` and `$retainKeys` are honoured. Not modelled: `$patch` inside lists
  of scalars, and merge keys on lists nested inside lists that are not themselves merged.
- Server-side apply (application/apply-patch+yaml): approximated as a strategic merge of the
  applied configuration onto the live object, without field ownership (see server.py).
"""
import copy


class PatchError(Exception):
    """A patch that cannot be applied (the server answers 422, or 409 for a failed test op)."""

    def __init__(self, message, conflict=False):
        super().__init__(message)
        self.conflict = conflict


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 -------------------------------------------------------------------------------

def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, tokens, path):
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"path {path!r} does not exist")
            cur = cur[t]
        elif isinstance(cur, list):
            i = _index(t, len(cur) - 1, path)
            cur = cur[i]
        else:
            raise PatchError(f"path {path!r} does not exist")
    return cur


def _index(token, maximum, path):
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r} in {path!r}")
    i = int(token)
    if i > maximum:
        raise PatchError(f"array index {i} out of bounds in {path!r}")
    return i


def _add(doc, path, value):
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(last, len(parent), path), value)
    else:
        raise PatchError(f"path {path!r} does not exist")
    return doc


def _remove(doc, path):
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent) - 1, path))
    raise PatchError(f"path {path!r} does not exist")


def json_patch(target, operations):
    """RFC 6902; operations apply in order on a copy, all or nothing."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for n, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {n}: needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {n} ({kind}): needs 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            tokens = _pointer(path)
            if not tokens:
                doc = copy.deepcopy(op["value"])
            else:
                _walk(doc, tokens, path)  # must exist
                _remove(doc, path)
                doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {n} ({kind}): needs 'from'")
            value = copy.deepcopy(_walk(doc, _pointer(op["from"]), op["from"]))
            if kind == "move":
                _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op["value"]:
                raise PatchError(f"test operation failed at {path!r}", conflict=True)
        else:
            raise PatchError(f"operation {n}: unknown op {kind!r}")
    return doc


# --- strategic merge patch -------------------------------------------------------------------

def strategic_merge_patch(target, patch, schema, path=""):
    """Applies a strategic merge patch. schema maps a dotted field path ('spec.ports',
    'metadata.finalizers'; list elements add nothing to the path) to a dict
    {'strategy': 'merge'|'retainKeys'|..., 'key': mergeKey}; paths not in it replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target)
    retain = patch.get("$retainKeys")
    orders = {}
    deletes = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            deletes[key.split("/", 1)[1]] = value
            continue
        sub = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, schema, sub)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, schema.get(sub), schema, sub)
        else:
            result[key] = value
    for key, values in deletes.items():
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    for key, order in orders.items():
        if isinstance(result.get(key), list) and isinstance(order, list):
            result[key] = _reorder(result[key], order, (schema.get(f"{path}.{key}" if path else key) or {}).get("key"))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current, patch, rule, schema, path):
    if not rule or rule.get("strategy") != "merge" or not isinstance(current, list):
        if rule and rule.get("strategy") == "merge":
            current = []
        else:
            return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and v.get("$patch"))]
    key = rule.get("key")
    result = copy.deepcopy(current)
    if not key:  # a set of scalars
        for v in patch:
            if v not in result:
                result.append(copy.deepcopy(v))
        return result
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{path}: an element of a list merged by {key!r} must be an object")
        if item.get("$patch") == "replace":
            return [copy.deepcopy({k: v for k, v in i.items() if k != "$patch"}) for i in patch
                    if isinstance(i, dict)]
        if key not in item:
            raise PatchError(f"{path}: element has no merge key {key!r}")
        found = next((i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if found is not None:
                result.pop(found)
            continue
        if found is None:
            result.append(strategic_merge_patch({}, item, schema, path))
        else:
            result[found] = strategic_merge_patch(result[found], item, schema, path)
    return result


def _reorder(items, order, key):
    def ident(v):
        return v.get(key) if key and isinstance(v, dict) else v
    ranked = {repr(o.get(key) if key and isinstance(o, dict) else o): n for n, o in enumerate(order)}
    return sorted(items, key=lambda v: ranked.get(repr(ident(v)), len(ranked)))
