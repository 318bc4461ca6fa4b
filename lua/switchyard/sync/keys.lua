-- Redis key schema, edge side. The one description is redis/README.md; the controller's
-- copy is Sources/SwitchyardCore/KeySchema.swift, and a test keeps the two in agreement.
-- Pure: no ngx, no I/O; may be required from any phase.

local _M = {}

local BASE = "switchyard:{cfg}:"

_M.base = BASE
_M.version = BASE .. "version"
_M.digest = BASE .. "digest"
_M.epoch = BASE .. "epoch"
_M.adopt = BASE .. "adopt"
_M.hashes = BASE .. "hashes"
_M.owners = BASE .. "owners"   -- who may change an object (written by sy_apply; edges ignore it)
_M.routes = BASE .. "routes"
_M.upstreams = BASE .. "upstreams"
_M.certificates = BASE .. "certificates"
_M.streams = BASE .. "streams"   -- TCP/UDP services (docs/stream.md): held for the digest only
_M.uses = BASE .. "uses"
_M.changes = BASE .. "changes"
_M.events = BASE .. "events"
_M.edges = BASE .. "edges"
_M.history = BASE .. "history"               -- the change history (sy_apply; edges ignore it)
_M.history_bytes = BASE .. "history_bytes"
_M.health_version = BASE .. "health_version"
_M.health_events = BASE .. "health_events"
_M.health_upstreams = BASE .. "health_upstreams"
_M.prober_lease = BASE .. "prober:lease"
_M.prober_heartbeat = BASE .. "prober:heartbeat"

-- kind is "route", "upstream", "certificate" or "stream"
function _M.object(kind, id)
    return BASE .. kind .. ":" .. id
end

function _M.route(id)
    return BASE .. "route:" .. id
end

function _M.upstream(name)
    return BASE .. "upstream:" .. name
end

function _M.certificate(id)
    return BASE .. "certificate:" .. id
end

function _M.stream(id)
    return BASE .. "stream:" .. id
end

function _M.used_by(name)
    return BASE .. "used_by:" .. name
end

function _M.edge(id)
    return BASE .. "edge:" .. id
end

-- hash: endpoint address -> health record JSON (written by the prober via sy_health)
function _M.health(name)
    return BASE .. "health:" .. name
end

-- Seconds an edge registration lives without a heartbeat.
_M.edge_ttl_s = 15

return _M
