"""Label and field selectors as the API server parses them (the subset kubectl and controllers
use): label `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; field `f=v`,
`f==v`, `f!=v` on the fields a kind supports."""
import re


class SelectorError(Exception):
    pass


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)$")
_CMP = re.compile(r"^([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)$")
_EXISTS = re.compile(r"^(!?)([A-Za-z0-9_./-]+)$")


def parse_label_selector(text):
    """Returns a predicate over a labels dict."""
    reqs = []
    for part in _split_top(text or ""):
        m = _SET.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((key, op, vals))
            continue
        m = _CMP.match(part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, m.group(3)))
            continue
        m = _EXISTS.match(part)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", None))
            continue
        raise SelectorError(f"unable to parse requirement: {part!r}")

    def match(labels):
        labels = labels or {}
        for key, op, val in reqs:
            have = key in labels
            v = labels.get(key)
            if op == "=" and v != val:
                return False
            if op == "!=" and have and v == val:
                return False
            if op == "in" and (not have or v not in val):
                return False
            if op == "notin" and have and v in val:
                return False
            if op == "exists" and not have:
                return False
            if op == "!exists" and have:
                return False
        return True
    return match


def _get(obj, dotted):
    cur = obj
    for p in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text, supported):
    """Returns a predicate over an object; unsupported fields raise SelectorError as the
    server's 400 `field label not supported`."""
    reqs = []
    for part in _split_top(text or ""):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise SelectorError(f"invalid selector: {part!r}")
        field, op, value = m.group(1), m.group(2), m.group(3)
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append((field, op != "!=", value))

    def match(obj):
        return all((_get(obj, f) == v) == eq for f, eq, v in reqs)
    return match
