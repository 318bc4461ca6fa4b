-- Spec support: ONE in-memory stand-in for ngx.shared.DICT, used by every spec that needs
-- a shared dict, so they all agree with nginx (lua-nginx-module's ngx_http_lua_shdict.c)
-- on what a full dict, an expired key or an eviction does:
--
--   set, add, replace, incr   may evict to make room: expired entries first, then the
--                             least recently used ones (get and every write count as a
--                             use), at most 30; the third return value `forcible` is true
--                             when a live entry was evicted; "no memory" when that is not
--                             enough
--   safe_set, safe_add        never evict a live entry: "no memory" instead
--   a store that changes a value's size frees the old entry first (as nginx does), so a
--   failed safe_set of a bigger value leaves the key absent
--   add / safe_add            "exists" when the key holds a live value
--   incr(key, by, init, init_ttl)   "not found" without init; init and init_ttl only when
--                             the key is created; "not a number" for other values
--   ttl(key), expire(key, exptime), get_keys(max_count; default 1024, 0 = all, most
--   recently used first), flush_all(), flush_expired(max_count), delete(key),
--   capacity(), free_space(); and contents() (key -> value, for assertions)
--
-- Sizes: an entry costs ENTRY_OVERHEAD + #key + the value's size (a string's length, 8 for
-- a number, 1 for a boolean); nginx's slab rounds more coarsely, which no spec relies on.
-- Time: opts.now() in seconds (default os.time); an entry whose expiry time has come is
-- gone. writes: the keys stored, in order ("-key" for a delete of a present key), for
-- specs that check a write order.

local _M = {}
local mt = {__index = _M}

_M.ENTRY_OVERHEAD = 64
_M.MAX_EVICTIONS = 30     -- nginx gives up after evicting this many entries for one store
local DEFAULT_CAPACITY = 64 * 1024 * 1024

local function value_size(value)
    local t = type(value)
    if t == "string" then
        return #value
    elseif t == "number" then
        return 8
    elseif t == "boolean" then
        return 1
    end
    error("bad value type " .. t, 3)
end

-- What one entry costs in the fake's accounting.
function _M.entry_size(key, value)
    return _M.ENTRY_OVERHEAD + #key + value_size(value)
end

-- opts: capacity (bytes, default 64 MiB), now() (seconds, default os.time)
function _M.new(opts)
    opts = opts or {}
    return setmetatable({
        entries = {},    -- key -> {value, expires (0: never), size, used}
        used_bytes = 0,
        cap = opts.capacity or DEFAULT_CAPACITY,
        now = opts.now or os.time,
        tick = 0,
        writes = {},
    }, mt)
end

local function touch(self, e)
    self.tick = self.tick + 1
    e.used = self.tick
end

local function expired(self, e)
    return e.expires ~= 0 and e.expires <= self.now()
end

local function remove(self, key)
    local e = self.entries[key]
    if e then
        self.entries[key] = nil
        self.used_bytes = self.used_bytes - e.size
    end
    return e
end

-- Removes expired entries; returns how many (at most max; 0 or nil: all).
local function drop_expired(self, max)
    local n = 0
    for key, e in pairs(self.entries) do
        if max and max > 0 and n >= max then
            break
        end
        if expired(self, e) then
            remove(self, key)
            n = n + 1
        end
    end
    return n
end

-- The least recently used key, or nil.
local function lru_key(self)
    local best, best_used
    for key, e in pairs(self.entries) do
        if best_used == nil or e.used < best_used then
            best, best_used = key, e.used
        end
    end
    return best
end

local function live(self, key)
    local e = self.entries[key]
    if e and expired(self, e) then
        remove(self, key)
        return nil
    end
    return e
end

local function ttl_to_expiry(self, exptime)
    if exptime == nil or exptime == 0 then
        return 0
    end
    if type(exptime) ~= "number" or exptime < 0 then
        error("bad \"exptime\" argument", 3)
    end
    return self.now() + exptime
end

