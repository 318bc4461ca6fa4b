-- The edge's registration in Redis (redis/README.md, "Edges"): HSET edge:<id> ... + EXPIRE +
-- ZADD edges, pipelined in one round trip, every second and right after a new version (at
-- most every BEAT_GAP_S: a burst of changes is reported together). The hash carries
-- applied_version, digest and epoch, read together: nothing else writes them, and nothing
-- yields between a commit and this read; conflict, why the edge holds its configuration
-- instead of following Redis ("" when it follows; switchyard.sync.plan); out_of_band, how
-- many documents it loaded although they were changed behind sy_apply's back, the first
-- ones (out_of_band_keys) and the digest Redis must have then (recorded_digest; ""
-- when none: switchyard.sync.out_of_band); regex, the PCRE its ngx.re links (pcre1 or
-- pcre2: switchyard.sync.regex_engine), which the controller compares with the one it
-- validates with.
--
-- Yields; worker 0's syncer timer only. ctx: switchyard.sync.context.

local keys = require "switchyard.sync.keys"
local context = require "switchyard.sync.context"
local first_error = require("switchyard.sync.reply").first_error

local tostring = tostring

local _M = {}

_M.EVERY_S = 1
_M.BEAT_GAP_S = 0.05      -- a new version is reported at once, but at most this often

-- One heartbeat on the command connection. Returns true, or nil, err.
function _M.beat(ctx, cmd)
    local conf, meta = ctx.conf, ctx.meta
    local now = context.now_ms()
    local key = keys.edge(conf.edge_id)
    local replies, err = cmd:pipeline({
        {"HSET", key, "id", conf.edge_id, "applied_version", meta:get("version") or 0,
         "digest", context.local_digest(ctx) or "", "epoch", meta:get("epoch") or "",
         "conflict", meta:get("sync:conflict") or "",
         "out_of_band", meta:get("sync:out_of_band") or 0,
         "out_of_band_keys", meta:get("sync:out_of_band_keys") or "",
         "recorded_digest", context.recorded_digest(ctx) or "",
         "regex", meta:get("sync:regex") or "", "last_seen", now, "started",
         meta:get("started") or now, "pid", conf.pid, "listen", conf.listen,
         "metrics_listen", conf.metrics_listen or ""},
        {"EXPIRE", key, keys.edge_ttl_s},
        {"ZADD", keys.edges, now, conf.edge_id},
    })
    if not replies then
        return nil, "heartbeat: " .. tostring(err)
    end
    local rerr = first_error(replies, #replies)
    if rerr then
        return nil, "heartbeat: " .. rerr
    end
    return true
end

return _M
