-- busted spec: the yield boundary. The request path (the modules behind the request-phase
-- handlers of phases.lua) must never reach switchyard.sync.*, the only code that yields or
-- talks to Redis. It reads every require of lua/switchyard (any require anywhere in a
-- file counts, also one inside a function) and follows them from the handlers.

local lua_source = require "spec_support.lua_source"

local REQUEST_HANDLERS = {"access", "access_named", "balance", "header_filter", "log", "log_metrics",
                          "failed", "ssl_certificate"}

local modules = lua_source.modules()

-- module -> list of the switchyard modules it requires (errors for anything unreadable)
local function graph()
    local edges, problems = {}, {}
    for name, path in pairs(modules) do
        local list = {}
        for _, r in ipairs(lua_source.requires(lua_source.read(path))) do
            local target, literal = r[1], r[2]
            if not literal then
                problems[#problems + 1] = name .. " requires a computed name (" .. target .. ")"
            elseif target:find("^switchyard%.") then
                if not modules[target] then
                    problems[#problems + 1] = name .. " requires " .. target .. ", which does not exist"
                end
                list[#list + 1] = target
            end
        end
        edges[name] = list
    end
    return edges, problems
end

-- Every module reachable from roots, with the chain that reaches it.
local function reach(edges, roots)
    local via = {}
    local queue = {}
    for _, r in ipairs(roots) do
        if via[r] == nil then
            via[r] = false
            queue[#queue + 1] = r
        end
    end
    local i = 1
    while queue[i] do
        local m = queue[i]
        i = i + 1
        for _, t in ipairs(edges[m] or {}) do
            if via[t] == nil then
                via[t] = m
                queue[#queue + 1] = t
            end
        end
    end
    return via
end

local function chain(via, m)
    local out = {m}
    while via[m] do
        m = via[m]
        table.insert(out, 1, m)
    end
    return table.concat(out, " -> ")
end

local function sync_reached(via)
    local bad = {}
    for m in pairs(via) do
        if m:find("^switchyard%.sync%.") then
            bad[#bad + 1] = chain(via, m)
        end
    end
    table.sort(bad)
    return bad
end

-- The modules phases.lua binds the request-phase handlers to.
local function request_roots()
    local src = lua_source.read(modules["switchyard.phases"])
    -- pair each `local x = require "m"` with its string
    local names = {}
    for var, mod in src:gmatch("local%s+([%w_]+)%s*=%s*require%s*%(?%s*[\"']([%w_.]+)[\"']") do
        names[var] = mod
    end
    local roots, missing = {}, {}
    for _, handler in ipairs(REQUEST_HANDLERS) do
        local var = src:match("\n%s*" .. handler .. "%s*=%s*([%w_]+)%.[%w_]+%s*,")
        if var and names[var] then
            roots[#roots + 1] = names[var]
        else
            missing[#missing + 1] = handler
        end
    end
    return roots, missing
end

describe("the yield boundary", function()
    local edges, problems = graph()

    it("can read every require of lua/switchyard", function()
        assert.same({}, problems)
        assert.is_true(#(edges["switchyard.request.access"] or {}) > 0)
    end)

    it("finds the module of every request-phase handler in phases.lua", function()
        local roots, missing = request_roots()
        assert.same({}, missing)
        assert.equal(#REQUEST_HANDLERS, #roots)
    end)

    it("keeps switchyard.sync out of everything the request path reaches", function()
        local roots = request_roots()
        local via = reach(edges, roots)
        -- what the request path does reach (the check looks where it should)
        assert.is_not_nil(via["switchyard.route.router"])
        assert.is_not_nil(via["switchyard.balancer.wrr"])
        assert.is_not_nil(via["switchyard.state"])
        assert.same({}, sync_reached(via))
    end)

    it("would see it: init_worker does reach the syncer", function()
        local via = reach(edges, {"switchyard.startup"})
        assert.is_true(#sync_reached(via) > 0)
    end)
end)
