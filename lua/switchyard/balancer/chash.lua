-- Consistent hashing for the `hash` and `ip_hash` balancers: a ring of virtual nodes.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The hash function is injected (the edge
-- passes ngx.crc32_long); _M.crc32 is the same CRC-32 (IEEE) in plain Lua for specs.
--
-- Each endpoint owns `points` positions on a 32-bit ring: mix(crc32("<address>-<i>"))
-- for i = 0 .. points-1. A key goes to the owner of the first position at or after
-- mix(crc32(key)), wrapping around. CRC-32 is linear: strings that differ in their last
-- characters (user-1, user-2; addr-0, addr-1) land in clusters, so a finalizer (the
-- one of MurmurHash3, a bijection) spreads them; measured in algorithm_spec.lua beside
-- this file. Positions depend only on the endpoint's address and its
-- number of points, so a ring built over fewer endpoints (one taken out of rotation, one
-- removed from the upstream) keeps every other endpoint's positions: only the keys that
-- landed on the missing endpoint's positions move, each to the next position clockwise.
--
-- Points per endpoint: VNODES per unit of weight, scaled down (never below 1) when the
-- whole upstream would exceed MAX_POINTS; the scale is computed over every endpoint of
-- the document, not only those in rotation, so it does not move with health.
--
-- Memory: one number per position (position * 2^20 + endpoint index, sorted), plus the
-- owner array; MAX_POINTS bounds it (4096 positions ~ 64 KB per upstream and worker).
-- Build: O(P log P) per document or health change; lookup: a binary search, no allocation.

local setmetatable = setmetatable
local math_floor = math.floor
local math_max = math.max
local tbl_sort = table.sort
local str_byte = string.byte

local bit = rawget(_G, "bit32") or require("bit")
local bxor, band, rshift = bit.bxor, bit.band, bit.rshift
local TWO32 = 4294967296

local _M = {}
local mt = {__index = _M}

_M.VNODES = 160          -- positions per unit of weight (nginx's hash ... consistent uses 160)
_M.MAX_POINTS = 4096     -- positions per upstream at most
local SHIFT = 1048576    -- 2^20: room for the endpoint index below the position
local MAX_INDEX = SHIFT - 1

-- CRC-32 (IEEE 802.3, the one of zlib and ngx.crc32_long), table-driven.
local CRC_TABLE = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if band(c, 1) == 1 then
            c = bxor(0xEDB88320, rshift(c, 1))
        else
            c = rshift(c, 1)
        end
    end
    CRC_TABLE[i] = c
end

function _M.crc32(s)
    local c = 0xFFFFFFFF
    for i = 1, #s do
        c = bxor(CRC_TABLE[band(bxor(c, str_byte(s, i)), 0xFF)], rshift(c, 8))
    end
    c = bxor(c, 0xFFFFFFFF)
    if c < 0 then          -- LuaJIT's bit ops are signed 32-bit
        c = c + 4294967296
    end
    return c
end

-- (a * b) mod 2^32 for a, b in 0 .. 2^32-1, exact in doubles (16-bit halves)
local function mul32(a, b)
    local a_lo, b_lo = a % 65536, b % 65536
    local a_hi, b_hi = (a - a_lo) / 65536, (b - b_lo) / 65536
    return (a_lo * b_lo + ((a_hi * b_lo + a_lo * b_hi) % 65536) * 65536) % TWO32
end

local function u32(x)
    if x < 0 then          -- LuaJIT's bit ops are signed 32-bit
        return x + TWO32
    end
    return x
end

-- MurmurHash3's fmix32: 0 .. 2^32-1 -> 0 .. 2^32-1, a bijection that spreads bits.
function _M.mix(h)
    h = u32(h)
    h = u32(bxor(h, rshift(h, 16)))
    h = mul32(h, 0x85EBCA6B)
    h = u32(bxor(h, rshift(h, 13)))
    h = mul32(h, 0xC2B2AE35)
    return u32(bxor(h, rshift(h, 16)))
end
local mix = _M.mix

-- Positions of every endpoint of a document: endpoint -> array of positions. eps: the
-- upstream's endpoints (address, weight); hash(s) -> 0 .. 2^32-1.
function _M.points(eps, hash)
    local total = 0
    for i = 1, #eps do
        total = total + (eps[i].weight or 1)
    end
    local scale = 1
    if total * _M.VNODES > _M.MAX_POINTS then
        scale = _M.MAX_POINTS / (total * _M.VNODES)
    end
    local out = {}
    for i = 1, #eps do
        local ep = eps[i]
        local n = math_max(1, math_floor((ep.weight or 1) * _M.VNODES * scale))
        local list = {}
        local prefix = ep.address .. "-"
        for j = 1, n do
            list[j] = mix(hash(prefix .. (j - 1)))
        end
        out[ep] = list
    end
    return out
end

-- A ring over `peers` (the endpoints in rotation). points: from _M.points over every
-- endpoint of the document (an endpoint without positions gets none); order: endpoint ->
-- its index in the document (the tie-break when two positions are equal, the same on
-- every worker and edge).
function _M.new(peers, points, order)
    local keys = {}
    local n = 0
    for i = 1, #peers do
        local p = peers[i]
        local list = points[p]
        local idx = order[p] or i
        if list and idx <= MAX_INDEX then
            for j = 1, #list do
                n = n + 1
                keys[n] = list[j] * SHIFT + idx
            end
        end
    end
    tbl_sort(keys)
    local owners, by_index = {}, {}
    for i = 1, #peers do
        by_index[order[peers[i]] or i] = peers[i]
    end
    for i = 1, n do
        local k = keys[i]
        owners[i] = by_index[k % SHIFT]
    end
    return setmetatable({keys = keys, owners = owners, size = n, n = #peers}, mt)
end

-- Index of the first position at or after h (0 .. 2^32-1, already mixed), wrapping to 1; nil when
-- the ring is empty.
function _M.find(self, h)
    local size = self.size
    if size == 0 then
        return nil
    end
    local keys = self.keys
    local target = h * SHIFT
    if keys[size] < target then
        return 1
    end
    local lo, hi = 1, size
    while lo < hi do
        local mid = math_floor((lo + hi) / 2)
        if keys[mid] < target then
            lo = mid + 1
        else
            hi = mid
        end
    end
    return lo
end

-- The owner of hash h, and its ring index (for walk).
function _M.lookup(self, h)
    local i = self:find(h)
    if not i then
        return nil
    end
    return self.owners[i], i
end

-- The first owner after ring index i (clockwise) that is not in `tried` (peer -> true),
-- or nil when every peer of the ring was tried. Bounded by the ring size.
function _M.walk(self, i, tried)
    local size = self.size
    local owners = self.owners
    for _ = 1, size do
        i = i + 1
        if i > size then
            i = 1
        end
        local p = owners[i]
        if not tried[p] then
            return p, i
        end
    end
    return nil
end

return _M
