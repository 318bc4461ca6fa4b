-- The TLS handshake, from this worker's certificate table (switchyard.tls.certificates, fed
-- by switchyard.state as certificate documents change), each after the one shm read a
-- request makes too (the worker brought to the current serial). Never yields.
--
--   ssl_client_hello()  ssl_client_hello_by_lua, before OpenSSL decides on resumption: the
--                       certificate the SNI name selects (or none) becomes the
--                       connection's session-id context, sha1(id, version, fingerprint).
--                       A session (cache or ticket, TLS 1.2 and 1.3) remembers the context
--                       it was made in, and OpenSSL treats one whose context differs as
--                       unknown: a session of a certificate since deleted or replaced does
--                       not resume (the client gets a full handshake and what the edge
--                       serves now), where it resumed for up to the session timeout
--                       before (issue 16, L6). One table lookup and one FFI call
--                       (SSL_set_session_id_context; libssl is in the process already).
--   ssl_certificate()   ssl_certificate_by_lua (full handshakes only): one or two table
--                       lookups (exact name, *.<parent>, the default) and the three
--                       ngx.ssl setters: no parsing, no decryption here. None and no
--                       default: the handshake is refused. A certificate with client_ca
--                       (mTLS) also asks the client for a certificate issued by one of
--                       those CAs (ngx.ssl.verify_client) and makes OpenSSL's verdict
--                       final: "required" fails the handshake without one, both modes
--                       fail it on one that does not verify (verify_mode below).

local metrics_count = require("switchyard.request.metrics").count
local ffi = require "ffi"
local base = require "resty.core.base"
local worker = require "switchyard.worker"
local logsafe = require "switchyard.util.logsafe"

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_exit = ngx.exit
local ERR = ngx.ERR
local WARN = ngx.WARN
local C = ffi.C
local get_request = base.get_request
local tostring = tostring

local current = worker.current

-- pcall: another module may have declared them already
pcall(ffi.cdef, [[
void *ngx_http_lua_ffi_get_req_ssl_pointer(void *r);
]])
pcall(ffi.cdef, [[
int SSL_set_session_id_context(void *ssl, const unsigned char *sid_ctx,
                               unsigned int sid_ctx_len);
]])
pcall(ffi.cdef, [[
void SSL_set_verify(void *ssl, int mode, int (*cb)(int, void *));
]])

-- OpenSSL's SSL_VERIFY_PEER and SSL_VERIFY_FAIL_IF_NO_PEER_CERT
local VERIFY_PEER, VERIFY_FAIL_IF_NONE = 1, 2
-- mTLS: ngx.ssl.verify_client (lua-resty-core 0.1.25) asks for the client's certificate
-- with lua-nginx-module's verify callback, which accepts whatever it gets and leaves the
-- verdict to $ssl_client_verify at request time (as nginx's ssl_verify_client does). The
-- edge refuses in the handshake instead, so no request pays a check: this callback
-- returns OpenSSL's own verdict (preverify_ok). It runs in OpenSSL's certificate
-- processing, never inside Lua code; created once per worker and never freed.
local verdict_cb
local function verdict()
    if not verdict_cb then
        verdict_cb = ffi.cast("int (*)(int, void *)", function(ok) return ok end)
    end
    return verdict_cb
end

local _M = {}

local certs, ssl    -- this worker's table (switchyard.worker) and ngx.ssl, set by attach()
local hello         -- ngx.ssl.clienthello, set by attach()
local warned = 0    -- time of the last "no certificate for" log
local ctx_warned = 0   -- time of the last "cannot set the session context" log

-- The context of handshakes that select no certificate (they fail, and make no session).
local NO_CERTIFICATE = "switchyard: no certificate"

-- ssl: require "ngx.ssl" (loaded in init_worker)
function _M.attach(w, ngx_ssl)
    certs, ssl = w.certs, ngx_ssl
    hello = require "ngx.ssl.clienthello"
end

-- The session-id context of a certificate entry: 20 bytes (OpenSSL takes up to 32),
-- computed once per entry (an entry is rebuilt whenever its document changes).
local function session_context(entry)
    local c = entry.session_context
    if not c then
        c = ngx.sha1_bin("switchyard:certificate:" .. entry.id .. "\0" .. tostring(entry.version)
                         .. "\0" .. tostring(entry.fingerprint))
        entry.session_context = c
    end
    return c
end

function _M.ssl_client_hello()
    current()
    local entry = certs:select(hello.get_client_hello_server_name())
    local c = entry and session_context(entry) or NO_CERTIFICATE
    local conn = C.ngx_http_lua_ffi_get_req_ssl_pointer(get_request())
    if conn ~= nil and C.SSL_set_session_id_context(conn, c, #c) == 1 then
        return
    end
    local now = ngx_now()
    if now - ctx_warned >= 10 then
        ctx_warned = now
        ngx_log(ERR, "[switchyard] cannot set the TLS session context: a session may resume",
                " for a certificate changed since (logged at most every 10 s)")
    end
end

function _M.ssl_certificate()
    current()
    local name = ssl.server_name()
    local entry = certs:select(name)
    metrics_count("tls_handshakes", entry and entry.id or "none")
    if not entry then
        local now = ngx_now()
        if now - warned >= 10 then
            warned = now
            ngx_log(WARN, "[switchyard] no certificate for ",
                    name and ("\"" .. logsafe.escape(name) .. "\"") or "a handshake without SNI",
                    " and no default certificate: handshake refused (logged at most every 10 s)")
        end
        return ngx_exit(ngx.ERROR)
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(entry.cert)
    end
    if ok then
        ok, err = ssl.set_priv_key(entry.key)
    end
    if not ok then
        ngx_log(ERR, "[switchyard] certificate:", entry.id, ": cannot use it: ", err)
        return ngx_exit(ngx.ERROR)
    end
    local client_ca = entry.client_ca
    if client_ca then
        -- mTLS (docs/traffic-policies.md, "Client certificates"): chains up to 4 deep
        ok, err = ssl.verify_client(client_ca, 4)
        local conn = ok and C.ngx_http_lua_ffi_get_req_ssl_pointer(get_request())
        if not conn or conn == nil then
            ngx_log(ERR, "[switchyard] certificate:", entry.id, ": cannot ask for a client",
                    " certificate: ", tostring(err or "no SSL connection"))
            return ngx_exit(ngx.ERROR)
        end
        local mode = entry.verify_client == "optional" and VERIFY_PEER
                     or VERIFY_PEER + VERIFY_FAIL_IF_NONE
        C.SSL_set_verify(conn, mode, verdict())
    end
end

return _M
