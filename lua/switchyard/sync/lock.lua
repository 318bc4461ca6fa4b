-- The syncer lock: one syncer per edge. sy_meta "syncer" holds the pid of the worker that
-- syncs, with a short TTL the holder renews at least every second, so the old worker 0 of a
-- HUP reload and the new one never write at the same time. A lock held by a process that
-- is certainly gone (kill -9 of worker 0) is taken over at once.
--
-- Worker 0's syncer timer; never yields. ctx: switchyard.sync.context.

local ffi = require "ffi"

local ngx = ngx
local ngx_log = ngx.log
local NOTICE = ngx.NOTICE

local _M = {}

local LOCK_KEY = "syncer"
local LOCK_TTL = 3                -- s; refreshed at least every second by the holder

ffi.cdef [[ int kill(int pid, int sig); ]]
local ESRCH = 3

-- false only when the process is certainly gone (a crashed worker 0 holding the lock)
local function pid_alive(pid)
    if ffi.C.kill(pid, 0) == 0 then
        return true
    end
    return ffi.errno() ~= ESRCH
end

-- True while this worker is (or becomes) the one syncer; renews the lock.
function _M.hold(ctx)
    local meta = ctx.meta
    local pid = ngx.worker.pid()
    local owner = meta:get(LOCK_KEY)
    if owner ~= nil and owner ~= pid and not pid_alive(owner) then
        ngx_log(NOTICE, "[switchyard] syncer ", owner, " is gone, taking over")
        meta:delete(LOCK_KEY)
        owner = nil
    end
    if owner == nil then
        local ok = meta:add(LOCK_KEY, pid, LOCK_TTL)
        if ok then
            return true
        end
        owner = meta:get(LOCK_KEY)
    end
    if owner == pid then
        meta:set(LOCK_KEY, pid, LOCK_TTL)
        return true
    end
    return false
end

-- True while this worker holds the lock (checked, not taken: the health follower asks).
function _M.held(ctx)
    return ctx.meta:get(LOCK_KEY) == ngx.worker.pid()
end

function _M.release(ctx)
    if _M.held(ctx) then
        ctx.meta:delete(LOCK_KEY)
    end
end

return _M
