-- The TLS members of route and upstream documents (redis/README.md, "Documents";
-- Sources/SwitchyardCore/TLSFields.swift), decoded once when the document is:
--   route     https_redirect (bool), hsts {max_age_s, include_subdomains, preload},
--             require_sni_match (bool)
--             -> route.https_redirect, route.hsts (the header value, precomputed),
--                route.require_sni_match
--   upstream  scheme "https", tls_server_name, tls_verify
--             -> up.tls = {name = <sni or nil>, verify = bool} for https, nil for http
-- and the Location of an https_redirect (per request).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never yields.

local check = require "switchyard.util.check"

local type = type
local tostring = tostring
local str_find = string.find
local str_sub = string.sub

local is_integer = check.is_integer

local _M = {}

-- A SAN as the controller stores it: lowercase host name or *.suffix.
function _M.valid_name(name)
    if type(name) ~= "string" or name == "" or #name > 253 then
        return false
    end
    local rest = name
    if str_sub(name, 1, 2) == "*." then
        rest = str_sub(name, 3)
    end
    return rest ~= "" and not str_find(rest, "[^a-z0-9%-%.]") and not str_find(rest, "..", 1, true)
        and str_sub(rest, 1, 1) ~= "." and str_sub(rest, -1) ~= "."
end

-- Route members. Returns https_redirect (bool), hsts (header value or nil),
-- require_sni_match (bool); or nil, err.
function _M.route_fields(obj)
    local redirect = obj.https_redirect
    if redirect == nil then
        redirect = false
    elseif type(redirect) ~= "boolean" then
        return nil, "field \"https_redirect\" must be true or false"
    end
    local sni = obj.require_sni_match
    if sni == nil or check.is_null(sni) then
        sni = false
    elseif type(sni) ~= "boolean" then
        return nil, "field \"require_sni_match\" must be true or false"
    end
    local hsts = obj.hsts
    if hsts == nil or check.is_null(hsts) then
        return redirect, nil, sni
    end
    if type(hsts) ~= "table" then
        return nil, "field \"hsts\" must be an object"
    end
    local max_age = hsts.max_age_s
    if max_age == nil then
        max_age = 31536000
    elseif not is_integer(max_age) or max_age < 0 then
        return nil, "hsts.max_age_s must be a non-negative integer"
    end
    local value = "max-age=" .. string.format("%d", max_age)
    if hsts.include_subdomains == true then
        value = value .. "; includeSubDomains"
    end
    if hsts.preload == true then
        value = value .. "; preload"
    end
    return redirect, value, sni
end

-- Upstream members. Returns the tls table ({name, verify}) for "scheme": "https", false for
-- http; or nil, err.
function _M.upstream_fields(obj)
    local scheme = obj.scheme
    if scheme == nil or check.is_null(scheme) or scheme == "http" then
        return false
    end
    if scheme ~= "https" then
        return nil, "unknown scheme \"" .. tostring(scheme) .. "\" (want http or https)"
    end
    local name = obj.tls_server_name
    if name ~= nil and (type(name) ~= "string" or not _M.valid_name(name)
                        or str_sub(name, 1, 2) == "*.") then
        return nil, "invalid tls_server_name"
    end
    local verify = obj.tls_verify
    if verify ~= nil and type(verify) ~= "boolean" then
        return nil, "field \"tls_verify\" must be true or false"
    end
    return {name = name, verify = verify == true}
end

-- The Location of an https_redirect: https://<host><port suffix><request uri>.
-- port_suffix: "" for 443, else ":<port>".
function _M.redirect_location(host, port_suffix, request_uri)
    return "https://" .. host .. port_suffix .. request_uri
end

return _M
