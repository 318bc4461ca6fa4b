-- Host + path router: which route serves a request.
--
-- Pure: no ngx; works on Lua 5.2 and LuaJIT. The regex engine is injected
-- (find(subject, regex) -> truthy when it matches; in nginx ngx.re.find(uri, re, "jo")),
-- so busted can test it. Per-worker data; never yields.
--
-- Semantics (like nginx server_name, then location; Kubernetes Ingress for the one-label
-- wildcards and segment prefixes):
--   1. Host. The exact name first; then a one-label wildcard (route.wildcard ==
--      "one_label": "*.foo.com" matches "bar.foo.com" only, one label more); then the
--      most specific any-depth wildcard: for "a.b.apps.x" try "*.b.apps.x", then
--      "*.apps.x", then "*.x". An any-depth wildcard covers any number of labels
--      ("*.apps.x" matches "a.b.apps.x"); no wildcard matches the bare parent ("*.apps.x"
--      does not match "apps.x"). So for "x.foo.com": exact "x.foo.com", one-label
--      "*.foo.com", any-depth "*.foo.com", any-depth "*.com". The most specific host that
--      has ANY route is chosen and only its paths are considered: no fall-through to a
--      less specific host, even when none of its paths match (the request gets a 404).
--      Last, the catch-all host "*" (a Kubernetes rule without host) takes every request
--      no other host entry claims.
--   2. Path, within that host, against the normalized URI (no query string):
--      exact routes; else the LONGEST of the prefix and segment_prefix paths that match
--      (prefix: plain string prefix on any character, as nginx does: "/api" matches
--      "/apix"; segment_prefix: on "/" boundaries, "/foo" matches "/foo", "/foo/" and
--      "/foo/bar" but not "/foobar"; "/" matches every path); else regex routes in
--      priority order, first match wins (unanchored unless the regex anchors itself).
--   3. Ties (same host, path length and kind of match, prefix and segment_prefix alike;
--      or the order of regexes): higher priority first, then id ascending.
--
-- Cost: put/remove touch only the route's host entry (per-change cost independent of the
-- table size; remove also keeps the route in a bounded retired set, see recent). match
-- is one hash lookup for an exact host; on a miss, with wildcard routes, one backward scan
-- over the host's last labels (as deep as the deepest wildcard, + 1 for one-label ones),
-- at most one lookup for a one-label wildcard, and one string.sub + lookup per distinct
-- any-depth wildcard depth, deepest first: the cost of a wildcard lookup does not grow
-- with the host's number of labels. Then one lookup for the exact path, one string.sub +
-- lookup per distinct prefix length (prefix and segment_prefix) of that host (+1 lookup
-- where the host has segment_prefix routes), then the regexes of that host.

local setmetatable = setmetatable
local next = next
local pairs = pairs
local ipairs = ipairs
local str_find = string.find
local str_byte = string.byte
local str_sub = string.sub
local tbl_sort = table.sort
local tbl_remove = table.remove

local _M = {}
local mt = {__index = _M}

local DOT = 46     -- "."
local SLASH = 47   -- "/"

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
        wild_hosts = {},    -- ".apps.x" (from "*.apps.x", any depth) -> host entry
        one_hosts = {},     -- ".apps.x" (from "*.apps.x" with wildcard "one_label") -> entry
        n_wild = 0,         -- entries in wild_hosts and one_hosts (0: no suffix scan at all)
        wild_count = {},    -- depth (labels of the suffix) -> any-depth entries of that depth
        wild_depths = {},   -- distinct any-depth depths, deepest first
        one_count = {},     -- depth -> one-label entries of that depth
        scan = 0,           -- dots a lookup needs from the end: max(any depth, one depth + 1)
        dots = {},          -- scratch: positions of the last dots of the host being matched
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
        prefix = {},      -- path -> sorted list of prefix routes
        seg = {},         -- path -> sorted list of segment_prefix routes
        n_seg = 0,        -- paths in seg (0: a lookup never looks there)
        len_count = {},   -- path length -> distinct prefix and segment_prefix paths of it
        lens = {},        -- distinct prefix and segment_prefix lengths, longest first
        regex = {},       -- sorted list of regex routes
        any = nil,        -- the route every path gets (see settle), else nil
    }
end

-- The route every path of a host entry matches, when the path cannot change the answer:
-- no exact and no regex routes, and the only prefix length is 1 (prefix and/or
-- segment_prefix "/", both of which match every path). match_var() then answers without
-- reading the path ($uri costs a variable read). Recomputed after each put/remove that
-- touches the entry; O(1).
local function settle(h)
    h.any = nil
    if next(h.exact) ~= nil or #h.regex > 0 or #h.lens ~= 1 or h.lens[1] ~= 1 then
        return
    end
    local list, slist = h.prefix["/"], h.seg["/"]
    if list and slist then
        h.any = route_before(slist[1], list[1]) and slist[1] or list[1]
    elseif list or slist then
        h.any = (list or slist)[1]
    end
