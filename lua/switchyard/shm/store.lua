-- The shared-dict layout, and the syncer's writes into it.
--
-- Pure: the dicts are injected (ngx.shared.sy_config / sy_meta in nginx, fakes in busted);
-- works on Lua 5.2 and LuaJIT. Never yields. Only the syncer (worker 0) writes; every
-- worker reads (switchyard.state).
--
-- sy_config (size {{config_dict_size}}), one entry per object, raw JSON as stored in Redis:
--     route:<id>          the route document
--     upstream:<name>     the upstream document
--     certificate:<id>    a TLS certificate document (chain, names, key or key_enc)
--     stream:<id>         a TCP/UDP service document (docs/stream.md): held, never served
--                         (`switchyard stream` serves it), so the digest covers it
-- sy_meta (small):
--     serial              number; bumped once per commit that changed sy_config. The one
--                         key the request path reads: a worker whose tables carry another
--                         serial brings them up to date. A local counter, not the Redis
--                         version, because the Redis version may go backwards (Redis reset)
--                         and one commit may span many versions (catch-up, full reload).
--     log:<serial>        space-separated shm keys that commit changed ("route:a
--                         upstream:b"), or "*" = rebuild everything; expires after LOG_TTL
--     version             the Redis configuration version sy_config reflects
--     digest              digest of sy_config (switchyard.shm.digest; a number < 2^52), kept
--                         per commit: it always describes exactly the documents in
--                         sy_config, failed writes included, and is written with version
--     started             ms epoch the edge (master) started; survives HUP reloads
--     syncer              pid of the worker running the syncer (a lock with a short TTL)
--     sync:*              syncer status for /_switchyard/status (see switchyard.sync.syncer)
--
-- Write order in one commit: documents first (upstream puts, route puts, route deletes,
-- upstream deletes), then digest, then log:<serial> and version, then serial last
-- (switchyard.shm.changelog), so a worker that sees a serial finds its documents.
-- Documents use safe_set: a full sy_config never evicts another route silently; the write
-- fails loudly instead (size guidance in lua/README.md).

local digest_mod = require "switchyard.shm.digest"
local changelog = require "switchyard.shm.changelog"

local setmetatable = setmetatable
local pairs = pairs
local tostring = tostring
local str_find = string.find
local str_sub = string.sub
local tbl_concat = table.concat
local tbl_sort = table.sort
local digest_add = digest_mod.add
local digest_sub = digest_mod.sub

local _M = {}
local mt = {__index = _M}

-- sy_meta's change log (switchyard.shm.changelog)
_M.LOG_TTL = 600          -- seconds a log:<serial> entry lives
_M.LOG_MAX_KEYS = 1000    -- a commit changing more keys logs "*"

-- shm key for an object: kind is "route", "upstream", "certificate" or "stream"
function _M.key(kind, id)
    return kind .. ":" .. id
end

-- "route:a:b" -> "route", "a:b"
function _M.split_key(key)
    local colon = str_find(key, ":", 1, true)
    if not colon then
        return nil
    end
    return str_sub(key, 1, colon - 1), str_sub(key, colon + 1)
end

-- cfg, meta: shared dicts; log(level, msg): "err", "warn", "notice", "info";
-- hash(key, raw): the digest's per-document hash (switchyard.digest.hasher); without it
-- no digest is kept.
function _M.new(cfg, meta, log, hash)
    return setmetatable({cfg = cfg, meta = meta, log = log or function() end, hash = hash}, mt)
end

-- The digest of sy_config computed from scratch (every key: O(objects)).
function _M.compute_digest(self)
    local cfg, hash = self.cfg, self.hash
    local keys = cfg:get_keys(0)
    local d = 0
    for i = 1, #keys do
        local raw = cfg:get(keys[i])
        if raw ~= nil then
            d = digest_add(d, hash(keys[i], raw))
        end
    end
    return d
end

-- The digest kept in sy_meta (a number), nil before the first commit.
function _M.digest(self)
    return self.meta:get("digest")
end

function _M.serial(self)
    return changelog.serial(self.meta)
end

function _M.version(self)
    return self.meta:get("version")
end

-- The write order of a commit's operations: upstream puts, route puts, other puts (never
-- written by us), route deletes, other deletes, upstream deletes; by key within each.
local N_RANKS = 6

