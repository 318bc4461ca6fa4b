-- GET /_switchyard/status (content handler; loopback clients only, edge.nginx.conf): JSON
-- of the edge (version, digest, serial), the answering worker, the syncer, the snapshot,
-- the configuration dict, TLS and endpoint health. Reads sy_meta and this worker's tables;
-- never yields.

local worker = require "switchyard.worker"
local changelog = require "switchyard.shm.changelog"
local digest_mod = require "switchyard.shm.digest"
local health_mod = require "switchyard.health.rotation"
local cjson = require "cjson.safe"

local ngx = ngx

local _M = {}

function _M.serve()
    local meta = ngx.shared.sy_meta
    worker.refresh(changelog.serial(meta))
    local config, state, router = worker.config, worker.state, worker.router
    local cfg = ngx.shared.sy_config
    local body = {
        edge_id = config.edge_id,
        group = config.group,
        listen = config.listen,
        version = meta:get("version"),
        digest = meta:get("digest") and digest_mod.hex(meta:get("digest")) or nil,
        epoch = meta:get("epoch"),
        regex = meta:get("sync:regex"),
        serial = meta:get("serial"),
        started = meta:get("started"),
        worker = {
            id = ngx.worker.id(),
            pid = ngx.worker.pid(),
            serial = state.serial,
            routes = router.n,
            upstreams = state.n_upstreams,
            full_rebuilds = state.full_rebuilds,
        },
        syncer = {
            pid = meta:get("syncer"),
            redis = meta:get("sync:redis"),
            subscribed = meta:get("sync:subscribed"),
            last_sync = meta:get("sync:last_sync"),
            last_error = meta:get("sync:last_error"),
            last_error_at = meta:get("sync:last_error_at"),
            full_reloads = meta:get("sync:full_reloads") or 0,
            last_full_reload = meta:get("sync:last_full_reload"),
            last_verified = meta:get("sync:last_verified"),
            shm_errors = meta:get("sync:shm_errors") or 0,
            prefetch_hits = meta:get("sync:prefetch_hits") or 0,
            prefetch_misses = meta:get("sync:prefetch_misses") or 0,
            redis_empty = meta:get("sync:redis_empty"),
            conflict = meta:get("sync:conflict") or false,
            out_of_band = meta:get("sync:out_of_band") or 0,
            out_of_band_keys = meta:get("sync:out_of_band_keys") or "",
            verifying_snapshot = meta:get("sync:verify") or false,
        },
        snapshot = {
            path = config.snapshot_path,
            writable = meta:get("snapshot:writable"),
            loaded_version = meta:get("snapshot:loaded_version"),
            version = meta:get("snapshot:version"),
            written_at = meta:get("snapshot:written_at"),
            write_ms = meta:get("snapshot:write_ms"),
            bytes = meta:get("snapshot:bytes"),
            journal_records = meta:get("snapshot:journal_records") or 0,
            journal_bytes = meta:get("snapshot:journal_bytes") or 0,
            loaded_journal_records = meta:get("snapshot:loaded_journal_records"),
            errors = meta:get("snapshot:errors") or 0,
            last_error = meta:get("snapshot:last_error"),
        },
        config_dict = {
            capacity = cfg:capacity(),
            free_space = cfg:free_space(),
        },
        tls = worker.certs:summary(),
        health = health_mod.status(ngx.shared.sy_health, worker.passive:outs(100),
                                   worker.upstreams, 100),
    }
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(body))
end

return _M
