-- Documents changed behind sy_apply's back (redis-cli SET of a route's key): Redis keeps,
-- beside every document, the hash sy_apply computed when it wrote it (<base>hashes;
-- redis/README.md, "The digest"), and Redis's digest is the sum of those recorded hashes.
-- A full reload reads them with the documents; a document whose bytes do not hash to what
-- was recorded (or that has no recorded hash) is "out of band": the edge serves what Redis
-- holds, says which ones (status, heartbeat), and remembers, per such document, the
-- recorded hash r and the actual one a. Its own digest stays the sum over what it holds
-- (equal digests still mean identical documents); delta = sum of (r - a) is what turns it
-- into the digest Redis must have if nothing else differs, which the periodic check
-- compares, so a hand edit does not bring a reload every 300 s.
--
-- State (a table; kept in sy_meta as JSON: load, save): {keys = {key -> {r, a}}, n, delta,
-- overflow}. Pure: hash, JSON and the dict injected; works on Lua 5.2 and LuaJIT. Never
-- yields unless `pause` does.

local digest = require "switchyard.shm.digest"

local pairs = pairs
local type = type
local tbl_sort = table.sort
local tbl_concat = table.concat
local math_min = math.min

local _M = {}

_M.MAX_TRACKED = 1000     -- documents remembered one by one (more: counted only)
_M.MAX_NAMED = 10         -- keys named in the status and the heartbeat
_M.PAUSE_EVERY = 1000

function _M.empty()
    return {keys = {}, n = 0, delta = 0, overflow = false}
end

-- The digest of docs (key -> raw; false/nil skipped) and the out-of-band state against
-- recorded (key -> 13 hex digits, or nil for none). recorded == nil: Redis keeps no
-- hashes (written by a library from before them): nothing is out of band.
function _M.scan(docs, recorded, hash, pause)
    local d, n_docs = 0, 0
    local state = _M.empty()
    for key, raw in pairs(docs) do
        if raw then
            local a = hash(key, raw)
            d = digest.add(d, a)
            if recorded then
                local r = digest.parse(recorded[key]) or 0
                if r ~= a then
                    state.n = state.n + 1
                    state.delta = digest.add(state.delta, digest.sub(r, a))
                    if state.n <= _M.MAX_TRACKED then
                        state.keys[key] = {r, a}
                    else
                        state.overflow = true
                    end
                end
            end
            n_docs = n_docs + 1
            if pause and n_docs % _M.PAUSE_EVERY == 0 then
                pause()
            end
        end
    end
    return d, state
end

-- A commit of sy_apply's writes replaced or deleted these keys (changes: key -> raw or
-- false): they are no longer out of band. Returns true when the state changed.
function _M.forget(state, changes)
    if state.n == 0 then
        return false
    end
    local changed = false
    for key in pairs(changes) do
        local e = state.keys[key]
        if e then
            state.keys[key] = nil
            state.n = state.n - 1
            state.delta = digest.sub(state.delta, digest.sub(e[1], e[2]))
            changed = true
        end
    end
    if state.n == 0 then
        state.delta, state.overflow = 0, false
    end
    return changed
end

-- The digest Redis must have when the edge's digest is `local_d` (a number): nil when it
-- cannot tell (more out-of-band documents than tracked).
function _M.recorded_digest(state, local_d)
    if state.overflow then
        return nil
    end
    return digest.add(local_d, state.delta)
end

-- The first MAX_NAMED keys, sorted, comma-separated ("" when none).
function _M.named(state)
    local list = {}
    for key in pairs(state.keys) do
        list[#list + 1] = key
    end
    tbl_sort(list)
    local out = {}
    for i = 1, math_min(#list, _M.MAX_NAMED) do
        out[i] = list[i]
    end
    return tbl_concat(out, ",")
end

-- JSON with the 52-bit numbers as 13 hex digits (a JSON encoder may round them).
function _M.encode(state, json_encode)
    local keys = {}
    for key, e in pairs(state.keys) do
        keys[key] = {digest.hex(e[1]), digest.hex(e[2])}
    end
    return json_encode({keys = keys, n = state.n, delta = digest.hex(state.delta),
                        overflow = state.overflow})
end

-- nil for anything that is not a state this module wrote
function _M.decode(text, json_decode)
    local t = type(text) == "string" and json_decode(text) or nil
    if type(t) ~= "table" or type(t.keys) ~= "table" or type(t.n) ~= "number" then
        return nil
    end
    local state = _M.empty()
    state.n, state.overflow = t.n, t.overflow == true
    state.delta = digest.parse(t.delta)
    if not state.delta then
        return nil
    end
    for key, e in pairs(t.keys) do
        local r = type(e) == "table" and digest.parse(e[1])
        local a = type(e) == "table" and digest.parse(e[2])
        if type(key) ~= "string" or not r or not a then
            return nil
        end
        state.keys[key] = {r, a}
    end
    return state
end

-- sy_meta: sync:oob (the state as JSON), sync:out_of_band (count), sync:out_of_band_keys
-- (named) for the status and the heartbeat.
function _M.load(meta, json_decode)
    if (meta:get("sync:out_of_band") or 0) == 0 then
        return _M.empty()
    end
    return _M.decode(meta:get("sync:oob"), json_decode) or _M.empty()
end

function _M.save(meta, state, json_encode)
    if state.n == 0 then
        meta:delete("sync:oob")
        meta:delete("sync:out_of_band_keys")
        meta:set("sync:out_of_band", 0)
        return
    end
    meta:set("sync:oob", _M.encode(state, json_encode))
    meta:set("sync:out_of_band_keys", _M.named(state))
    meta:set("sync:out_of_band", state.n)
end

return _M
