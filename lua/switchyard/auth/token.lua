-- The pure parts of checking a JWT (RFC 7519, JWS compact form, RFC 7515) for the jwt
-- route option (switchyard.auth.jwt does the signature with libcrypto).
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. Base64url decoding and JSON decoding are
-- passed in (ngx.base64 and cjson.safe on the edge). Never raises on bad input.
--
--   split(token, b64url, json) -> {header, claims, signed (the "h.p" bytes), sig}
--                                 or nil, reason ("malformed")
--   ecdsa_der(raw)           -> the DER ECDSA-Sig-Value of a 64-byte r||s, or nil
--   check_claims(claims, j, now) -> nil, or the reason ("expired", "not yet valid",
--                                 "wrong issuer", "wrong audience", "malformed")

local type = type
local str_find = string.find
local str_sub = string.sub
local str_byte = string.byte
local str_char = string.char

local _M = {}

_M.MAX_TOKEN = 8192

-- header.payload.signature; each base64url without padding
function _M.split(token, b64url, json)
    if type(token) ~= "string" or #token > _M.MAX_TOKEN or str_find(token, "[^%w%-_%.]") then
        return nil, "malformed"
    end
    local d1 = str_find(token, ".", 1, true)
    local d2 = d1 and str_find(token, ".", d1 + 1, true)
    if not d2 or str_find(token, ".", d2 + 1, true) or d1 == 1 or d2 == d1 + 1
            or d2 == #token then
        return nil, "malformed"
    end
    local h = b64url(str_sub(token, 1, d1 - 1))
    local p = b64url(str_sub(token, d1 + 1, d2 - 1))
    local sig = b64url(str_sub(token, d2 + 1))
    if not h or not p or not sig then
        return nil, "malformed"
    end
    local header, claims = json(h), json(p)
    if type(header) ~= "table" or type(claims) ~= "table" then
        return nil, "malformed"
    end
    return {header = header, claims = claims, signed = str_sub(token, 1, d2 - 1), sig = sig}
end

-- one DER INTEGER of a big-endian unsigned number: leading zeros off, a zero byte before
-- a high bit
local function der_int(b)
    local i = 1
    while i < #b and str_byte(b, i) == 0 do
        i = i + 1
    end
    b = str_sub(b, i)
    if str_byte(b, 1) >= 0x80 then
        b = "\0" .. b
    end
    return "\2" .. str_char(#b) .. b
end

-- JWS carries ES256 signatures as r||s (32 bytes each); libcrypto verifies DER
function _M.ecdsa_der(raw)
    if type(raw) ~= "string" or #raw ~= 64 then
        return nil
    end
    local body = der_int(str_sub(raw, 1, 32)) .. der_int(str_sub(raw, 33, 64))
    return "\48" .. str_char(#body) .. body
end

local function number_or_nil(v)
    if v == nil then
        return true, nil
    end
    return type(v) == "number", v
end

-- exp and nbf with the route's leeway; iss and aud when the route names them
function _M.check_claims(c, j, now)
    local ok_exp, exp = number_or_nil(c.exp)
    local ok_nbf, nbf = number_or_nil(c.nbf)
    if not ok_exp or not ok_nbf then
        return "malformed"
    end
    local leeway = j.leeway or 0
    if exp and now >= exp + leeway then
        return "expired"
    end
    if nbf and now < nbf - leeway then
        return "not yet valid"
    end
    if j.issuer and c.iss ~= j.issuer then
        return "wrong issuer"
    end
    local want = j.audience
    if want then
        local aud = c.aud
        if type(aud) == "table" then
            local found = false
            for i = 1, #aud do
                found = found or aud[i] == want
            end
            if not found then
                return "wrong audience"
            end
        elseif aud ~= want then
            return "wrong audience"
        end
    end
    return nil
end

return _M
