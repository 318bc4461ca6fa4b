-- The logger the pure modules are handed: log(level, msg) with level "err", "warn" or
-- anything else (notice), into nginx's error log with the "[switchyard] " prefix. Pure
-- modules take it as an argument so busted can collect what they say instead.
-- Any phase; never yields.

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE

local _M = {}

function _M.to_nginx(level, msg)
    if level == "err" then
        ngx_log(ERR, "[switchyard] ", msg)
    elseif level == "warn" then
        ngx_log(WARN, "[switchyard] ", msg)
    else
        ngx_log(NOTICE, "[switchyard] ", msg)
    end
end

return _M
