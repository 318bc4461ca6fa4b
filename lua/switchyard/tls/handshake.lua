-- ssl_certificate_by_lua: the certificate for the handshake's SNI name from this worker's
-- table (switchyard.tls.certificates, fed by switchyard.state as certificate documents
-- change), after the one shm read a request makes too (the worker brought to the current
-- serial). One or two table lookups (exact name, *.<parent>, the default) and the three
-- ngx.ssl setters: no parsing, no decryption here. None and no default: the handshake is
-- refused. Never yields.

local worker = require "switchyard.worker"
local logsafe = require "switchyard.util.logsafe"

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_exit = ngx.exit
local ERR = ngx.ERR
local WARN = ngx.WARN

local current = worker.current

local _M = {}

local certs, ssl    -- this worker's table (switchyard.worker) and ngx.ssl, set by attach()
local warned = 0    -- time of the last "no certificate for" log

-- ssl: require "ngx.ssl" (loaded in init_worker)
function _M.attach(w, ngx_ssl)
    certs, ssl = w.certs, ngx_ssl
end

function _M.ssl_certificate()
    current()
    local name = ssl.server_name()
    local entry = certs:select(name)
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
end

return _M
