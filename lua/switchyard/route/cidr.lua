-- IPv4/IPv6 address sets for a route's `allow` and `deny` (docs/traffic-policies.md).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never yields.
--
--   parse_ip(text, strict)  "10.0.0.1" / "2001:db8::1" / "::ffff:1.2.3.4" -> the binary
--                       address (4 or 16 bytes, what $binary_remote_addr gives) or nil, err.
--                       IPv6 by the rules of inet_pton; `strict` also refuses IPv4 octets
--                       with leading zeros ("010" reads as 8 in some parsers, as 10 in others:
--                       the controller refuses them, and so does inet_pton inside IPv6).
--   parse_v6(text, strict)  the same for IPv6 text only.
--   new_set(list, what) list of CIDRs or bare addresses -> set, or nil, err (err names the
--                       entry, counted from 0 like the controller: `what[2]: ...`). Host
--                       bits must be zero. An IPv4-mapped range of at least /96
--                       (::ffff:127.0.0.0/104) is the IPv4 range it names (127.0.0.0/8), as
--                       the controller stores it: clients are matched by their IPv4 address.
--   contains(set, bin)  is the binary address (4 or 16 bytes) in the set?
--
-- Everything is precomputed when the route is decoded. A lookup costs, per distinct prefix
-- length in the set, one modulo + one hash lookup for IPv4 (numbers, no allocation), one
-- short string + one lookup for IPv6. An IPv4-mapped IPv6 client (::ffff:a.b.c.d, seen
-- on a dual-stack listener) is matched as the IPv4 address.

local type = type
local tostring = tostring
local tonumber = tonumber
local str_byte = string.byte
local str_char = string.char
local str_sub = string.sub
local str_find = string.find
local str_match = string.match
local str_rep = string.rep
local tbl_sort = table.sort
local tbl_concat = table.concat
local math_floor = math.floor

local _M = {}

local ZERO10 = str_rep("\0", 10)
local MAPPED = ZERO10 .. "\255\255"
local POW2 = {}
for i = 0, 32 do
    POW2[i] = 2 ^ i
end

local function parse_v4(s, strict)
    local a, b, c, d = str_match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return nil
    end
    local o = {a, b, c, d}
    for i = 1, 4 do
        if #o[i] > 3 or (strict and #o[i] > 1 and str_sub(o[i], 1, 1) == "0") then
            return nil
        end
        local n = tonumber(o[i])
        if n > 255 then
            return nil
        end
        o[i] = n
    end
    return str_char(o[1], o[2], o[3], o[4])
end

