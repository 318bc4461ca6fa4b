-- The request's host, checked before it routes (issue 16: M1, M4, L1). access() in
-- switchyard.request.access answers 400 when one of these says no:
--
--   too_long(host)               more than MAX (253) bytes: not a host name (a valid name
--                                has at most 253 characters, hence at most 127 labels), so
--                                no Host can make a lookup expensive; nginx itself accepts
--                                up to large_client_header_buffers (16 KB).
--   agrees(host, http_host)      the host that routes ($host) is the host sent upstream
--                                (the Host header as the client sent it, $http_host).
--                                nginx's $host is the request line's host when the request
--                                line has an absolute URI ("GET http://www.a/ HTTP/1.1"),
--                                whatever the Host header says (RFC 9112 3.2.2), and the
--                                edge passes the Host header upstream: without this check
--                                a request routed as one site reached the backend as
--                                another (and bypassed that site's allow list). Equal
--                                when the header, lowercased, without its port and one
--                                trailing dot, is $host; no header (HTTP/1.0): nothing to
--                                compare (@sy_full sends $host then).
--   is_name(host)                only the bytes a host name has ([a-z0-9._-]; $host is
--                                lowercase). nginx refuses only NUL, "/" and misplaced
--                                dots, so "evil.com#.apps.x" reaches the router; an exact
--                                match is one of the configuration's (validated) names,
--                                but a wildcard match would carry such a name into
--                                https_redirect's Location and the upstream's Host. access()
--                                checks it when the router matched a wildcard.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never yields. Cost on a plain request whose
-- Host is lowercase without a port: one length check and one string comparison (interned
-- strings); a port or capitals: one find + sub (+ lower).

local str_byte = string.byte
local str_find = string.find
local str_sub = string.sub
local str_lower = string.lower

local _M = {}

_M.MAX = 253

local DOT = 46            -- "."
local BRACKET = 91        -- "["

-- bytes of a host name as $host gives it (lowercase): a-z 0-9 . - _
local NAME_BYTE = {}
for b = 48, 57 do NAME_BYTE[b] = true end    -- 0-9
for b = 97, 122 do NAME_BYTE[b] = true end   -- a-z
NAME_BYTE[45] = true                         -- -
NAME_BYTE[46] = true                         -- .
NAME_BYTE[95] = true                         -- _

function _M.too_long(host)
    return #host > _M.MAX
end

-- The Host header as nginx makes $host of it: without the port (after the first ":", or
-- after "]" of an IPv6 literal), without one trailing dot, lowercase.
function _M.normalize(http_host)
    local h = http_host
    if str_byte(h, 1) == BRACKET then
        local e = str_find(h, "]", 2, true)
        if e and e < #h then
            h = str_sub(h, 1, e)
        end
    else
        local c = str_find(h, ":", 1, true)
        if c then
            h = str_sub(h, 1, c - 1)
        end
    end
    if str_byte(h, -1) == DOT then
        h = str_sub(h, 1, -2)
    end
    return str_lower(h)
end

function _M.agrees(host, http_host)
    if http_host == host or http_host == nil then
        return true
    end
    return _M.normalize(http_host) == host
end

function _M.is_name(host)
    for i = 1, #host do
        if not NAME_BYTE[str_byte(host, i)] then
            return false
        end
    end
    return true
end

return _M
