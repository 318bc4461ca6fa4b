-- Everything a request carries from one phase to the next, named in one place: every
-- ngx.ctx key and every $sy_* variable the edge uses, who sets it and who reads it. Code
-- uses these names (request/vars_spec.lua fails on a literal sy_ name elsewhere, and on
-- a $sy_ variable of deploy/edge.nginx.conf that is not listed here).
--
-- ngx.ctx is the request's Lua table: cheap to read, but creating it costs ~900
-- instructions (a plain route's request never does), and it does not survive ngx.exec (a
-- named location starts with a new one). $sy_* variables survive ngx.exec; the ones Lua
-- sets are declared in @sy_vars of edge.nginx.conf (never entered), so no `set` runs per
-- request.
--
-- Pure: names only; any phase.

local _M = {}

-- ngx.ctx keys
_M.ctx = {
    -- the upstream object (switchyard.balancer.upstream). set: access (route with options,
    -- or an upstream a named location serves); read: balance
    up = "sy_up",
    -- the route's response_headers ({remove, set}). set: access; read: header_filter
    resp = "sy_resp",
    -- Set-Cookie values to send. set: route/exec (split_sticky), balancer/sticky; read:
    -- header_filter
    cookies = "sy_cookies",
    -- the route's timeouts ({connect, send, read} in s). set: route/exec; read: balance
    timeouts = "sy_timeouts",
    -- least_conn: the sy_conns key this attempt counts. set: balancer/least_conn (pick,
    -- retry); read: balancer/least_conn release (log, failed)
    conn = "sy_conn",
    -- hash: the ring index of the first pick. set and read: balancer/hash (retries)
    ring_i = "sy_ring_i",
    -- sticky: where in ctx.sy_cookies its cookie is. set and read: balancer/sticky
    sticky_i = "sy_sticky_i",
    -- the route's cors plan, and the Access-Control-Allow-Origin its request gets (nil:
    -- none). set: route/exec (cors); read: header_filter
    cors = "sy_cors",
    cors_origin = "sy_cors_origin",
    -- the route's gzip plan ({min, types}). set: access; read: header_filter (@sy_gzip)
    gzip = "sy_gzip",
    -- true: the route's forward_auth service refused (403). set: auth/forward; read:
    -- request/metrics (the rejection's reason is "auth", not "allow_deny")
    auth_refused = "sy_auth_refused",
}

-- $sy_* variables Lua sets or reads
_M.var = {
    -- the route id. set: access; read: access_named, balance, failed, the access log
    route = "sy_route",
    -- "1": the route's options ran before ngx.exec. set: access; read: access_named
    done = "sy_done",
    -- the canary/split choice (an upstream name). set: route/exec; read: route/exec (a
    -- later pass), failed
    pick = "sy_pick",
    -- "1" when that choice issued a split_sticky cookie. set and read: route/exec
    pick_cookie = "sy_pick_cookie",
    -- a request_headers "Host" to send upstream. set: route/exec; read: nginx
    -- (map $sy_host_set $sy_upstream_host)
    host_set = "sy_host_set",
    -- the route's HSTS value, "-" over plain HTTP. set: access; read: nginx
    -- (map $sy_hsts $sy_hsts_header)
    hsts = "sy_hsts",
    -- "1" in @sy_https_verified. set: nginx; read: access_named
    tls_verified = "sy_tls_verified",
    -- "https" for an HTTPS upstream. set: access_named (nginx sets "http"); read: nginx
    -- (proxy_pass $sy_scheme://$sy_pool)
    scheme = "sy_scheme",
    -- the upstream{} block (tls/pools). set: access_named; read: nginx (proxy_pass)
    pool = "sy_pool",
    -- SNI and verified name. set: access_named; read: nginx (proxy_ssl_name)
    tls_name = "sy_tls_name",
    -- gRPC (issue 22 item 5): the gRPC location the request is in ("@sy_grpc",
    -- "@sy_grpcs", "@sy_grpcs_verified"). set: nginx; read: grpc/access
    grpc = "sy_grpc",
    -- the gRPC status and percent-encoded message of the edge's own answer. set:
    -- grpc/access; read: nginx (add_trailer of @sy_grpc_status)
    grpc_status = "sy_grpc_status",
    grpc_message = "sy_grpc_message",
    -- the upstream's name. set: balance (only with --access-log-format json); read: the
    -- JSON access log
    upstream = "sy_upstream",
}

-- $sy_* variables only nginx uses (maps of edge.nginx.conf): the Upgrade header sent
-- upstream (websocket only) and its Connection header, the Strict-Transport-Security
-- header, the client's Host, the Host sent upstream; the request id; the JSON access
-- log's path and attempts; X-Forwarded-For behind trusted proxies (--trusted-proxies)
_M.nginx_only = {"sy_upgrade", "sy_connection", "sy_hsts_header", "sy_host",
                 "sy_upstream_host", "sy_request_id", "sy_log_path", "sy_attempts",
                 "sy_forwarded_for"}

return _M
