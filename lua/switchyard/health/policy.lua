-- An upstream's endpoint-health policy, from its document (docs/traffic-policies.md,
-- README.md "Endpoint health"): health_check (the prober's business; the edge only needs
-- to know there is one), passive {max_fails, fail_timeout_ms}, retries, on_all_down. The
-- rules are the controller's (Sources/SwitchyardCore/HealthCheck.swift): a document it
-- would refuse is malformed here too.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Never yields.

local checks = require "switchyard.util.check"

local type = type
local ipairs = ipairs
local str_sub = string.sub

local is_integer = checks.is_integer
local is_null = checks.is_null

local _M = {}

-- Defaults and ranges: Sources/SwitchyardCore/HealthCheck.swift (the controller's rules).
_M.DEFAULT_MAX_FAILS = 3
_M.DEFAULT_FAIL_TIMEOUT_MS = 10000
_M.DEFAULT_RETRIES = 2
local MAX_FAILS = {0, 100}
local FAIL_TIMEOUT_MS = {100, 3600000}
local RETRIES = {0, 10}
local INTERVAL_MS = {100, 3600000}
local TIMEOUT_MS = {10, 60000}
local RISE_FALL = {1, 10}
local CHECK_TYPES = {http = true, https = true, tcp = true}

local DEFAULT = {
    check = false,
    max_fails = _M.DEFAULT_MAX_FAILS,
    fail_timeout = _M.DEFAULT_FAIL_TIMEOUT_MS / 1000,
    retries = _M.DEFAULT_RETRIES,
    all_down_503 = false,
}
_M.DEFAULT = DEFAULT


-- absent: default; present: an integer within range (null and fractions are errors, as
-- the controller's Validator.integer has it)
local function int_field(obj, field, range, default, prefix)
    local v = obj[field]
    if v == nil then
        return default
    end
    if not is_integer(v) then
        return nil, "field \"" .. prefix .. field .. "\" must be an integer"
    end
    if v < range[1] or v > range[2] then
        return nil, "field \"" .. prefix .. field .. "\" must be between " .. range[1]
            .. " and " .. range[2]
    end
    return v
end

-- The active check is the prober's business; the edge only needs to know there is one,
-- but a check no controller would store makes the document malformed (the prober skips
-- it too), so the types and ranges are checked the same way.
local function check_fields(hc)
    if type(hc) ~= "table" or hc[1] ~= nil then
        return nil, "field \"health_check\" must be an object"
    end
    local kind = hc.type
    if kind ~= nil and not CHECK_TYPES[kind] then
        return nil, "field \"health_check.type\" must be http, https or tcp"
    end
    local interval, err = int_field(hc, "interval_ms", INTERVAL_MS, 1000, "health_check.")
    if not interval then
        return nil, err
    end
    local timeout
    timeout, err = int_field(hc, "timeout_ms", TIMEOUT_MS, 10, "health_check.")
    if not timeout then
        return nil, err
    end
    if hc.timeout_ms ~= nil and timeout >= interval then
        return nil, "field \"health_check.timeout_ms\" must be less than interval_ms"
    end
    for _, f in ipairs({"rise", "fall"}) do
        local ok
        ok, err = int_field(hc, f, RISE_FALL, 1, "health_check.")
        if not ok then
            return nil, err
        end
    end
    local port = hc.port
    if port ~= nil and not is_null(port) then
        local ok
        ok, err = int_field(hc, "port", {1, 65535}, 1, "health_check.")
        if not ok then
            return nil, err
        end
    end
    local path = hc.path
    if path ~= nil and (type(path) ~= "string" or str_sub(path, 1, 1) ~= "/") then
        return nil, "field \"health_check.path\" must be a string starting with \"/\""
    end
    local host = hc.host
    if host ~= nil and not is_null(host) and type(host) ~= "string" then
        return nil, "field \"health_check.host\" must be a string"
    end
    local expect = hc.expect_status
    if expect ~= nil and type(expect) ~= "table" then
        return nil, "field \"health_check.expect_status\" must be an array"
    end
    return true
end

-- The health members of an upstream document (decoded by switchyard.balancer.upstream):
-- health_check (optional; null = none), passive {max_fails, fail_timeout_ms},
-- retries, on_all_down ("fail_open" | "503"; the integer 503 too, as the controller reads
-- it). Missing members get the defaults. Returns the policy table, or nil, err.
function _M.decode(obj)
    local hc = obj.health_check
    local check = false
    if hc ~= nil and not is_null(hc) then
        local ok, err = check_fields(hc)
        if not ok then
            return nil, err
        end
        check = true
    end
    local max_fails, fail_timeout_ms = _M.DEFAULT_MAX_FAILS, _M.DEFAULT_FAIL_TIMEOUT_MS
    local passive = obj.passive
    if passive ~= nil and not is_null(passive) then
        if type(passive) ~= "table" or passive[1] ~= nil then
            return nil, "field \"passive\" must be an object"
        end
        local err
        max_fails, err = int_field(passive, "max_fails", MAX_FAILS, max_fails, "passive.")
        if not max_fails then
            return nil, err
        end
        fail_timeout_ms, err = int_field(passive, "fail_timeout_ms", FAIL_TIMEOUT_MS,
                                         fail_timeout_ms, "passive.")
        if not fail_timeout_ms then
            return nil, err
        end
    end
    local retries, err = int_field(obj, "retries", RETRIES, _M.DEFAULT_RETRIES, "")
    if not retries then
        return nil, err
    end
    local all_down = obj.on_all_down
    local all_down_503 = false
    if all_down == "503" or all_down == 503 then
        all_down_503 = true
    elseif all_down ~= nil and all_down ~= "fail_open" then
        return nil, "field \"on_all_down\" must be \"fail_open\" or \"503\""
    end
    if not check and max_fails == DEFAULT.max_fails
        and fail_timeout_ms == _M.DEFAULT_FAIL_TIMEOUT_MS
        and retries == DEFAULT.retries and not all_down_503 then
        return DEFAULT   -- shared: most upstreams use the defaults
    end
    return {
        check = check,
        max_fails = max_fails,
        fail_timeout = fail_timeout_ms / 1000,
        retries = retries,
        all_down_503 = all_down_503,
    }
end

return _M
