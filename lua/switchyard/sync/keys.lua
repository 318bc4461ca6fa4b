-- Redis key schema, edge side. The one description is redis/README.md; the controller's
-- copy is Sources/SwitchyardCore/Documents/KeySchema.swift, and a test keeps the two in
-- agreement. Pure: no ngx, no I/O; may be required from any phase.
--
-- Groups (redis/README.md, "Groups"): every key of group NAME is "switchyard:{NAME}:...".
-- The module starts with the default group's keys ("switchyard:{cfg}:..."); the edge's
-- init_by_lua calls configure(group) once, before the syncer starts, and configure sets the
-- fields of this same table, so modules holding the table (`local keys = require ...`) see
-- the group's keys. A module must not copy a key name into a local at load time.

local _M = {}

local type = type
local error = error

-- The default group, whose keys every release before groups wrote.
_M.default_group = "cfg"
-- Longest group name.
_M.max_group_length = 48

-- Seconds an edge registration lives without a heartbeat.
_M.edge_ttl_s = 15

local BASE

-- Why group cannot name a group (nil when it can): 1-48 characters from a-z 0-9 _ -,
-- starting with a letter or digit (KeySchema.problem(group:) says the same).
function _M.problem(group)
    if type(group) ~= "string" or #group == 0 or #group > _M.max_group_length then
        return "group must be 1-" .. _M.max_group_length .. " characters"
    end
    if group:find("[^a-z0-9_%-]") then
        return "group '" .. group .. "' may hold only a-z 0-9 _ -"
    end
    if not group:find("^[a-z0-9]") then
        return "group '" .. group .. "' must start with a letter or digit"
    end
    return nil
end

local function set(group)
    BASE = "switchyard:{" .. group .. "}:"
    _M.group = group
    _M.base = BASE
    _M.version = BASE .. "version"
    _M.digest = BASE .. "digest"
    _M.epoch = BASE .. "epoch"
    _M.adopt = BASE .. "adopt"
    _M.hashes = BASE .. "hashes"
    _M.owners = BASE .. "owners"   -- who may change an object (sy_apply; edges ignore it)
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
end

-- Switches every key to group's (nil or "": the default group). A bad name is a
-- programmer's or operator's mistake caught at start: error().
function _M.configure(group)
    if group == nil or group == "" then
        group = _M.default_group
    end
    local problem = _M.problem(group)
    if problem then
        error("switchyard: " .. problem, 2)
    end
    set(group)
end

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

set(_M.default_group)

return _M
