-- busted spec for switchyard.state (a worker's tables, built from the shm and kept at its
-- serial), over the fake shared dict the store writes.

local store_mod = require "switchyard.shm.store"
local state_mod = require "switchyard.state"
local shared_dict = require "spec_support.shared_dict"

local function fake_dict()
    return shared_dict.new()
end

local regex = require "spec_support.regex"
local find, check = regex.find, regex.check

local function route_doc(id, host, path, upstream, extra)
    return '{"version":1,"id":"' .. id .. '","host":"' .. host .. '","path":"' .. path
        .. '","match":"prefix","upstream":"' .. (upstream or "u") .. '"' .. (extra or "") .. '}'
end
local function upstream_doc(name, addrs)
    local eps = {}
    for i, a in ipairs(addrs) do
        eps[i] = '{"address":"' .. a .. '","weight":1}'
    end
    return '{"name":"' .. name .. '","endpoints":[' .. table.concat(eps, ",") .. ']}'
end

describe("state", function()
    local cfg, meta, logs, store, state
    local function collect(level, msg) logs[#logs + 1] = level .. " " .. msg end
    local function new_state()
        return state_mod.new({cfg = cfg, meta = meta, find = find, check = check,
                              log = collect})
    end
    before_each(function()
        cfg, meta, logs = fake_dict(), fake_dict(), {}
        store = store_mod.new(cfg, meta)
        state = new_state()
    end)

    it("stays unloaded until the syncer wrote a serial", function()
        state:refresh(meta:get("serial"))
        assert.is_false(state:loaded())
        store:full({}, 0)
        state:refresh(meta:get("serial"))
        assert.is_true(state:loaded())
        assert.equal(0, state.router.n)
    end)

    it("marks HTTPS, sticky and least_conn upstreams for the edge's full location", function()
        local eps = '"endpoints":[{"address":"10.0.0.1:443","weight":1}]'
        store:full({["upstream:plain"] = upstream_doc("plain", {"10.0.0.1:80"}),
                    ["upstream:hash"] = '{"name":"hash","balance":"ip_hash",' .. eps .. '}',
                    ["upstream:tls"] = '{"name":"tls","scheme":"https",' .. eps .. '}',
                    ["upstream:st"] = '{"name":"st","balance":"sticky",' .. eps .. '}',
                    ["upstream:lc"] = '{"name":"lc","balance":"least_conn",' .. eps .. '}'}, 1)
        state:refresh(meta:get("serial"))
        assert.is_nil(state.upstreams.plain.full)
        assert.is_nil(state.upstreams.hash.full)
        assert.is_true(state.upstreams.tls.full)
        assert.is_true(state.upstreams.st.full)
        assert.is_true(state.upstreams.lc.full)
        assert.same({}, logs)
    end)

    it("builds from the shm, then applies only the logged keys", function()
        store:full({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80"}),
                    ["route:a"] = route_doc("a", "h", "/a")}, 1)
        state:refresh(meta:get("serial"))
        assert.equal("a", state.router:match("h", "/a/x").id)
        assert.equal(1, state.upstreams.u.n)
        assert.equal(1, state.full_rebuilds)

        store:commit({["route:b"] = route_doc("b", "h", "/b"), ["route:a"] = false}, 2)
        state:refresh(meta:get("serial"))
        assert.equal(1, state.full_rebuilds)         -- incremental
        assert.is_nil(state.router:match("h", "/a/x"))
        assert.equal("b", state.router:match("h", "/b").id)

        store:commit({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80", "10.0.0.2:80"})}, 3)
        store:commit({["route:c"] = route_doc("c", "h", "/c")}, 4)
        state:refresh(meta:get("serial"))             -- two entries at once
        assert.equal(1, state.full_rebuilds)
        assert.equal(2, state.upstreams.u.n)
        assert.equal("c", state.router:match("h", "/c").id)
        assert.equal(meta:get("serial"), state.serial)
    end)

    it("a new worker starts from the shared dict", function()
        store:full({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80"}),
                    ["route:a"] = route_doc("a", "h", "/a")}, 1)
        store:commit({["route:b"] = route_doc("b", "h", "/b")}, 2)
        local late = new_state()
        late:refresh(meta:get("serial"))
        assert.equal("a", late.router:match("h", "/a").id)
        assert.equal("b", late.router:match("h", "/b").id)
    end)

    it("rebuilds everything when a log entry is missing or *", function()
        store:full({["route:a"] = route_doc("a", "h", "/a")}, 1)
        state:refresh(meta:get("serial"))
        store:commit({["route:b"] = route_doc("b", "h", "/b")}, 2)
        meta:delete("log:2")
        state:refresh(meta:get("serial"))
        assert.equal(2, state.full_rebuilds)
        assert.equal("b", state.router:match("h", "/b").id)
        local many = {}
        for i = 1, store_mod.LOG_MAX_KEYS + 1 do
            many["route:r" .. i] = route_doc("r" .. i, "h", "/r" .. i)
        end
        store:commit(many, 3)
        state:refresh(meta:get("serial"))
        assert.equal(3, state.full_rebuilds)
        assert.equal("r77", state.router:match("h", "/r77").id)
    end)

    it("rebuilds when the serial goes backwards (fresh shm under an old worker)", function()
        store:full({["route:a"] = route_doc("a", "h", "/a")}, 1)
        store:commit({["route:b"] = route_doc("b", "h", "/b")}, 2)
        state:refresh(meta:get("serial"))
        cfg, meta = fake_dict(), fake_dict()
        state.cfg, state.meta = cfg, meta
        store_mod.new(cfg, meta):full({["route:z"] = route_doc("z", "h", "/z")}, 1)
        state:refresh(meta:get("serial"))
        assert.is_nil(state.router:match("h", "/a"))
        assert.equal("z", state.router:match("h", "/z").id)
    end)

    it("skips malformed documents with their key and keeps the rest", function()
        store:full({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80"}),
                    ["upstream:bad"] = upstream_doc("bad", {"nope:80"}),
                    ["route:a"] = route_doc("a", "h", "/a"),
                    ["route:x"] = "garbage",
                    ["route:re"] = '{"id":"re","host":"h","path":"(","match":"regex",'
                        .. '"upstream":"u"}',
                    ["route:ghost"] = route_doc("ghost", "h", "/g", "missing"),
                    ["stream:db"] = '{"id":"db","listen":5432,"upstream":"u"}',
                    ["weird"] = "?"}, 1)
        state:refresh(meta:get("serial"))
        assert.equal("a", state.router:match("h", "/a").id)
        assert.is_nil(state.upstreams.bad)
        assert.is_nil(state.router:get("x"))
        assert.is_nil(state.router:get("re"))
        -- a route naming a missing upstream stays routable (it answers 503) and is logged
        assert.equal("ghost", state.router:match("h", "/g").id)
        local text = table.concat(logs, "\n")
        assert.truthy(text:find("malformed route:x", 1, true))
        assert.truthy(text:find("malformed route:re", 1, true))
        assert.truthy(text:find("malformed upstream:bad", 1, true))
        assert.truthy(text:find("route:ghost uses missing upstream", 1, true))
        assert.truthy(text:find("unknown sy_config key weird", 1, true))
        -- a stream (served by `switchyard stream`, held for the digest) is no route and no
        -- problem
        assert.is_nil(text:find("stream:db", 1, true))
        assert.is_nil(state.router:get("db"))

        -- a good route that turns bad disappears; fixing it brings it back
        local before = #logs
        store:commit({["route:a"] = "{"}, 2)
        state:refresh(meta:get("serial"))
        assert.is_nil(state.router:match("h", "/a"))
        assert.equal(before + 1, #logs)
        store:commit({["route:a"] = route_doc("a", "h", "/a", "u", ',"priority":1')}, 3)
        state:refresh(meta:get("serial"))
        assert.equal("a", state.router:match("h", "/a").id)
    end)

    it("does not decode unchanged documents again on a full rebuild", function()
        store:full({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80", "10.0.0.2:80"})}, 1)
        state:refresh(meta:get("serial"))
        local b = state.upstreams.u.balancer
        b:pick()
        store:full({["upstream:u"] = upstream_doc("u", {"10.0.0.1:80", "10.0.0.2:80"}),
                    ["upstream:v"] = upstream_doc("v", {})}, 2)
        meta:delete("log:2")
        state:refresh(meta:get("serial"))
        assert.equal(2, state.full_rebuilds)
        assert.equal(b, state.upstreams.u.balancer)   -- same object: WRR state kept
        assert.equal(0, state.upstreams.v.n)
        assert.equal(2, state.n_upstreams)
    end)
end)
