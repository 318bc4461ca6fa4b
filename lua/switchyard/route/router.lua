-- Host + path router: which route serves a request.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The regex engine is injected
-- (find(subject, regex) -> truthy when it matches; in nginx ngx.re.find(uri, re, "jo")),
-- so busted can test it. Per-worker data; never yields.
--
-- Semantics (like nginx server_name, then location):
--   1. Host. The exact name first; otherwise the most specific wildcard: for
--      "a.b.apps.x" try "*.b.apps.x", then "*.apps.x", then "*.x". A wildcard covers any
--      number of labels ("*.apps.x" matches "a.b.apps.x") but never the bare parent
--      ("*.apps.x" does not match "apps.x"). Last, the catch-all host "*", which takes
--      every request no other host entry claims. The most specific host that has ANY route is
--      chosen and only its paths are considered: no fall-through to a less specific host,
--      even when none of its paths match (the request gets a 404).
--   2. Path, within that host, against the normalized URI (no query string):
--      exact routes; else the longest prefix (plain string prefix on any character, as
--      nginx does: "/api" matches "/apix"); else regex routes in priority order, first
--      match wins (unanchored unless the regex anchors itself).
--   3. Ties (same host, path and match kind; or the order of regexes): higher priority
--      first, then id ascending.
--
-- Cost: put/remove touch only the route's host entry (per-change cost independent of the
-- table size; remove also keeps the route in a bounded retired set, see recent). match
-- is 1-2 hash lookups for the host (plus one per label for wildcards), one for the exact
-- path, one string.sub + hash lookup per distinct prefix
-- length of that host, then the regexes of that host.

local setmetatable = setmetatable
local str_find = string.find
local str_sub = string.sub
local tbl_sort = table.sort
local tbl_remove = table.remove

local _M = {}
local mt = {__index = _M}

local function route_before(a, b)
    if a.priority ~= b.priority then
        return a.priority > b.priority
    end
    return a.id < b.id
end

local function desc(a, b)
    return a > b
end

-- find(subject, regex) -> truthy on match
function _M.new(find)
    return setmetatable({
        find = find,
        exact_hosts = {},   -- "bbs.test.com" -> host entry
        wild_hosts = {},    -- ".apps.x" (from "*.apps.x") -> host entry
        n_wild = 0,
        by_id = {},         -- route id -> route
        n = 0,
        retired = {},       -- route id -> the route removed or replaced last (see recent)
        retired_old = {},   -- the generation before
        n_retired = 0,
    }, mt)
end

-- Routes removed or replaced lately stay findable by id (recent): the edge routes a
-- request in its access phase and finds the route again in the balancer, which runs only
-- once nginx has read the request body; a change applied in between must not fail a
-- request that was already routed (an nginx reload would not). Two generations of at
-- most RETIRED_MAX routes each.
_M.RETIRED_MAX = 256

local function new_host()
    return {
        n = 0,
        exact = {},       -- path -> sorted list of routes
        prefix = {},      -- path -> sorted list of routes
        len_count = {},   -- prefix length -> number of distinct prefix paths of that length
        lens = {},        -- distinct prefix lengths, longest first
        regex = {},       -- sorted list of regex routes
    }
end

local function host_table(self, host)
    if str_sub(host, 1, 2) == "*." then
        return self.wild_hosts, str_sub(host, 2), true
    end
    return self.exact_hosts, host, false
end

