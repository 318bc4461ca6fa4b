-- busted spec for switchyard.balancer.wrr

local wrr = require "switchyard.balancer.wrr"

local function names(b, n)
    local out = {}
    for i = 1, n do
        out[i] = b:pick().name
    end
    return table.concat(out, " ")
end

describe("wrr", function()
    it("returns nil without peers", function()
        assert.is_nil(wrr.new({}):pick())
    end)

    it("always returns the single peer", function()
        local b = wrr.new({{name = "a", weight = 7}})
        assert.equal("a a a", names(b, 3))
    end)

    it("is nginx's smooth sequence for 5,1,1", function()
        local b = wrr.new({{name = "a", weight = 5}, {name = "b", weight = 1},
                           {name = "c", weight = 1}})
        assert.equal("a a b a c a a", names(b, 7))
        assert.equal("a a b a c a a", names(b, 7))   -- the cycle repeats
    end)

    it("alternates equal weights", function()
        local b = wrr.new({{name = "a", weight = 1}, {name = "b", weight = 1},
                           {name = "c", weight = 1}})
        assert.equal("a b c a b c", names(b, 6))
    end)

    it("matches the weights exactly over every cycle and stays smooth", function()
        local peers = {{name = "a", weight = 3}, {name = "b", weight = 7},
                       {name = "c", weight = 1}, {name = "d", weight = 10}}
        local b = wrr.new(peers)
        local total = 21
        for cycle = 1, 5 do
            local count = {}
            local last = {}
            local gaps = {}
            for i = 1, total do
                local p = b:pick().name
                count[p] = (count[p] or 0) + 1
                if last[p] then
                    local g = i - last[p]
                    gaps[p] = math.max(gaps[p] or 0, g)
                end
                last[p] = i
            end
            for _, p in ipairs(peers) do
                assert.equal(p.weight, count[p.name], "cycle " .. cycle .. " peer " .. p.name)
            end
            -- smoothness: the heaviest peer never waits more than a few picks
            assert.is_true(gaps.d <= 3)
            assert.is_true(gaps.b <= 4)
        end
    end)

    it("defaults a missing weight to 1", function()
        local b = wrr.new({{name = "a"}, {name = "b", weight = 2}})
        assert.equal("b a b", names(b, 3))
        assert.equal(2, b:count())
    end)

    it("retries with the next pick not tried, nil after a round of tried ones", function()
        local a, b, c = {name = "a", weight = 5}, {name = "b", weight = 1}, {name = "c", weight = 1}
        local w = wrr.new({a, b, c})
        assert.equal(a, w:pick())
        assert.equal(b, w:retry(nil, {[a] = true}))      -- a a b...: skips the second a
        assert.equal(c, w:retry(nil, {[a] = true, [b] = true}))
        assert.is_nil(w:retry(nil, {[a] = true, [b] = true, [c] = true}))
        assert.is_nil(wrr.new({}):retry(nil, {}))
    end)
end)
