-- The configuration digest, edge side: the same number sy_apply keeps in Redis
-- (redis/switchyard.lua, DIGEST; described in redis/README.md, "The digest").
--
--   h(key, doc) = first 13 hex digits (52 bits) of sha1(key .. "\n" .. doc)
--   digest      = sum of h over every document, modulo 2^52, shown as 13 lowercase hex
--
-- key is the shm key ("route:<id>", "upstream:<name>"), doc the raw stored bytes (garbage
-- included: it is a digest of what is stored, not of what parsed). A sum is independent of
-- order and is kept up to date per change: subtract the old document's h, add the new one's.
-- Every value stays below 2^53, so the arithmetic is exact in doubles (Lua 5.1/5.2, LuaJIT).
--
-- Pure: the sha1 function is injected (ngx.sha1_bin on the edge). Never yields; any phase.

local str_byte = string.byte
local str_format = string.format
local str_find = string.find
local math_floor = math.floor
local tonumber = tonumber
local type = type
local pairs = pairs

local _M = {}

local MOD = 2 ^ 52
local SPLIT = 2 ^ 28    -- hex(): high 24 bits (6 digits) and low 28 bits (7 digits)

_M.MOD = MOD
_M.ZERO = "0000000000000"

-- The 52-bit value of a 20-byte binary sha1: its first 6 bytes and the high nibble of the
-- 7th, i.e. the first 13 hex digits.
function _M.from_bin(bin)
    local b1, b2, b3, b4, b5, b6, b7 = str_byte(bin, 1, 7)
    return ((((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5) * 4096 + b6 * 16
        + math_floor(b7 / 16)
end

-- The same from a hex sha1 (as redis.sha1hex returns it).
function _M.from_hex(hex)
    return tonumber(hex:sub(1, 13), 16)
end

function _M.add(d, h)
    d = d + h
    if d >= MOD then
        d = d - MOD
    end
    return d
end

function _M.sub(d, h)
    d = d - h
    if d < 0 then
        d = d + MOD
    end
    return d
end

-- 13 lowercase hex digits
function _M.hex(d)
    return str_format("%06x%07x", math_floor(d / SPLIT), d % SPLIT)
end

-- 13 hex digits -> number, or nil
function _M.parse(s)
    if type(s) ~= "string" or #s ~= 13 or str_find(s, "[^0-9a-fA-F]") then
        return nil
    end
    return tonumber(s, 16)
end

-- A hash function h(key, doc) over a binary sha1 function (ngx.sha1_bin).
function _M.hasher(sha1_bin)
    return function(key, doc)
        return _M.from_bin(sha1_bin(key .. "\n" .. doc))
    end
end

-- The digest of a whole set of documents: docs is key -> raw (false/nil entries skipped).
-- pause (optional) is called after every PAUSE_EVERY documents: the syncer passes a
-- function that yields (ngx.sleep(0)), so 100k documents never block the worker at once.
_M.PAUSE_EVERY = 1000

function _M.of(docs, hash, pause)
    local d = 0
    local n = 0
    for key, raw in pairs(docs) do
        if raw then
            d = _M.add(d, hash(key, raw))
            n = n + 1
            if pause and n % _M.PAUSE_EVERY == 0 then
                pause()
            end
        end
    end
    return d
end

return _M