-- The one store path: set/add/replace/safe_* and incr's creation.
local function store(self, key, value, exptime, safe)
    if value == nil then
        local e = remove(self, key)
        if e then
            self.writes[#self.writes + 1] = "-" .. key
        end
        return true, nil, false
    end
    local size = _M.entry_size(key, value)
    local e = self.entries[key]
    if e and e.size == size then
        -- same size: replaced in place, nothing to allocate
        e.value, e.expires = value, ttl_to_expiry(self, exptime)
        touch(self, e)
        self.writes[#self.writes + 1] = key
        return true, nil, false
    end
    if e then
        remove(self, key)   -- freed before the new value is allocated
    end
    drop_expired(self)
    local forcible = false
    if self.used_bytes + size > self.cap then
        if safe then
            return false, "no memory", false
        end
        for _ = 1, _M.MAX_EVICTIONS do
            local victim = lru_key(self)
            if not victim then
                break
            end
            remove(self, victim)
            forcible = true
            if self.used_bytes + size <= self.cap then
                break
            end
        end
        if self.used_bytes + size > self.cap then
            return false, "no memory", forcible
        end
    end
    e = {value = value, expires = ttl_to_expiry(self, exptime), size = size}
    touch(self, e)
    self.entries[key] = e
    self.used_bytes = self.used_bytes + size
    self.writes[#self.writes + 1] = key
    return true, nil, forcible
end

function _M.get(self, key)
    local e = live(self, key)
    if not e then
        return nil
    end
    touch(self, e)
    return e.value
end

function _M.set(self, key, value, exptime)
    return store(self, key, value, exptime, false)
end

function _M.safe_set(self, key, value, exptime)
    local ok, err = store(self, key, value, exptime, true)
    return ok, err
end

function _M.add(self, key, value, exptime)
    if live(self, key) then
        return false, "exists", false
    end
    return store(self, key, value, exptime, false)
end

function _M.safe_add(self, key, value, exptime)
    if live(self, key) then
        return false, "exists"
    end
    local ok, err = store(self, key, value, exptime, true)
    return ok, err
end

function _M.replace(self, key, value, exptime)
    if not live(self, key) then
        return false, "not found", false
    end
    return store(self, key, value, exptime, false)
end

function _M.delete(self, key)
    return store(self, key, nil)
end

function _M.incr(self, key, by, init, init_ttl)
    local e = live(self, key)
    if not e then
        if init == nil then
            return nil, "not found"
        end
        local ok, err, forcible = store(self, key, init + by, init_ttl, false)
        if not ok then
            return nil, err, forcible
        end
        return init + by, nil, forcible
    end
    if type(e.value) ~= "number" then
        return nil, "not a number"
    end
    e.value = e.value + by
    touch(self, e)
    self.writes[#self.writes + 1] = key
    return e.value, nil, false
end

-- Seconds left (0: no expiry), or nil, "not found".
function _M.ttl(self, key)
    local e = live(self, key)
    if not e then
        return nil, "not found"
    end
    if e.expires == 0 then
        return 0
    end
    return e.expires - self.now()
end

function _M.expire(self, key, exptime)
    local e = live(self, key)
    if not e then
        return nil, "not found"
    end
    e.expires = ttl_to_expiry(self, exptime)
    return true
end

-- Live keys, most recently used first; at most max_count (default 1024; 0: all).
function _M.get_keys(self, max_count)
    if max_count == nil then
        max_count = 1024
    end
    local list = {}
    for key, e in pairs(self.entries) do
        if not expired(self, e) then
            list[#list + 1] = {key, e.used}
        end
    end
    table.sort(list, function(a, b) return a[2] > b[2] end)
    local out = {}
    for i = 1, #list do
        if max_count > 0 and i > max_count then
            break
        end
        out[i] = list[i][1]
    end
    return out
end

function _M.flush_all(self)
    local now = self.now()
    for _, e in pairs(self.entries) do
        e.expires = now
    end
end

function _M.flush_expired(self, max_count)
    return drop_expired(self, max_count)
end

-- For assertions: key -> value of every live entry (no entry counts as used).
function _M.contents(self)
    local out = {}
    for key, e in pairs(self.entries) do
        if not expired(self, e) then
            out[key] = e.value
        end
    end
    return out
end

function _M.capacity(self)
    return self.cap
end

function _M.free_space(self)
    return self.cap - self.used_bytes
end

return _M
