-- The digest's per-document hash (switchyard.shm.digest: the first 52 bits of
-- sha1(key .. "\n" .. doc)) computed with libcrypto's SHA1_Init/Update/Final through LuaJIT's
-- FFI: the key, "\n" and the document are fed in turn, so no concatenated copy is made and
-- no result string is interned. A 100k-route load hashes every document once; with
-- ngx.sha1_bin over the concatenation that was a quarter of the reload (jit.p).
-- nginx links OpenSSL, so the symbols are in the process (ffi.C), as for switchyard.tls.aesgcm.
--
-- LuaJIT + nginx only. Any phase; never yields. Same results as
-- digest.hasher(ngx.sha1_bin), which the edge falls back to if libcrypto's SHA1 is missing.

local ffi = require "ffi"

local digest = require "switchyard.shm.digest"

local C = ffi.C
local pcall = pcall
local ipairs = ipairs
local math_floor = math.floor

-- SHA_CTX is 96 bytes in OpenSSL 1.1 and 3.x; reserve more, 8-byte aligned
pcall(ffi.cdef, [[
typedef struct { uint64_t opaque[24]; } switchyard_sha_ctx;
int SHA1_Init(switchyard_sha_ctx *c);
int SHA1_Update(switchyard_sha_ctx *c, const void *data, size_t len);
int SHA1_Final(unsigned char *md, switchyard_sha_ctx *c);
]])

local _M = {}

local function libcrypto_hasher()
    local ok = pcall(function() return C.SHA1_Init end)
    if not ok then
        return nil
    end
    local ctx = ffi.new("switchyard_sha_ctx")
    local md = ffi.new("unsigned char[20]")
    return function(key, doc)
        C.SHA1_Init(ctx)
        C.SHA1_Update(ctx, key, #key)
        C.SHA1_Update(ctx, "\n", 1)
        C.SHA1_Update(ctx, doc, #doc)
        C.SHA1_Final(md, ctx)
        -- the first 13 hex digits: 6 bytes and the high nibble of the 7th
        return ((((md[0] * 256 + md[1]) * 256 + md[2]) * 256 + md[3]) * 256 + md[4]) * 4096
            + md[5] * 16 + math_floor(md[6] / 16)
    end
end

-- hash(key, doc) -> the 52-bit number: libcrypto's when it gives the same results as
-- digest.hasher(sha1_bin) on a few documents, else that one. Also returns which it is.
function _M.hasher(sha1_bin)
    local reference = digest.hasher(sha1_bin)
    local fast = libcrypto_hasher()
    if not fast then
        return reference, "ngx.sha1_bin (libcrypto's SHA1 not found)"
    end
    for _, d in ipairs({{"route:a", ""}, {"upstream:u", '{"version":3,"endpoints":[]}'},
                        {"route:\255", string.rep("x\0y", 200)}}) do
        if fast(d[1], d[2]) ~= reference(d[1], d[2]) then
            return reference, "ngx.sha1_bin (libcrypto's SHA1 disagreed)"
        end
    end
    return fast, "libcrypto SHA1"
end

return _M
