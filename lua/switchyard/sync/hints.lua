-- The objects named by configuration events (redis/README.md, "The events channel").
--
-- sy_apply publishes `<version>` on switchyard:{cfg}:events, followed for a small batch by
-- the objects it changed as `<kind>:<id>` (`"8 route:bbs-api upstream:backend"`). The
-- syncer collects them between two catch-ups and fetches those documents in the same round
-- trip as the stream page that lists the changes. A hint is only a guess at what to
-- prefetch: the stream decides what is applied, a lost or garbled message costs one more
-- round trip, never a wrong document.
--
-- Pure: no ngx. Used by switchyard.sync.syncer.

local tonumber = tonumber
local str_match = string.match
local str_gmatch = string.gmatch

local _M = {}

-- `kinds`: the object kinds a hint may name (a set); `cap`: the most keys kept between two
-- catch-ups (more changes than that are fetched after the stream is read, as without hints).
function _M.new(kinds, cap)
    return setmetatable({kinds = kinds, cap = cap, keys = {}, seen = {}, version = nil},
                        {__index = _M})
end

-- The version an event announces and the shm keys it names (a list, maybe empty); nil for a
-- message that does not start with a version.
function _M.parse(self, payload)
    if type(payload) ~= "string" then
        return nil
    end
    local v, rest = str_match(payload, "^(%d+)(.*)$")
    v = tonumber(v)
    if not v then
        return nil
    end
    local out = {}
    local kinds = self.kinds
    for token in str_gmatch(rest, "%S+") do
        local kind = str_match(token, "^(%l+):[%w._-]+$")
        if kind and kinds[kind] then
            out[#out + 1] = token
        end
    end
    return v, out
end

-- Notes one message. Returns false for one that is not an event (ignored).
function _M.add(self, payload)
    local v, names = self:parse(payload)
    if not v then
        return false
    end
    if not self.version or v > self.version then
        self.version = v
    end
    local keys, seen = self.keys, self.seen
    for i = 1, #names do
        local key = names[i]
        if #keys >= self.cap then
            break
        end
        if not seen[key] then
            seen[key] = true
            keys[#keys + 1] = key
        end
    end
    return true
end

-- The keys noted since the last call, when some event announced a version after `applied`
-- (else nil: nothing worth prefetching); starts over either way.
function _M.take(self, applied)
    local keys, version = self.keys, self.version
    self.keys, self.seen, self.version = {}, {}, nil
    if #keys == 0 or not version or (applied and version <= applied) then
        return nil
    end
    return keys
end

return _M
