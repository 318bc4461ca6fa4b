-- The nginx phase handlers: every *_by_lua_block in deploy/edge.nginx.conf is one line
-- calling one of these, and each is one line here naming the module that does the work.
--
-- The request path (access, access_named, balance, header_filter, log, failed,
-- ssl_client_hello, ssl_certificate) never yields and never talks to Redis: none of its
-- modules reaches switchyard.sync (lua/switchyard/request/boundary_spec.lua checks every
-- require). Only init_worker starts the syncer, in worker 0.
--
-- init() also makes this table the global `switchyard_phases` (in the master, before the
-- workers fork), and the request-path lines call `switchyard_phases.access()` and so on:
-- a global read costs ~200 instructions per phase less than the require(...) call
-- (bench/instructions.py; a plain request enters Lua in three phases).

local startup = require "switchyard.startup"
local access = require "switchyard.request.access"
local balance = require "switchyard.request.balance"
local response = require "switchyard.request.response"
local handshake = require "switchyard.tls.handshake"
local status = require "switchyard.status"
local metrics = require "switchyard.request.metrics"
local metrics_page = require "switchyard.metrics.serve"
local explain = require "switchyard.explain"
local grpc = require "switchyard.grpc.access"

local phases = {
    -- init_by_lua (master): configuration; the snapshot on a fresh start (and the global)
    init = startup.init,
    -- init_worker_by_lua: this worker's tables and timers; worker 0 starts the syncer
    init_worker = startup.init_worker,
    -- access_by_lua of location /: route, options, upstream, or on to a named location
    access = access.access,
    -- access_by_lua of @sy_full and @sy_https_verified: the same route again ($sy_route)
    access_named = access.access_named,
    -- balancer_by_lua of the three upstream{} blocks: the endpoint of each attempt
    balance = balance.balance,
    -- header_filter_by_lua of the named locations: response headers and cookies
    header_filter = response.header_filter,
    -- log_by_lua of the named locations: least_conn's count ends, then the metrics
    log = response.log,
    -- log_by_lua of location / and @sy_failed (metrics on): the request's metrics
    log_metrics = metrics.log,
    -- content_by_lua of @sy_failed (error_page 502 504): passive health, then the answer
    failed = response.failed,
    -- content_by_lua of @sy_grpc_status: the edge's gRPC statuses, and nginx's 502/504 of
    -- the gRPC locations (passive health first) as one (issue 22 item 5)
    grpc_status = grpc.answer,
    -- ssl_client_hello_by_lua: sessions tied to the certificate the SNI name selects
    ssl_client_hello = handshake.ssl_client_hello,
    -- ssl_certificate_by_lua: the certificate for the SNI name
    ssl_certificate = handshake.ssl_certificate,
    -- content_by_lua of /_switchyard/status
    status = status.serve,
    -- content_by_lua of /metrics (metrics listener): the Prometheus text format
    metrics = metrics_page.serve,
    -- content_by_lua of /_switchyard/explain: which route a request would take, and why
    explain = explain.serve,
}

local startup_init = phases.init
phases.init = function(c)
    rawset(_G, "switchyard_phases", phases)
    return startup_init(c)
end

return phases
