-- The subscriber: the syncer's thread that owns the pub/sub connection.
--
-- SUBSCRIBE switchyard:{cfg}:events switchyard:{cfg}:health_events (one command). An
-- events message (the new version, and for a small batch the objects it changed) is
-- noted in ctx.hinted and posts ctx.sema, waking the applier; so does every
-- (re)subscribe, to catch up on what was missed. health_events messages and every
-- (re)subscribe go to the health follower (ctx.health). It PINGs an idle subscription
-- every SUB_PING_S and reconnects after SUB_DEAD_S of silence (a frozen Redis), with
-- backoff (100 ms doubling to 1 s, with jitter). Every iteration runs under pcall; reads
-- time out every second, so the loop sees ngx.worker.exiting().
--
-- Yields; worker 0's syncer timer only. ctx: switchyard.sync.context.

local keys = require "switchyard.sync.keys"
local context = require "switchyard.sync.context"
local resp = require "switchyard.sync.resp"
local backoff = require("switchyard.util.backoff").delay

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local NOTICE = ngx.NOTICE
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_update_time = ngx.update_time
local worker_exiting = ngx.worker.exiting
local type = type
local pcall = pcall

local is_error = resp.is_error
local set_status = context.set_status

local _M = {}

local SUB_PING_S = 10             -- PING an idle subscription this often
local SUB_DEAD_S = 25             -- nothing at all for this long: reconnect

-- The subscriber thread (spawned by switchyard.sync.syncer).
function _M.loop(ctx)
    local sema, hinted, health = ctx.sema, ctx.hinted, ctx.health
    local sub = context.new_client(ctx, 1000)
    local attempt = 0
    local last_rx, last_ping = 0, 0
    local subscribed_once = false
    while not worker_exiting() do
        local ok, err = pcall(function()
            if not sub:connected() then
                local cok, cerr = sub:connect()
                local res
                if cok then
                    -- one command, two channels: the prober's verdicts come on the same
                    -- connection (switchyard.sync.health_follower); Redis answers one
                    -- confirmation per channel, the second is read (and ignored) below
                    res, cerr = sub:call("SUBSCRIBE", keys.events, keys.health_events)
                    if res and (is_error(res) or type(res) ~= "table"
                                or res[1] ~= "subscribe") then
                        cerr = "unexpected SUBSCRIBE reply"
                        res = nil
                        sub:close()
                    end
                end
                if not cok or not res then
                    set_status(ctx, "subscribed", false)
                    ngx_log(WARN, "[switchyard] Redis subscription: ", cerr)
                    ngx_sleep(backoff(attempt))
                    attempt = attempt + 1
                    return
                end
                attempt = 0
                if subscribed_once then
                    ctx.meta:incr("metrics:reconnects", 1, 0)
                end
                subscribed_once = true
                set_status(ctx, "subscribed", true)
                ngx_log(NOTICE, "[switchyard] subscribed to ", keys.events)
                last_rx, last_ping = ngx_now(), ngx_now()
                sema:post(1)   -- catch up on whatever happened while unsubscribed
                health:on_subscribed()
                return
            end
            local msg, rerr = sub:read(true)
            ngx_update_time()
            local now = ngx_now()
            if msg then
                last_rx = now
                if type(msg) == "table" and msg[1] == "message" then
                    if msg[2] == keys.health_events then
                        health:on_message(msg[3])
                    else
                        if not hinted:add(msg[3]) then
                            ngx_log(WARN, "[switchyard] ignoring a message on ", keys.events,
                                    " that does not start with a version")
                        end
                        sema:post(1)
                    end
                end
                return
            end
            if rerr ~= "timeout" then
                set_status(ctx, "subscribed", false)
                ngx_log(WARN, "[switchyard] Redis subscription lost: ", rerr)
                sub:close()
                return
            end
            if now - last_rx > SUB_DEAD_S then
                set_status(ctx, "subscribed", false)
                ngx_log(WARN, "[switchyard] Redis subscription silent for ", SUB_DEAD_S,
                        " s, reconnecting")
                sub:close()
            elseif now - last_ping >= SUB_PING_S then
                last_ping = now
                sub:send({{"PING"}})
            end
        end)
        if not ok then
            ngx_log(ERR, "[switchyard] subscriber error: ", err)
            sub:close()
            ngx_sleep(backoff(attempt))
            attempt = attempt + 1
        end
    end
    sub:close()
end

return _M