local function list_insert(list, route)
    list[#list + 1] = route
    if #list > 1 then
        tbl_sort(list, route_before)
    end
end

local function list_remove(list, route)
    for i = 1, #list do
        if list[i] == route then
            tbl_remove(list, i)
            return
        end
    end
end

-- Adds or replaces a decoded route (switchyard.route.decode).
function _M.put(self, route)
    if self.by_id[route.id] then
        self:remove(route.id)
    end
    local hosts, key, wild = host_table(self, route.host)
    local h = hosts[key]
    if not h then
        h = new_host()
        hosts[key] = h
        if wild then
            self.n_wild = self.n_wild + 1
        end
    end
    local m = route.match
    if m == "exact" then
        local list = h.exact[route.path]
        if not list then
            list = {}
            h.exact[route.path] = list
        end
        list_insert(list, route)
    elseif m == "prefix" then
        local path = route.path
        local list = h.prefix[path]
        if not list then
            list = {}
            h.prefix[path] = list
            local len = #path
            local c = h.len_count[len]
            if c then
                h.len_count[len] = c + 1
            else
                h.len_count[len] = 1
                local lens = h.lens
                lens[#lens + 1] = len
                tbl_sort(lens, desc)
            end
        end
        list_insert(list, route)
    else
        list_insert(h.regex, route)
    end
    h.n = h.n + 1
    self.by_id[route.id] = route
    self.n = self.n + 1
end

-- Removes a route by id (no-op when absent).
function _M.remove(self, id)
    local route = self.by_id[id]
    if not route then
        return
    end
    self.by_id[id] = nil
    self.n = self.n - 1
    if self.n_retired >= _M.RETIRED_MAX then
        self.retired_old = self.retired
        self.retired = {}
        self.n_retired = 0
    end
    self.retired[id] = route
    self.n_retired = self.n_retired + 1
    local hosts, key, wild = host_table(self, route.host)
    local h = hosts[key]
    if not h then
        return
    end
    local m = route.match
    if m == "exact" then
        local list = h.exact[route.path]
        if list then
            list_remove(list, route)
            if #list == 0 then
                h.exact[route.path] = nil
            end
        end
    elseif m == "prefix" then
        local path = route.path
        local list = h.prefix[path]
        if list then
            list_remove(list, route)
            if #list == 0 then
                h.prefix[path] = nil
                local len = #path
                local c = h.len_count[len] - 1
                if c > 0 then
                    h.len_count[len] = c
                else
                    h.len_count[len] = nil
                    local lens = h.lens
                    for i = 1, #lens do
                        if lens[i] == len then
                            tbl_remove(lens, i)
                            break
                        end
                    end
                end
            end
        end
    else
        list_remove(h.regex, route)
    end
    h.n = h.n - 1
    if h.n <= 0 then
        hosts[key] = nil
        if wild then
            self.n_wild = self.n_wild - 1
        end
    end
end

function _M.get(self, id)
    return self.by_id[id]
end

-- The route with this id, else the one removed or replaced last under it, if that was
-- lately (RETIRED_MAX removals at least). For a request routed before a change.
function _M.recent(self, id)
    return self.by_id[id] or self.retired[id] or self.retired_old[id]
end

-- host: lowercase, no port (ngx.var.host); uri: normalized path (ngx.var.uri).
-- Returns the route or nil.
function _M.match(self, host, uri)
    local h = self.exact_hosts[host]
    if not h and self.n_wild > 0 then
        local wild = self.wild_hosts
        -- most specific wildcard first; a dot at position 1 would make the suffix equal
        -- to the whole name (the bare parent), so start at 2
        local pos = str_find(host, ".", 2, true)
        while pos do
            h = wild[str_sub(host, pos)]
            if h then
                break
            end
            pos = str_find(host, ".", pos + 1, true)
        end
    end
    if not h then
        -- the catch-all host "*" (a Kubernetes rule without host): every request no other
        -- host entry claims
        h = self.exact_hosts["*"]
        if not h then
            return nil
        end
    end

    local list = h.exact[uri]
    if list then
        return list[1]
    end

    local lens = h.lens
    local nlens = #lens
    if nlens > 0 then
        local prefix = h.prefix
        local ulen = #uri
        for i = 1, nlens do
            local len = lens[i]
            if len <= ulen then
                if len == ulen then
                    list = prefix[uri]
                else
                    list = prefix[str_sub(uri, 1, len)]
                end
                if list then
                    return list[1]
                end
            end
        end
    end

    local regex = h.regex
    local nre = #regex
    if nre > 0 then
        local find = self.find
        for i = 1, nre do
            local route = regex[i]
            if find(uri, route.path) then
                return route
            end
        end
    end
    return nil
end

return _M
