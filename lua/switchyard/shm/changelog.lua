-- The change log in a shared dict: how one writer tells every worker what it changed, so
-- each worker rebuilds only that (the cost of a change does not grow with the table).
--
--   serial        a number, +1 per change; readers compare it with the one they applied
--   log:<serial>  what that change touched, in the writer's format (sy_meta: shm keys and
--                 health tokens, space-separated, or "*"; sy_passive: "<upstream>
--                 <address> <until>"), with a TTL
--
-- Used by every writer and reader of the edge: the syncer's commits (shm/store) and the
-- health follower (sync/health_follower) write sy_meta's; the workers' tables
-- (switchyard.state) read it. Passive health (health/passive) writes and reads sy_passive's.
--
-- A reader that cannot follow the log (it has applied nothing yet, the serial went
-- backwards because the dict is new, it is too far behind, or an entry expired, was
-- evicted or says "everything") starts over from the data itself: entries() returns nil.
--
-- Pure: the dict and the logger are injected; works on Lua 5.2 and LuaJIT. Never yields.

local tostring = tostring

local _M = {}

local SERIAL = "serial"
_M.SERIAL = SERIAL

function _M.entry_key(serial)
    return "log:" .. serial
end
local entry_key = _M.entry_key

function _M.serial(dict)
    return dict:get(SERIAL)
end

-- One writer (the syncer's threads, which never yield inside a commit): the entry first,
-- then also_key = also_value when given (the version a configuration commit brings), the
-- serial last, so a reader that sees the new serial finds the entry. name: the dict's
-- name, for the log; log(level, msg). Returns the new serial.
function _M.append(dict, name, entry, ttl, log, also_key, also_value)
    local serial = (dict:get(SERIAL) or 0) + 1
    local ok, err, forcible = dict:set(entry_key(serial), entry, ttl)
    if not ok then
        -- readers find the entry missing and start over: slower, still right
        log("err", name .. ": cannot store log entry " .. serial .. ": " .. tostring(err))
    elseif forcible then
        log("warn", name .. " is full: older log entries were evicted")
    end
    if also_key ~= nil then
        dict:set(also_key, also_value)
    end
    ok, err = dict:set(SERIAL, serial)
    if not ok then
        log("err", name .. ": cannot store serial: " .. tostring(err))
    end
    return serial
end

-- Any number of writers (every worker): the serial comes from an atomic incr, the entry
-- follows; a reader that looks in between finds the entry missing and starts over, so
-- nothing is lost. Returns the new serial, or nil when the incr failed (logged).
function _M.append_shared(dict, name, entry, ttl, log)
    local serial, err = dict:incr(SERIAL, 1, 0)
    if not serial then
        log("err", name .. ": cannot bump the serial: " .. tostring(err))
        return nil
    end
    dict:set(entry_key(serial), entry, ttl)
    return serial
end

-- The entries after serial `from` up to `to` (the serial the reader just read), oldest
-- first; nil when the reader must start over instead: from or to is nil, to < from, more
-- than max_gap entries to read, or one of them is missing or equals `restart` (a writer's
-- "too much to list"; nil: no such entry). O(to - from).
function _M.entries(dict, from, to, max_gap, restart)
    if from == nil or to == nil or to < from or to - from > max_gap then
        return nil
    end
    local out = {}
    for s = from + 1, to do
        local entry = dict:get(entry_key(s))
        if entry == nil or entry == restart then
            return nil
        end
        out[#out + 1] = entry
    end
    return out
end

return _M