end

-- labels of a wildcard's suffix ".apps.x" -> 2
local function depth_of(key)
    local d = 0
    for i = 1, #key do
        if str_byte(key, i) == DOT then
            d = d + 1
        end
    end
    return d
end

-- the table a route's host entry lives in, its key there, and its kind:
-- nil (exact), "wild" (any depth) or "one" (one label)
local function host_table(self, route)
    local host = route.host
    if str_sub(host, 1, 2) == "*." then
        if route.wildcard == "one_label" then
            return self.one_hosts, str_sub(host, 2), "one"
        end
        return self.wild_hosts, str_sub(host, 2), "wild"
    end
    return self.exact_hosts, host, nil
end

local function recompute_scan(self)
    local scan = self.wild_depths[1] or 0
    for d in pairs(self.one_count) do
        if d + 1 > scan then
            scan = d + 1
        end
    end
    self.scan = scan
end

-- a wildcard host entry appeared (delta 1) or went (delta -1): the depth index follows.
-- O(distinct depths), on changes only.
local function count_wildcard(self, kind, key, delta)
    self.n_wild = self.n_wild + delta
    local d = depth_of(key)
    local counts = kind == "one" and self.one_count or self.wild_count
    local c = (counts[d] or 0) + delta
    if c > 0 then
        counts[d] = c
    else
        counts[d] = nil
    end
    if kind == "wild" then
        local depths = self.wild_depths
        if c == 1 and delta == 1 then
            depths[#depths + 1] = d
            tbl_sort(depths, desc)
        elseif c <= 0 then
            for i = 1, #depths do
                if depths[i] == d then
                    tbl_remove(depths, i)
                    break
                end
            end
        end
    end
    recompute_scan(self)
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

-- a prefix or segment_prefix route into its path table (prefix or seg), with the lengths
local function path_insert(h, paths, route)
    local path = route.path
    local list = paths[path]
    if not list then
        list = {}
        paths[path] = list
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
        if paths == h.seg then
            h.n_seg = h.n_seg + 1
        end
    end
    list_insert(list, route)
end

local function path_remove(h, paths, route)
    local path = route.path
    local list = paths[path]
    if not list then
        return
    end
    list_remove(list, route)
    if #list > 0 then
        return
    end
    paths[path] = nil
    if paths == h.seg then
        h.n_seg = h.n_seg - 1
    end
    local len = #path
    local c = h.len_count[len] - 1
    if c > 0 then
        h.len_count[len] = c
        return
    end
    h.len_count[len] = nil
    local lens = h.lens
    for i = 1, #lens do
        if lens[i] == len then
            tbl_remove(lens, i)
            break
        end
    end
end

-- Adds or replaces a decoded route (switchyard.route.decode).
function _M.put(self, route)
    if self.by_id[route.id] then
        self:remove(route.id)
    end
    local hosts, key, kind = host_table(self, route)
    local h = hosts[key]
    if not h then
        h = new_host()
        hosts[key] = h
        if kind then
            count_wildcard(self, kind, key, 1)
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
        path_insert(h, h.prefix, route)
    elseif m == "segment_prefix" then
        path_insert(h, h.seg, route)
    else
        list_insert(h.regex, route)
    end
    h.n = h.n + 1
    settle(h)
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
    local hosts, key, kind = host_table(self, route)
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
        path_remove(h, h.prefix, route)
    elseif m == "segment_prefix" then
        path_remove(h, h.seg, route)
    else
        list_remove(h.regex, route)
    end
    h.n = h.n - 1
    if h.n <= 0 then
        hosts[key] = nil
        if kind then
            count_wildcard(self, kind, key, -1)
        end
    else
        settle(h)
    end
end

function _M.get(self, id)
    return self.by_id[id]
end

-- The route with this id, else the one removed or replaced under it last, if that was
-- lately (RETIRED_MAX removals at least). For a request routed before a change.
function _M.recent(self, id)
    return self.by_id[id] or self.retired[id] or self.retired_old[id]
end

-- The wildcard host entry for a host without an exact entry, or nil. One backward scan
-- records the positions of the host's last `scan` dots (dots[k]: the k-th dot from the
-- end), stopping there: the work is bounded by the deepest wildcard's suffix (plus one
-- label for one-label wildcards), whatever the host's number of labels. Then the one-label
-- candidate (only when the host has exactly one label more than a one-label suffix), then
-- one lookup per any-depth depth, deepest first. A suffix must leave at least one byte
-- before it: no wildcard matches its bare parent.
-- tried (explain only; nil for match): each entry looked up is appended as
-- {entry = "*.foo.com", kind = "one_label" | "wildcard", found = bool}.
local function wildcard_entry(self, host, tried)
    local scan = self.scan
    local dots = self.dots
    local nd = 0
    for i = #host, 2, -1 do
        if str_byte(host, i) == DOT then
            nd = nd + 1
            dots[nd] = i
            if nd >= scan then
                break
            end
        end
    end
    -- nd < scan: the scan reached the host's start, nd is its number of dots (the first
    -- byte is never counted: a leading dot leaves no label before the suffix)
    if nd < scan and nd > 0 and self.one_count[nd] then
        local h = self.one_hosts[str_sub(host, dots[nd])]
        if tried then
            tried[#tried + 1] = {entry = "*" .. str_sub(host, dots[nd]), kind = "one_label",
                                 found = h ~= nil, key = str_sub(host, dots[nd])}
        end
        if h then
            return h, "one_label"
        end
    end
    local depths = self.wild_depths
    local wild = self.wild_hosts
    for i = 1, #depths do
        local d = depths[i]
        if d <= nd then
            local h = wild[str_sub(host, dots[d])]
            if tried then
                tried[#tried + 1] = {entry = "*" .. str_sub(host, dots[d]), kind = "wildcard",
                                     found = h ~= nil, key = str_sub(host, dots[d])}
            end
            if h then
                return h, "wildcard"
            end
        end
    end
    return nil
