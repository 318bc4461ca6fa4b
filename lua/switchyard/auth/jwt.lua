-- jwt on the request path (docs/traffic-policies.md, "Authentication"): a bearer token
-- (or the route's header or cookie) checked against the route's RS256/ES256 public keys
-- with libcrypto's EVP_DigestVerify, or its HS256 secrets with HMAC() and CRYPTO_memcmp
-- (constant time), through LuaJIT's FFI (nginx links OpenSSL: the symbols are in the
-- process), then exp/nbf (with leeway), iss and aud (switchyard.auth.token); chosen claims
-- go upstream as request headers. A token is checked only with a key of its own alg (an
-- RS256 key never verifies an HS256 token: no algorithm confusion; alg none never).
--
--   check(j, var)     -> nil when admitted, else 401, body (WWW-Authenticate set)
--   set_opener(open)  open(secret_enc, aad) -> secret | nil, err (switchyard.tls.aesgcm
--                     over SWITCHYARD_CERT_KEY; init_worker); without one, sealed HS256
--                     secrets cannot be used and their tokens are refused (logged once)
--
-- A token that verified is remembered by this worker (CACHE_SIZE per route plan, a changed
-- route starts afresh) for at most CACHE_TTL seconds and never beyond its exp (+ leeway).
-- A key's PEM is parsed when first used; one that does not parse is logged once and
-- refuses its tokens; an HS256 secret_enc is decrypted when first used, the same way. The
-- claims' headers are always set or removed, so a client cannot
-- send its own. Access phase; never yields; never logs a token.

local ffi = require "ffi"
local cjson = require "cjson.safe"
local lrucache = require "resty.lrucache"
local b64 = require "ngx.base64"
local token_mod = require "switchyard.auth.token"

local C = ffi.C
local ngx = ngx
local ngx_log = ngx.log
local ngx_time = ngx.time
local ERR = ngx.ERR
local set_header = ngx.req.set_header
local type = type
local tostring = tostring
local math_floor = math.floor
local math_min = math.min
local str_sub = string.sub
local str_lower = string.lower
local str_find = string.find
local str_format = string.format
local json_decode = cjson.decode
local b64url = b64.decode_base64url
local split = token_mod.split
local ecdsa_der = token_mod.ecdsa_der
local check_claims = token_mod.check_claims

local _M = {}

local CACHE_TTL = 300
local CACHE_SIZE = 1024
local EVP_PKEY_RSA = 6
local EVP_PKEY_EC = 408

local BODY_UNAUTHORIZED = "authentication required\n"

pcall(ffi.cdef, [[
typedef struct bio_st BIO;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct engine_st ENGINE;
]])
-- each alone: another module may have declared some of them already
for _, decl in ipairs({
    "BIO *BIO_new_mem_buf(const void *buf, int len);",
    "int BIO_free(BIO *a);",
    "EVP_PKEY *PEM_read_bio_PUBKEY(BIO *bp, EVP_PKEY **x, void *cb, void *u);",
    "void EVP_PKEY_free(EVP_PKEY *pkey);",
    "int EVP_PKEY_get_base_id(const EVP_PKEY *pkey);",
    "int EVP_PKEY_get_bits(const EVP_PKEY *pkey);",
    "EVP_MD_CTX *EVP_MD_CTX_new(void);",
    "void EVP_MD_CTX_free(EVP_MD_CTX *ctx);",
    "const EVP_MD *EVP_sha256(void);",
    "int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, "
        .. "ENGINE *e, EVP_PKEY *pkey);",
    "int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen, "
        .. "const unsigned char *tbs, size_t tbslen);",
    "void ERR_clear_error(void);",
    "unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, "
        .. "const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);",
    "int CRYPTO_memcmp(const void *a, const void *b, size_t len);",
}) do
    pcall(ffi.cdef, decl)
end

