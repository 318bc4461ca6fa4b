-- basic_auth on the request path (docs/traffic-policies.md, "Authentication"): the
-- Authorization: Basic credential checked against the route's htpasswd-style hashes with
-- libxcrypt's crypt_rn (libcrypt.so.1) through LuaJIT's FFI.
--
--   check(a, var) -> nil when admitted, else 401, body (WWW-Authenticate set)
--
-- bcrypt is slow on purpose (~50 ms at cost 10), so a credential that verified is
-- remembered by this worker for CACHE_TTL seconds, keyed by the SHA-1 of the header (the
-- password itself is never kept), in the route's plan (a changed route starts afresh).
-- Wrong credentials are never cached: a rate_limit on the route bounds guessing.
-- Access phase; never yields; never logs a credential or a hash.

local ffi = require "ffi"
local lrucache = require "resty.lrucache"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local decode_base64 = ngx.decode_base64
local sha1_bin = ngx.sha1_bin
local str_find = string.find
local str_sub = string.sub
local str_lower = string.lower
local ffi_string = ffi.string

local _M = {}

local CACHE_TTL = 60
local CACHE_SIZE = 256
local MAX_HEADER = 1024
local DATA_SIZE = 65536   -- at least sizeof(struct crypt_data) (32768 in libxcrypt)

local BODY_UNAUTHORIZED = "authentication required\n"
_M.BODY = BODY_UNAUTHORIZED

pcall(ffi.cdef, [[
char *crypt_rn(const char *phrase, const char *setting, void *data, int size);
]])

local libcrypt        -- ffi.load("libcrypt.so.1"), false when it failed (logged once)
local data            -- this worker's crypt_data

local function crypt(password, hash)
    if libcrypt == nil then
        local ok, lib = pcall(ffi.load, "libcrypt.so.1")
        if not ok then
            ngx_log(ERR, "[switchyard] basic_auth: libcrypt.so.1 does not load (", lib,
                    "): every credential is refused")
            libcrypt = false
            return nil
        end
        libcrypt = lib
        data = ffi.new("char[?]", DATA_SIZE)
    end
    if not libcrypt then
        return nil
    end
    local out = libcrypt.crypt_rn(password, hash, data, DATA_SIZE)
    if out == nil then
        return nil
    end
    return ffi_string(out)
end
_M.crypt = crypt

local function refuse(a)
    ngx.header["WWW-Authenticate"] = a.challenge
    return 401, BODY_UNAUTHORIZED
end

function _M.check(a, var)
    local h = var.http_authorization
    if not h or #h > MAX_HEADER or str_lower(str_sub(h, 1, 6)) ~= "basic " then
        return refuse(a)
    end
    local cache = a.cache
    if not cache then
        cache = lrucache.new(CACHE_SIZE)
        a.cache = cache
    end
    local key = sha1_bin(h)
    if cache:get(key) then
        return nil
    end
    local b64 = str_sub(h, 7)
    -- strict base64 (ngx.decode_base64 ignores what follows the padding)
    local pair = str_find(b64, "^[%w%+/]+=?=?$") and decode_base64(b64)
    local colon = pair and str_find(pair, ":", 1, true)
    if not colon then
        return refuse(a)
    end
    local hash = a.users[str_sub(pair, 1, colon - 1)]
    if not hash then
        return refuse(a)
    end
    local password = str_sub(pair, colon + 1)
    if str_find(password, "\0", 1, true) or crypt(password, hash) ~= hash then
        return refuse(a)
    end
    cache:set(key, true, CACHE_TTL)
    return nil
end

return _M