end

-- The host entry for host (lowercase, no port), and true when it is not the host's exact
-- entry (a wildcard or "*"); nil when none takes it.
local function host_entry(self, host)
    local h = self.exact_hosts[host]
    if h then
        return h, false
    end
    if self.n_wild > 0 then
        h = wildcard_entry(self, host)
    end
    if not h then
        -- the catch-all host "*" (a Kubernetes rule without host): every request no
        -- other host entry claims
        h = self.exact_hosts["*"]
        if not h then
            return nil
        end
    end
    return h, true
end

-- The route of uri within host entry h, or nil.
local function path_match(self, h, uri, wild)
    local list = h.exact[uri]
    if list then
        return list[1], wild
    end

    local lens = h.lens
    local nlens = #lens
    if nlens > 0 then
        local prefix = h.prefix
        local seg = h.n_seg > 0 and h.seg
        local ulen = #uri
        for i = 1, nlens do
            local len = lens[i]
            if len <= ulen then
                local sub = len == ulen and uri or str_sub(uri, 1, len)
                list = prefix[sub]
                if seg then
                    -- a segment prefix counts on a "/" boundary: the path ends there, goes
                    -- on with "/", or (the path "/") ends with "/" itself
                    local slist = seg[sub]
                    if slist and (len == ulen or str_byte(uri, len + 1) == SLASH
                                  or str_byte(uri, len) == SLASH) then
                        if not list or route_before(slist[1], list[1]) then
                            list = slist
                        end
                    end
                end
                if list then
                    return list[1], wild
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
                return route, wild
            end
        end
    end
    return nil
end

-- host: lowercase, no port (ngx.var.host); uri: normalized path (ngx.var.uri).
-- Returns the route or nil, and true when the host matched a wildcard entry (the host
-- is then not one of the configuration's names: switchyard.route.hostcheck).
function _M.match(self, host, uri)
    local h, wild = host_entry(self, host)
    if not h then
        return nil
    end
    return path_match(self, h, uri, wild)
end

-- As match, with the path read as var.uri only when the host's routes need it (var:
-- ngx.var on the edge): a host whose only routes are prefix or segment_prefix "/" (see
-- settle) answers without it, which saves the request a variable read.
function _M.match_var(self, host, var)
    local h, wild = host_entry(self, host)
    if not h then
        return nil
    end
    local any = h.any
    if any then
        return any, wild
    end
    return path_match(self, h, var.uri, wild)
end

-- Whether a route host (exact name, "*.suffix" with wildcard, or "*") would take host.
local function host_takes(rh, wildcard, host)
    if rh == host or rh == "*" then
        return true
    end
    if str_sub(rh, 1, 2) ~= "*." then
        return false
    end
    local suffix = str_sub(rh, 2)
    local n = #host - #suffix
    if n < 1 or str_sub(host, n + 1) ~= suffix then
        return false
    end
    if wildcard == "one_label" then
        return not str_find(str_sub(host, 1, n), ".", 1, true)
    end
    return true
end

