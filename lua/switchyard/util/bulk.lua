-- Bulk builds with the Lua garbage collector stopped.
--
-- Loading 100,000 routes allocates far more than it keeps: Redis replies, document copies,
-- decoded JSON and temporary tables. With the incremental collector running, LuaJIT spent
-- about 30% of a cold start marking a heap that only grew (profiled with jit.p). When
-- nothing is served yet (a cold edge's first load and its workers' first builds) the build
-- runs with the collector stopped and, when asked, one full collection at the end. Peak memory
-- during such a build is the live tables plus the build's garbage: at 100k routes a worker
-- peaked ~150 MB higher and was back to its usual size after the collection.
--
-- Pure: no ngx. Nested runs stop and restart the collector once (the outermost run).

local collectgarbage = collectgarbage
local pcall = pcall
local error = error

local _M = {}

local depth = 0

-- Calls fn(...) (at most two results) with the collector stopped; collect: a full
-- collection afterwards. Errors raised by fn are raised again after the restart.
function _M.run(collect, fn, ...)
    if depth == 0 then
        collectgarbage("stop")
    end
    depth = depth + 1
    local ok, a, b = pcall(fn, ...)
    depth = depth - 1
    if depth == 0 then
        collectgarbage("restart")
        if collect then
            collectgarbage("collect")
        end
    end
    if not ok then
        error(a, 0)
    end
    return a, b
end

return _M
