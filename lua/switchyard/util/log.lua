-- The logger the pure modules are handed: log(level, msg) with level "err", "warn" or
-- anything else (notice), into nginx's error log with the "[switchyard] " prefix. Pure
-- modules take it as an argument so busted can collect what they say instead.
-- Every message goes through switchyard.util.logsafe.line: a value a document or a client
-- brought into it cannot start a line of its own. Any phase; never yields.

local logsafe = require "switchyard.util.logsafe"

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE

local _M = {}

function _M.to_nginx(level, msg)
    msg = logsafe.line(msg)
    if level == "err" then
        ngx_log(ERR, "[switchyard] ", msg)
    elseif level == "warn" then
        ngx_log(WARN, "[switchyard] ", msg)
    else
        ngx_log(NOTICE, "[switchyard] ", msg)
    end
end

return _M
