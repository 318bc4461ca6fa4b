-- A worker's compiled view of the configuration: the router and one balancer per upstream,
-- stamped with the sy_meta serial they reflect (layout: switchyard.shm.store).
--
-- Pure: dicts, regex engine and logger are injected; works on Lua 5.2 and LuaJIT. Never
-- yields; called from init_worker and from the access phase when the serial moved.
--
-- refresh(serial) brings the tables to `serial`:
--   * from the log entries serial+1 .. target, rebuilding only the touched routes and
--     upstreams (the cost of a change does not depend on the size of the table);
--   * from scratch (every key of sy_config) when there is no state yet, an entry is
--     missing (expired, evicted) or "*", the gap is larger than MAX_GAP, or the serial went
--     backwards. Even then unchanged documents are not decoded again: each object is
--     cached with the raw JSON it was built from.
-- A document that fails to decode is logged with its key and left out; the rest of the
-- configuration keeps working. Everything runs under pcall: a bad document never raises.
--
-- Endpoint health (switchyard.health.rotation) is not in sy_config: the syncer logs "health:<name>"
-- and "prober:fresh" tokens like keys, and they rebuild only balancers (in place).
--
-- A route naming an upstream that does not exist stays routable and answers 503 (like an
-- upstream without endpoints); the condition is logged when the route is built.

local doc = require "switchyard.route.decode"
local upstream_mod = require "switchyard.balancer.upstream"
local router_mod = require "switchyard.route.router"
local store = require "switchyard.shm.store"
local health = require "switchyard.health.rotation"
local bulk = require "switchyard.util.bulk"
local changelog = require "switchyard.shm.changelog"

local pairs = pairs
local pcall = pcall
local tostring = tostring
local setmetatable = setmetatable
local str_gmatch = string.gmatch
local str_byte = string.byte
local str_sub = string.sub
local BYTE_U = str_byte("u")

local split_key = store.split_key

local _M = {}
local mt = {__index = _M}

_M.MAX_GAP = 1000   -- serials to replay before a full rebuild is cheaper

-- opts: cfg, meta (dicts), find(subject, re) and check(re) (regex engine),
-- log(level, msg), certificates (switchyard.tls.certificates table fed with certificate:<id> keys)
function _M.new(opts)
    return setmetatable({
        cfg = opts.cfg,
        meta = opts.meta,
        check = opts.check,
        log = opts.log or function() end,
        certificates = opts.certificates,   -- switchyard.tls.certificates table, or nil (busted)
        -- switchyard.health.rotation context (sy_health, passive marks), or nil
        health = opts.health,
        router = router_mod.new(opts.find),
        upstreams = {},     -- name -> upstream object (switchyard.balancer.upstream)
        n_upstreams = 0,
        raw = {},           -- shm key -> raw JSON the current object was built from
        serial = nil,       -- nil: nothing loaded yet
        full_rebuilds = 0,
    }, mt)
end

local function build_upstream(self, name, raw)
    local up, err, warning = upstream_mod.new(self.health, raw, name)
    if warning then
        self.log("warn", "upstream:" .. name .. ": " .. warning)
    end
    return up, err
end

local function set_upstream(self, name, up)
    local old = self.upstreams[name]
    if old and not up then
        self.n_upstreams = self.n_upstreams - 1
    elseif up and not old then
        self.n_upstreams = self.n_upstreams + 1
    end
    self.upstreams[name] = up
end

-- Rebuilds one object from sy_config. Returns the route when a route was (re)built.
local function apply_key(self, key)
    if health.is_key(key) then
        -- "health:<upstream>" / "prober:fresh" (sy_health): rebuild balancers only
        health.apply_key(self.health, self.upstreams, key)
        return nil
    end
    local raw = self.cfg:get(key)
    if raw == self.raw[key] then
        return nil
    end
    self.raw[key] = raw
    local kind, id = split_key(key)
    if kind == "route" then
        if raw == nil then
            self.router:remove(id)
            return nil
        end
        local route, err = doc.decode_route(raw, id, self.check)
        if not route then
            self.router:remove(id)
            self.log("err", "skipping malformed route:" .. id .. ": " .. tostring(err))
            return nil
        end
        self.router:put(route)
        return route
    elseif kind == "upstream" then
        if raw == nil then
            set_upstream(self, id, nil)
            return nil
        end
        local up, err = build_upstream(self, id, raw)
        if not up then
            self.log("err", "skipping malformed upstream:" .. id .. ": " .. tostring(err))
        end
        set_upstream(self, id, up)
        return nil
    elseif kind == "certificate" then
        -- the TLS table decodes, decrypts and parses it once per version
        -- (switchyard.tls.certificates)
        if self.certificates then
            self.certificates:apply(id, raw)
        end
        return nil
    elseif kind == "stream" then
        -- a TCP/UDP service: served by `switchyard stream`; the edge holds its document
        -- only so that its digest covers what Redis's does (docs/stream.md)
        return nil
    end
    self.log("warn", "ignoring unknown sy_config key " .. tostring(key))
    return nil