-- the key's EVP_PKEY (parsed once, freed with the plan), or nil when it does not parse or
-- is not what its alg needs (logged once)
local function pkey(key)
    local k = key.pkey
    if k ~= nil then
        return k or nil
    end
    local bio = C.BIO_new_mem_buf(key.pem, #key.pem)
    local p = bio ~= nil and C.PEM_read_bio_PUBKEY(bio, nil, nil, nil) or nil
    if bio ~= nil then
        C.BIO_free(bio)
    end
    C.ERR_clear_error()
    local ok = p ~= nil
    if ok then
        p = ffi.gc(p, C.EVP_PKEY_free)
        local id, bits = C.EVP_PKEY_get_base_id(p), C.EVP_PKEY_get_bits(p)
        if key.alg == "RS256" then
            ok = id == EVP_PKEY_RSA and bits >= 2048
        else
            ok = id == EVP_PKEY_EC and bits == 256
        end
    end
    if not ok then
        ngx_log(ERR, "[switchyard] jwt: a key (", key.kid or "without kid",
                ") is not a usable ", key.alg, " public key: its tokens are refused")
        key.pkey = false
        return nil
    end
    key.pkey = p
    return p
end

local open_sealed -- set_opener's function, nil without SWITCHYARD_CERT_KEY

function _M.set_opener(open)
    open_sealed = open
end

-- the HS256 key's secret (decrypted once, kept with the plan), or nil when it cannot be
-- had (logged once, never the secret)
local function secret_of(key, aad)
    local s = key.secret
    if s ~= nil then
        return s or nil
    end
    local err = "no SWITCHYARD_CERT_KEY on this edge"
    if open_sealed then
        s, err = open_sealed(key.secret_enc, aad)
    end
    if not s then
        ngx_log(ERR, "[switchyard] jwt: the HS256 secret of a key (", key.kid or "without kid",
                ") cannot be decrypted (", err, "): its tokens are refused")
        key.secret = false
        return nil
    end
    key.secret = s
    return s
end

local mac_buf = ffi.new("unsigned char[32]")
local mac_len = ffi.new("unsigned int[1]")

local function verify_hs256(key, aad, signed, sig)
    local secret = secret_of(key, aad)
    if not secret or #sig ~= 32 then
        return false
    end
    local md = C.HMAC(C.EVP_sha256(), secret, #secret, signed, #signed, mac_buf, mac_len)
    C.ERR_clear_error()
    return md ~= nil and mac_len[0] == 32 and C.CRYPTO_memcmp(mac_buf, sig, 32) == 0
end

local function verify(key, signed, sig, aad)
    if key.alg == "HS256" then
        return verify_hs256(key, aad, signed, sig)
    end
    local p = pkey(key)
    if not p then
        return false
    end
    if key.alg == "ES256" then
        sig = ecdsa_der(sig)
        if not sig then
            return false
        end
    end
    local ctx = C.EVP_MD_CTX_new()
    if ctx == nil then
        return false
    end
    local ok = C.EVP_DigestVerifyInit(ctx, nil, C.EVP_sha256(), nil, p) == 1
        and C.EVP_DigestVerify(ctx, sig, #sig, signed, #signed) == 1
    C.EVP_MD_CTX_free(ctx)
    C.ERR_clear_error()
    return ok
end

local function refuse(why)
    local header = ngx.header
    if why then
        header["WWW-Authenticate"] = 'Bearer error="invalid_token", error_description="'
            .. why .. '"'
    else
        header["WWW-Authenticate"] = "Bearer"
    end
    return 401, BODY_UNAUTHORIZED
end

-- the token, or nil
local function find_token(j, var)
    if j.header_var then
        return var[j.header_var]
    elseif j.cookie_var then
        return var[j.cookie_var]
    end
    local h = var.http_authorization
    if h and str_lower(str_sub(h, 1, 7)) == "bearer " then
        local t = str_sub(h, 8)
        local s = str_find(t, "[^ ]")
        return s and str_sub(t, s) or nil
    end
    return nil
end

-- a claim as a header value: strings without control characters, numbers, booleans
local function header_value(v)
    local t = type(v)
    if t == "string" then
        if #v > 4096 or str_find(v, "[%z\1-\31\127]") then
            return nil
        end
        return v
    elseif t == "number" then
        if v == math_floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
            return str_format("%d", v)
        end
        return tostring(v)
    elseif t == "boolean" then
        return v and "true" or "false"
    end
    return nil
end

local function set_claims(j, values)
    local claims = j.claims
    for i = 1, #claims do
        set_header(claims[i][2], values and values[i] or nil)
    end
end

function _M.check(j, var)
    local token = find_token(j, var)
    if not token or token == "" then
        set_claims(j, nil)
        return refuse(nil)
    end
    local cache = j.cache
    if not cache then
        cache = lrucache.new(CACHE_SIZE)
        j.cache = cache
    end
    local hit = cache:get(token)
    if hit then
        set_claims(j, hit)
        return nil
    end
    set_claims(j, nil)
    local t = split(token, b64url, json_decode)
    if not t then
        return refuse("malformed")
    end
    local alg, kid = t.header.alg, t.header.kid
    local key
    if kid ~= nil then
        key = j.by_kid[kid]
    elseif #j.keys == 1 then
        key = j.keys[1]
    end
    if not key or key.alg ~= alg then
        return refuse(key and "wrong algorithm" or "unknown key")
    end
    if not verify(key, t.signed, t.sig, j.aad) then
        return refuse("bad signature")
    end
    local now = ngx_time()
    local why = check_claims(t.claims, j, now)
    if why then
        return refuse(why)
    end
    local values = {}
    local claims = j.claims
    for i = 1, #claims do
        values[i] = header_value(t.claims[claims[i][1]]) or false
    end
    local ttl = CACHE_TTL
    local exp = t.claims.exp
    if exp then
        ttl = math_min(ttl, exp + j.leeway - now)
    end
    if ttl > 0 then
        cache:set(token, values, ttl)
    end
    set_claims(j, values)
    return nil
end

return _M
