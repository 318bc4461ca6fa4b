-- busted spec: the edge's decoders agree with the controller on
-- Tests/Fixtures/policy-documents.json (written from the controller's side): every valid
-- route/upstream document decodes, every invalid one is refused (and the error names the
-- field the controller names, where the edge can).

local cjson = require "cjson"
local repo = require "spec_support.repo"
local doc = require "switchyard.route.decode"
local upstream_mod = require "switchyard.balancer.upstream"

-- stands in for ngx.re's compile check: PCRE syntax the fixture uses that Lua patterns
-- lack is not an issue as long as balanced parentheses and brackets are checked
local function check(re)
    local depth = 0
    local i = 1
    while i <= #re do
        local c = re:sub(i, i)
        if c == "\\" then
            i = i + 1
        elseif c == "(" then
            depth = depth + 1
        elseif c == ")" then
            depth = depth - 1
            if depth < 0 then
                return nil, "unmatched )"
            end
        elseif c == "[" then
            local close = re:find("]", i + 2, true)
            if not close then
                return nil, "missing ]"
            end
            i = close
        end
        i = i + 1
    end
    if depth ~= 0 then
        return nil, "missing )"
    end
    return true
end

local fixture = cjson.decode(repo.read("Tests/Fixtures/policy-documents.json"))

local function label(case, i)
    local why = case.why or ""
    return i .. ": " .. (case.field and (case.field .. ": ") or "") .. why
end

describe("policy-documents.json", function()
    -- valid: the documents themselves; invalid: {doc, field, why}
    describe("routes", function()
        for i, d in ipairs(fixture.routes.valid) do
            it("accepts valid route " .. i .. " (" .. tostring(d.id) .. ")", function()
                local raw = cjson.encode(d)
                local r, err = doc.decode_route(raw, d.id, check)
                assert(r, "refused: " .. tostring(err) .. "\n" .. raw)
            end)
        end
        for i, case in ipairs(fixture.routes.invalid) do
            it("refuses invalid route " .. label(case, i), function()
                local raw = cjson.encode(case.doc)
                local r, err = doc.decode_route(raw, case.doc.id, check)
                assert(r == nil, "accepted:\n" .. raw)
                -- the error names the same top-level field as the controller
                local top = case.field:match("^[%w_]+")
                assert(err:find(top, 1, true), "error \"" .. err .. "\" does not name " .. top)
            end)
        end
    end)

    -- upstream policies (balance, hash_on, sticky) are switchyard.balancer.algorithm's. One deliberate
    -- difference: an unknown `balance` is served as round_robin with a warning (newer
    -- controllers may add algorithms), not refused; anything else invalid is refused.
    describe("upstreams", function()
        for i, d in ipairs(fixture.upstreams.valid) do
            it("accepts valid upstream " .. i .. " (" .. tostring(d.name) .. ")", function()
                local raw = cjson.encode(d)
                local u, err = upstream_mod.decode(raw, d.name)
                assert(u, "refused: " .. tostring(err) .. "\n" .. raw)
            end)
        end
        for i, case in ipairs(fixture.upstreams.invalid) do
            it("refuses invalid upstream " .. label(case, i), function()
                local raw = cjson.encode(case.doc)
                local u, err, warning = upstream_mod.decode(raw, case.doc.name)
                if case.field == "balance" and u then
                    assert.equal("round_robin", u.balance)
                    assert.matches("unknown balance", warning)
                    return
                end
                assert(u == nil, "accepted:\n" .. raw)
                local top = case.field:match("^[%w_]+")
                assert(err:find(top, 1, true), "error \"" .. err .. "\" does not name " .. top)
            end)
        end
    end)
end)