end

local function safe_apply(self, key, touched)
    local ok, route = pcall(apply_key, self, key)
    if not ok then
        self.log("err", "failed to build " .. tostring(key) .. ": " .. tostring(route))
        return
    end
    if route then
        touched[#touched + 1] = route
    end
end

local function check_refs(self, touched)
    local upstreams = self.upstreams
    for i = 1, #touched do
        local route = touched[i]
        -- plan.refs: the upstream, split and canary upstreams (none for a redirect)
        local refs = route.plan and route.plan.refs or {route.upstream}
        for j = 1, #refs do
            if not upstreams[refs[j]] then
                self.log("warn", "route:" .. route.id .. " uses missing upstream \""
                    .. refs[j] .. "\": its requests there get 503")
            end
        end
    end
end

-- Upstreams before everything else, so reference checks see the final upstreams. A
-- partition, not a sort: the order among routes does not matter (the router orders by
-- priority and id), and sorting 100,000 keys with a Lua comparator took ~0.15 s of a cold
-- start.
local function upstreams_first(keys)
    local ordered, others = {}, {}
    for i = 1, #keys do
        local key = keys[i]
        if str_byte(key, 1) == BYTE_U and str_sub(key, 1, 9) == "upstream:" then
            ordered[#ordered + 1] = key
        else
            others[#others + 1] = key
        end
    end
    local n = #ordered
    for i = 1, #others do
        ordered[n + i] = others[i]
    end
    return ordered
end

-- Rebuilds from every key of sy_config, stamped with `serial` (read by the caller BEFORE
-- this reads the documents, so any later commit is noticed and applied on top).
function _M.rebuild(self, serial)
    local keys = upstreams_first(self.cfg:get_keys(0))
    local present = {}
    local touched = {}
    for i = 1, #keys do
        present[keys[i]] = true
        safe_apply(self, keys[i], touched)
    end
    local gone = {}
    for key in pairs(self.raw) do
        if not present[key] then
            gone[#gone + 1] = key
        end
    end
    for i = 1, #gone do
        safe_apply(self, gone[i], touched)
    end
    -- health is not in sy_config: bring every balancer to the current verdicts
    health.refresh_all(self.health, self.upstreams)
    check_refs(self, touched)
    self.serial = serial
    self.full_rebuilds = self.full_rebuilds + 1
end

-- Brings the tables to `target` (the sy_meta serial just read). nil target: the syncer
-- has not loaded anything yet; the state stays empty and unloaded.
function _M.refresh(self, target)
    if target == nil then
        return
    end
    local cur = self.serial
    if cur == nil and not self.no_bulk then
        -- this worker's first build: it serves nothing until it is done (switchyard.util.bulk)
        return bulk.run(true, self.rebuild, self, target)
    end
    if cur == nil then
        return self:rebuild(target)
    end
    -- the logged changes since cur (switchyard.shm.changelog); nil: rebuild everything
    local entries = changelog.entries(self.meta, cur, target, _M.MAX_GAP, "*")
    if not entries then
        return self:rebuild(target)
    end
    local seen = {}
    local keys = {}
    for i = 1, #entries do
        for key in str_gmatch(entries[i], "%S+") do
            if not seen[key] then
                seen[key] = true
                keys[#keys + 1] = key
            end
        end
    end
    keys = upstreams_first(keys)
    local touched = {}
    for i = 1, #keys do
        safe_apply(self, keys[i], touched)
    end
    check_refs(self, touched)
    self.serial = target
end

function _M.loaded(self)
    return self.serial ~= nil
end

return _M