local function op_rank(key, put)
    if str_sub(key, 1, 9) == "upstream:" then
        return put and 1 or 6
    end
    if str_sub(key, 1, 6) == "route:" then
        return put and 2 or 4
    end
    return put and 3 or 5
end

-- changes: shm key -> raw JSON string (put) or false (delete). Writes what differs from
-- sy_config, then the log entry, digest, version and serial. Applying the same changes
-- twice is harmless: the second time nothing differs and the serial does not move.
-- all (full() only): every document sy_config must hold afterwards; the digest is then
-- computed from it (or is all_digest, when the caller computed it already) instead of per
-- change. Returns the number of changed keys and the number of failed writes.
local function commit(self, changes, version, all, all_digest)
    local cfg, meta, log, hash = self.cfg, self.meta, self.log, self.hash
    local digest
    if hash and not all then
        digest = meta:get("digest")
        if digest == nil then
            digest = self:compute_digest()   -- sy_config as it is before this commit
        end
    end
    -- keys bucketed by rank and sorted within (no comparator function: a full load sorts
    -- 100k keys); curs: the value each replaces (false: none)
    local ranks, curs = {}, {}
    for r = 1, N_RANKS do
        ranks[r] = {}
    end
    for key, raw in pairs(changes) do
        local cur = cfg:get(key)
        local rank
        if raw then
            if cur ~= raw then
                rank = op_rank(key, true)
            end
        elseif cur ~= nil then
            rank = op_rank(key, false)
        end
        if rank then
            local list = ranks[rank]
            list[#list + 1] = key
            if cur == nil then
                curs[key] = false
            else
                curs[key] = cur
            end
        end
    end
    -- the write order, which is also the log entry's order
    local order = {}
    for r = 1, N_RANKS do
        local list = ranks[r]
        tbl_sort(list)
        for i = 1, #list do
            order[#order + 1] = list[i]
        end
    end
    local n = #order

    local failed = 0
    local spaces = false
    for i = 1, n do
        local key = order[i]
        local raw = changes[key]
        local cur = curs[key] or nil
        if raw then
            local ok, err = cfg:safe_set(key, raw)
            if not ok then
                failed = failed + 1
                log("err", "sy_config: cannot store " .. key .. " (" .. tostring(err)
                    .. "); the edge serves an outdated or missing object: raise"
                    .. " config_dict_size")
            end
            if digest then
                if cur ~= nil then
                    digest = digest_sub(digest, hash(key, cur))
                end
                -- a failed safe_set may have kept the old value or dropped it
                local now = ok and raw or cfg:get(key)
                if now ~= nil then
                    digest = digest_add(digest, hash(key, now))
                end
            end
        else
            cfg:delete(key)
            if digest then
                digest = digest_sub(digest, hash(key, cur))
            end
        end
        if n <= _M.LOG_MAX_KEYS and str_find(key, "%s") then
            spaces = true
        end
    end
    if failed > 0 then
        meta:incr("sync:shm_errors", failed, 0)
    end
    if hash and all then
        -- a full load recomputes the digest: no drift survives it
        if failed > 0 then
            digest = self:compute_digest()
        else
            digest = all_digest or digest_mod.of(all, hash)
        end
    end
    if digest then
        meta:set("digest", digest)
    end

    if n > 0 or changelog.serial(meta) == nil then
        -- the workers replay this commit's keys (switchyard.state): version goes with it
        local entry = (n > _M.LOG_MAX_KEYS or spaces) and "*" or tbl_concat(order, " ")
        changelog.append(meta, "sy_meta", entry, _M.LOG_TTL, log, "version", version)
    else
        meta:set("version", version)
    end
    return n, failed
end

function _M.commit(self, changes, version)
    return commit(self, changes, version, nil)
end

-- docs: shm key -> raw JSON for EVERY object in Redis. Objects in sy_config that are not
-- in docs are deleted. docs_digest: digest.of(docs) when the caller has it (the syncer
-- computes it in yielding slices; a snapshot comes with it), else computed here.
-- Returns what commit returns.
function _M.full(self, docs, version, docs_digest)
    local changes = {}
    for key, raw in pairs(docs) do
        changes[key] = raw
    end
    local present = self.cfg:get_keys(0)
    for i = 1, #present do
        local key = present[i]
        if docs[key] == nil then
            changes[key] = false
        end
    end
    return commit(self, changes, version, docs, docs_digest)
end

return _M
