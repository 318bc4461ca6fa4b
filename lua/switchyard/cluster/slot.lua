-- Redis Cluster hash slots (groundwork for issue 20 item 6; nothing calls it yet): the slot
-- of a key is CRC16 (XMODEM: polynomial 0x1021, initial 0, no reflection) of its hash tag
-- (the bytes between the first "{" and the next "}", when that is not empty) or of the
-- whole key, modulo 16384. Every key of a group shares the tag {<group>}, so a group is
-- one slot (redis/README.md, "Groups"). Pure arithmetic, no bit library: it runs in
-- LuaJIT, Lua 5.1 and inside Redis alike. Computed once per start, never per request.

local str_byte = string.byte
local str_find = string.find
local str_sub = string.sub
local math_floor = math.floor

local _M = {}

_M.SLOTS = 16384

-- a XOR b for 0 <= a, b < 2^16
local function xor16(a, b)
    local out, bit = 0, 1
    for _ = 1, 16 do
        local x, y = a % 2, b % 2
        if x ~= y then
            out = out + bit
        end
        a, b, bit = math_floor(a / 2), math_floor(b / 2), bit * 2
    end
    return out
end

-- CRC16/XMODEM of a string (0..65535).
function _M.crc16(s)
    local crc = 0
    for i = 1, #s do
        crc = xor16(crc, str_byte(s, i) * 256)
        for _ = 1, 8 do
            if crc >= 32768 then
                crc = xor16((crc * 2) % 65536, 0x1021)
            else
                crc = (crc * 2) % 65536
            end
        end
    end
    return crc
end

-- The part of key that is hashed: its hash tag when it has a non-empty one, else the key.
function _M.hashed_part(key)
    local open = str_find(key, "{", 1, true)
    if open then
        local close = str_find(key, "}", open + 1, true)
        if close and close > open + 1 then
            return str_sub(key, open + 1, close - 1)
        end
    end
    return key
end

-- The cluster slot of key (0..16383), as CLUSTER KEYSLOT answers it.
function _M.of(key)
    return _M.crc16(_M.hashed_part(key)) % _M.SLOTS
end

return _M
