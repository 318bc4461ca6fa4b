-- An absolute URL as nginx would see the request (for GET /_switchyard/explain): the
-- scheme, $host (lowercase, no port, no trailing dot), $uri (percent-decoded, "//"
-- merged, "." and ".." resolved, as nginx's merge_slashes and URI parsing do), the query
-- string and $request_uri (path and query as sent).
--
-- Pure: no ngx. Returns the parts, or nil and why.

local hostcheck = require "switchyard.route.hostcheck"

local tonumber = tonumber
local str_match = string.match
local str_gsub = string.gsub
local str_char = string.char
local str_find = string.find
local tbl_concat = table.concat

local _M = {}

_M.MAX_URL = 8192

local function decode(s)
    local bad = false
    local out = str_gsub(s, "%%(..)", function(h)
        local n = tonumber(h, 16)
        if not n or not str_match(h, "^%x%x$") then
            bad = true
            return ""
        end
        return str_char(n)
    end)
    if bad or str_find(out, "%z") then
        return nil
    end
    return out
end

-- "/a//b/./c/../d" -> "/a/b/d"; nil when ".." climbs above the root (nginx: 400)
local function normalize(path)
    local out = {}
    local trailing = path:sub(-1) == "/"
    for seg in path:gmatch("[^/]+") do
        if seg == ".." then
            if #out == 0 then
                return nil
            end
            out[#out] = nil
        elseif seg ~= "." then
            out[#out + 1] = seg
        end
    end
    local last = path:match("[^/]*$")
    if last == "." or last == ".." then
        trailing = true
    end
    local p = "/" .. tbl_concat(out, "/")
    if trailing and p ~= "/" then
        p = p .. "/"
    end
    return p
end
_M.normalize = normalize

function _M.parse(url)
    if #url > _M.MAX_URL then
        return nil, "url is longer than " .. _M.MAX_URL .. " bytes"
    end
    local scheme, authority, rest = str_match(url, "^([hH][tT][tT][pP][sS]?)://([^/?#]*)(.*)$")
    if not scheme then
        return nil, "url must be an absolute http:// or https:// URL"
    end
    if authority == "" or str_find(authority, "@", 1, true) then
        return nil, "url must name a host (without user information)"
    end
    if str_find(authority, "[%s%c]") then
        return nil, "url's host must not contain spaces or control characters"
    end
    local host = hostcheck.normalize(authority)
    if host == "" then
        return nil, "url must name a host"
    end
    rest = str_gsub(rest, "#.*$", "")
    local raw_path, query = str_match(rest, "^([^?]*)%??(.*)$")
    if raw_path == "" then
        raw_path = "/"
    end
    local has_query = str_find(rest, "?", 1, true) ~= nil
    local decoded = decode(raw_path)
    if not decoded then
        return nil, "url's path has a bad percent-encoding"
    end
    local path = normalize(decoded)
    if not path then
        return nil, "url's path climbs above the root (..)"
    end
    return {
        scheme = scheme:lower(),
        host = host,
        path = path,
        query = has_query and query or nil,
        request_uri = raw_path .. (has_query and ("?" .. query) or ""),
    }
end

return _M