local function parse_v6(s, strict)
    if type(s) ~= "string" or #s > 45 or not str_find(s, ":", 1, true)
        or str_find(s, ":::", 1, true) then
        return nil
    end
    -- an embedded IPv4 address at the end becomes two groups (inet_pton refuses leading
    -- zeros there; lenient readers of hand-typed lists accept them)
    local tail4 = ""
    local head, v4 = str_match(s, "^(.*:)(%d+%.%d+%.%d+%.%d+)$")
    if head then
        local bin = parse_v4(v4, strict)
        if not bin then
            return nil
        end
        tail4 = bin
        s = head
        if str_sub(s, -2) ~= "::" then
            s = str_sub(s, 1, -2)   -- drop the ":" before the IPv4 part
        end
    end
    local left, right = s, nil
    local dbl = str_find(s, "::", 1, true)
    if dbl then
        if str_find(s, "::", dbl + 1, true) then
            return nil   -- at most one "::"
        end
        left, right = str_sub(s, 1, dbl - 1), str_sub(s, dbl + 2)
    end
    local function groups(part)
        local out = {}
        if part == "" then
            return out
        end
        for g in (part .. ":"):gmatch("([^:]*):") do
            if not str_match(g, "^%x%x?%x?%x?$") then
                return nil
            end
            out[#out + 1] = tonumber(g, 16)
        end
        return out
    end
    local lg = groups(left)
    local rg = {}
    if right then
        rg = groups(right)
    end
    if not lg or not rg then
        return nil
    end
    local want = tail4 == "" and 8 or 6
    local have = #lg + #rg
    if dbl then
        if have >= want then
            return nil
        end
    elseif have ~= want then
        return nil
    end
    local bytes = {}
    local function push(g)
        bytes[#bytes + 1] = str_char(math_floor(g / 256), g % 256)
    end
    for i = 1, #lg do
        push(lg[i])
    end
    for _ = 1, want - have do
        push(0)
    end
    for i = 1, #rg do
        push(rg[i])
    end
    return tbl_concat(bytes) .. tail4
end

function _M.parse_ip(text, strict)
    if type(text) ~= "string" or text == "" or #text > 45 then
        return nil, "not an IP address"
    end
    local bin = parse_v4(text, strict) or parse_v6(text, strict)
    if not bin then
        return nil, "\"" .. text .. "\" is not an IPv4 or IPv6 address"
    end
    return bin
end

function _M.parse_v6(text, strict)
    local bin = parse_v6(text, strict)
    if not bin then
        return nil, "\"" .. tostring(text) .. "\" is not an IPv6 address"
    end
    return bin
end

local function v4_number(bin)
    local a, b, c, d = str_byte(bin, 1, 4)
    return ((a * 256 + b) * 256 + c) * 256 + d
end

-- the first `len` bits of a 16-byte address, as a string key
local function v6_key(bin, len)
    local full = math_floor(len / 8)
    local rem = len - full * 8
    local key = str_sub(bin, 1, full)
    if rem > 0 then
        local byte = str_byte(bin, full + 1)
        local m = POW2[8 - rem]
        key = key .. str_char(byte - byte % m)
    end
    return key
end

local function add(family, len, key)
    local t = family[len]
    if not t then
        t = {}
        family[len] = t
        family.lens[#family.lens + 1] = len
    end
    t[key] = true
end

local function desc(a, b)
    return a > b
end

function _M.new_set(list, what)
    what = what or "list"
    local set = {v4 = {lens = {}, mods = {}}, v6 = {lens = {}}, n = 0}
    for i = 1, #list do
        local entry = list[i]
        local where = what .. "[" .. (i - 1) .. "]: "
        if type(entry) ~= "string" then
            return nil, where .. "must be a string"
        end
        local addr, len = str_match(entry, "^([^/]+)/(%d+)$")
        if not addr then
            if str_find(entry, "/", 1, true) then
                return nil, where .. "invalid CIDR \"" .. entry .. "\""
            end
            addr = entry
        end
        local bin, err = _M.parse_ip(addr)
        if not bin then
            return nil, where .. err
        end
        local bits = #bin * 8
        if len then
            if #len > 3 then
                return nil, where .. "invalid prefix length in \"" .. entry .. "\""
            end
            len = tonumber(len)
            if len > bits then
                return nil, where .. "prefix length above " .. bits .. " in \"" .. entry .. "\""
            end
        else
            len = bits
        end
        if #bin == 16 and len >= 96 and str_sub(bin, 1, 12) == MAPPED then
            bin, len = str_sub(bin, 13), len - 96   -- ::ffff:a.b.c.d/n is a.b.c.d/(n-96)
        end
        if #bin == 4 then
            local n = v4_number(bin)
            local m = POW2[32 - len]
            if n % m ~= 0 then
                return nil, where .. "host bits set in \"" .. entry .. "\""
            end
            add(set.v4, len, n)
        else
            if v6_key(bin, len) .. str_rep("\0", 16 - math.ceil(len / 8)) ~= bin then
                return nil, where .. "host bits set in \"" .. entry .. "\""
            end
            add(set.v6, len, v6_key(bin, len))
        end
        set.n = set.n + 1
    end
    tbl_sort(set.v4.lens, desc)
    tbl_sort(set.v6.lens, desc)
    for i = 1, #set.v4.lens do
        set.v4.mods[i] = POW2[32 - set.v4.lens[i]]
    end
    if #set.v4.lens == 0 then
        set.v4 = nil
    end
    if #set.v6.lens == 0 then
        set.v6 = nil
    end
    return set
end

function _M.contains(set, bin)
    local len = #bin
    if len == 16 and str_byte(bin, 11) == 255 and str_byte(bin, 12) == 255
        and str_sub(bin, 1, 10) == ZERO10 then
        bin = str_sub(bin, 13)   -- IPv4-mapped
        len = 4
    end
    if len == 4 then
        local v4 = set.v4
        if not v4 then
            return false
        end
        local n = v4_number(bin)
        local lens, mods = v4.lens, v4.mods
        for i = 1, #lens do
            if v4[lens[i]][n - n % mods[i]] then
                return true
            end
        end
    elseif len == 16 then
        local v6 = set.v6
        if not v6 then
            return false
        end
        local lens = v6.lens
        for i = 1, #lens do
            local l = lens[i]
            if v6[l][v6_key(bin, l)] then
                return true
            end
        end
    end
    return false
end

return _M