-- explain(host, uri): what match() does, told step by step (GET /_switchyard/explain).
-- The host entry comes from the same lookups as match() (wildcard_entry, recording what it
-- tried); the candidates are every route of that entry in the order match() considers
-- them (exact, prefix and segment_prefix lengths longest first, regexes by priority),
-- each with why it lost, then the routes of less specific host entries that would take
-- the host had the chosen one no routes ("host: a more specific host entry has routes").
-- Returns {route = <the chosen route or nil>, wild = bool, host = {entry, kind, why,
-- tried}, candidates = {{route, chosen, reason}...}}. Off the request path; route/
-- explain_spec.lua checks it chooses what match() chooses.
function _M.explain(self, host, uri)
    local tried = {}
    local out = {host = {entry = nil, kind = nil, tried = tried}, candidates = {}}
    local h = self.exact_hosts[host]
    tried[1] = {entry = host, kind = "exact", found = h ~= nil, key = host}
    local kind = h and "exact"
    local wild = false
    if not h then
        if self.n_wild > 0 then
            h, kind = wildcard_entry(self, host, tried)
        end
        if not h then
            h = self.exact_hosts["*"]
            tried[#tried + 1] = {entry = "*", kind = "catch_all", found = h ~= nil, key = "*"}
            kind = h and "catch_all"
        end
        wild = h ~= nil
    end
    out.wild = wild
    if not h then
        out.host.why = "no host entry takes this host (exact name, wildcards, catch-all '*')"
        return out
    end
    local entry
    for i = #tried, 1, -1 do
        if tried[i].found then
            entry = tried[i].entry
            break
        end
    end
    out.host.entry, out.host.kind = entry, kind
    out.host.why = ({
        exact = "the exact host name has routes",
        one_label = "no exact entry; the one-label wildcard matches (one label more)",
        wildcard = "no exact or one-label entry; the most specific any-depth wildcard "
            .. "that has routes",
        catch_all = "no other host entry takes this host: the catch-all '*'",
    })[kind]
    local cands = out.candidates
    local chosen
    local function add(route, reason)
        local c = {route = route, chosen = false, reason = reason}
        if not reason then
            if chosen then
                c.reason = "an earlier candidate was chosen"
            else
                chosen = route
                c.chosen, c.reason = true, "chosen"
            end
        end
        cands[#cands + 1] = c
        return c
    end
    -- exact paths: only h.exact[uri] can match; the other exact routes are listed as lost
    local paths = {}
    for path in pairs(h.exact) do
        paths[#paths + 1] = path
    end
    tbl_sort(paths)
    local list = h.exact[uri]
    if list then
        for i = 1, #list do
            add(list[i], i > 1 and "same path: lower priority or later id" or nil)
        end
    end
    for _, path in ipairs(paths) do
        if path ~= uri then
            local l = h.exact[path]
            for i = 1, #l do
                add(l[i], "exact path differs")
            end
        end
    end
    -- prefix and segment_prefix, longest first (as match()): at one length the prefix
    -- and segment_prefix routes of the path's own prefix, merged in route order (match()
    -- takes the better of the two lists' heads: the merged head); other paths of that
    -- length are not a prefix of the path
    local ulen = #uri
    for _, len in ipairs(h.lens) do
        local sub = len <= ulen and str_sub(uri, 1, len) or nil
        local boundary = sub and (len == ulen or str_byte(uri, len + 1) == SLASH
                                  or str_byte(uri, len) == SLASH)
        local here, lost = {}, {}
        for _, paths_of in ipairs({h.prefix, h.seg}) do
            local seg = paths_of == h.seg
            local keys = {}
            for path in pairs(paths_of) do
                if #path == len then
                    keys[#keys + 1] = path
                end
            end
            tbl_sort(keys)
            for _, path in ipairs(keys) do
                for _, r in ipairs(paths_of[path]) do
                    if path ~= sub then
                        lost[#lost + 1] = {r, "not a prefix of the path"}
                    elseif seg and not boundary then
                        lost[#lost + 1] = {r, "not on a segment boundary"}
                    else
                        here[#here + 1] = r
                    end
                end
            end
        end
        tbl_sort(here, route_before)
        for i, r in ipairs(here) do
            if chosen then
                add(r, chosen.match == "exact" and "an earlier candidate was chosen"
                    or (#chosen.path > len and "a longer prefix matched")
                    or "same path: lower priority or later id")
            else
                add(r, i > 1 and "same path: lower priority or later id" or nil)
            end
        end
        for _, x in ipairs(lost) do
            add(x[1], x[2])
        end
    end
    local find = self.find
    for _, route in ipairs(h.regex) do
        if chosen then
            add(route, nil)
        elseif find(uri, route.path) then
            add(route, nil)
        else
            add(route, "regex did not match")
        end
    end
    -- routes of less specific host entries that take this host too: never considered
    local others = {}
    for _, r in pairs(self.by_id) do
        local rh = r.host
        local same = rh == entry and ((r.wildcard == "one_label") == (kind == "one_label"))
        if not same and host_takes(rh, r.wildcard, host) then
            others[#others + 1] = r
        end
    end
    tbl_sort(others, function(x, y) return x.id < y.id end)
    for _, r in ipairs(others) do
        add(r, "host: a more specific host entry has routes")
    end
    out.route = chosen
    return out
end

return _M
