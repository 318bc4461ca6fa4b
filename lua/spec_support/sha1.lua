-- Spec support: a plain SHA-1 (FIPS 180-1) in Lua 5.2 (bit32), so specs can hash anything the
-- edge hashes with libcrypto; shm/digest_spec checks it against known vectors.

local bit = bit32

-- the 20-byte binary SHA-1 of msg
local function sha1_bin(msg)
    local function lrot(x, n) return bit.lrotate(x, n) end
    local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
    local ml = #msg * 8
    msg = msg .. "\128" .. string.rep("\0", (55 - #msg) % 64)
    local len = ""
    for i = 7, 0, -1 do len = len .. string.char(math.floor(ml / 2 ^ (8 * i)) % 256) end
    msg = msg .. len
    assert(#msg % 64 == 0)
    for chunk = 1, #msg, 64 do
        local w = {}
        for i = 0, 15 do
            local a, b, c, d = msg:byte(chunk + i * 4, chunk + i * 4 + 3)
            w[i] = ((a * 256 + b) * 256 + c) * 256 + d
        end
        for i = 16, 79 do
            w[i] = lrot(bit.bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1)
        end
        local a, b, c, d, e = h0, h1, h2, h3, h4
        for i = 0, 79 do
            local f, k
            if i < 20 then
                f, k = bit.bor(bit.band(b, c), bit.band(bit.bnot(b), d)), 0x5A827999
            elseif i < 40 then
                f, k = bit.bxor(b, c, d), 0x6ED9EBA1
            elseif i < 60 then
                f, k = bit.bor(bit.band(b, c), bit.band(b, d), bit.band(c, d)), 0x8F1BBCDC
            else
                f, k = bit.bxor(b, c, d), 0xCA62C1D6
            end
            local temp = (lrot(a, 5) + f + e + k + w[i]) % 2 ^ 32
            e, d, c, b, a = d, c, lrot(b, 30), a, temp
        end
        h0, h1, h2 = (h0 + a) % 2 ^ 32, (h1 + b) % 2 ^ 32, (h2 + c) % 2 ^ 32
        h3, h4 = (h3 + d) % 2 ^ 32, (h4 + e) % 2 ^ 32
    end
    local out = {}
    for _, h in ipairs({h0, h1, h2, h3, h4}) do
        for i = 3, 0, -1 do out[#out + 1] = string.char(math.floor(h / 2 ^ (8 * i)) % 256) end
    end
    return table.concat(out)
end

return {bin = sha1_bin}
