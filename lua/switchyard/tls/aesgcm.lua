-- Decrypting certificate keys stored encrypted in Redis ("key_enc"), with libcrypto's EVP
-- AES-256-GCM through LuaJIT's FFI. nginx links OpenSSL, so libcrypto's symbols are in the
-- process already (ffi.C); nothing is loaded.
--
-- Format (Sources/SwitchyardCore/Certificate.swift, CertificateKeyCipher):
--   aes-256-gcm:<base64 nonce, 12 bytes>:<base64 ciphertext followed by the 16-byte tag>
-- with the additional authenticated data "switchyard:certificate:<id>" (a key_enc copied to
-- another certificate does not decrypt). Routes' HS256 secrets (secret_enc) use the same
-- form with "switchyard:route:<id>:jwt.secret" (switchyard.auth.jwt, through opener()).
-- The shared key is SWITCHYARD_CERT_KEY: 32 bytes as 64 hex digits or base64.
--
-- LuaJIT + nginx only (ffi, ngx.decode_base64). Any phase; never yields. Called when a
-- worker (re)builds a certificate, not per handshake. Never logs key material.

local ffi = require "ffi"

local C = ffi.C
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_gc = ffi.gc
local str_match = string.match
local str_gsub = string.gsub
local str_char = string.char
local tonumber = tonumber
local type = type
local pcall = pcall
local decode_base64 = ngx.decode_base64

-- pcall: another module (lua-resty-string) may have declared the same types already
pcall(ffi.cdef, [[
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct engine_st ENGINE;
]])
pcall(ffi.cdef, [[
EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *c);
const EVP_CIPHER *EVP_aes_256_gcm(void);
int EVP_DecryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
                       const unsigned char *key, const unsigned char *iv);
int EVP_DecryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
                      const unsigned char *in, int inl);
int EVP_DecryptFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *outm, int *outl);
int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr);
]])

local EVP_CTRL_GCM_SET_IVLEN = 0x9
local EVP_CTRL_GCM_SET_TAG = 0x11
local TAG_LEN = 16
local NONCE_LEN = 12

local _M = {}

local function hex_key(text)
    if #text ~= 64 or str_match(text, "[^0-9a-fA-F]") then
        return nil
    end
    return (str_gsub(text, "..", function(h) return str_char(tonumber(h, 16)) end))
end

-- The 32-byte key from SWITCHYARD_CERT_KEY's text, or nil, err.
function _M.parse_key(text)
    if type(text) ~= "string" then
        return nil, "no key"
    end
    text = str_match(text, "^%s*(.-)%s*$")
    local key = hex_key(text)
    if not key then
        key = decode_base64(text)
    end
    if not key or #key ~= 32 then
        return nil, "SWITCHYARD_CERT_KEY must be 32 bytes as 64 hex digits or base64"
    end
    return key
end

-- An opener over a 32-byte key: open(sealed, aad) -> plaintext | nil, err.
function _M.opener(key)
    return function(sealed, aad)
        local nonce_b64, data_b64 = str_match(sealed or "", "^aes%-256%-gcm:([^:]+):([^:]+)$")
        if not nonce_b64 then
            return nil, "the sealed value is not aes-256-gcm:<nonce>:<data>"
        end
        local nonce, data = decode_base64(nonce_b64), decode_base64(data_b64)
        if not nonce or #nonce ~= NONCE_LEN or not data or #data <= TAG_LEN then
            return nil, "the sealed value is malformed"
        end
        local ctx = C.EVP_CIPHER_CTX_new()
        if ctx == nil then
            return nil, "EVP_CIPHER_CTX_new failed"
        end
        ctx = ffi_gc(ctx, C.EVP_CIPHER_CTX_free)
        local n = #data - TAG_LEN
        local out = ffi_new("unsigned char[?]", n + 32)
        local outl = ffi_new("int[1]")
        local tag = ffi_new("unsigned char[?]", TAG_LEN)
        ffi.copy(tag, data:sub(n + 1), TAG_LEN)
        local ok = C.EVP_DecryptInit_ex(ctx, C.EVP_aes_256_gcm(), nil, nil, nil) == 1
            and C.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, nil) == 1
            and C.EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1
            and C.EVP_DecryptUpdate(ctx, nil, outl, aad, #aad) == 1
            and C.EVP_DecryptUpdate(ctx, out, outl, data, n) == 1
        if not ok then
            return nil, "decryption failed"
        end
        local total = outl[0]
        if C.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) ~= 1 then
            return nil, "decryption failed"
        end
        if C.EVP_DecryptFinal_ex(ctx, out + total, outl) ~= 1 then
            return nil, "the tag does not verify: another SWITCHYARD_CERT_KEY than the"
                .. " controller's, or a damaged document"
        end
        total = total + outl[0]
        return ffi_string(out, total)
    end
end

-- A decrypter over a 32-byte key: decrypt(key_enc, id) -> PEM | nil, err.
function _M.decrypter(key)
    local open = _M.opener(key)
    return function(sealed, id)
        return open(sealed, "switchyard:certificate:" .. id)
    end
end

return _M
