-- busted spec for switchyard.sync.keys: the default group's keys are the ones before
-- groups; configure(group) moves every key under the group's hash tag, in place.

describe("switchyard.sync.keys", function()
    local keys

    before_each(function()
        package.loaded["switchyard.sync.keys"] = nil
        keys = require "switchyard.sync.keys"
    end)

    it("starts with the default group's keys, unchanged by groups", function()
        assert.equal("cfg", keys.group)
        assert.equal("switchyard:{cfg}:version", keys.version)
        assert.equal("switchyard:{cfg}:route:a", keys.route("a"))
        assert.equal("switchyard:{cfg}:events", keys.events)
    end)

    it("moves every key, in the same table, to the configured group", function()
        local held = keys   -- what another module captured at load time
        keys.configure("tenant-a")
        assert.equal("tenant-a", held.group)
        assert.equal("switchyard:{tenant-a}:version", held.version)
        assert.equal("switchyard:{tenant-a}:prober:heartbeat", held.prober_heartbeat)
        assert.equal("switchyard:{tenant-a}:upstream:b", held.upstream("b"))
        assert.equal("switchyard:{tenant-a}:edge:e1", held.edge("e1"))
        assert.equal("switchyard:{tenant-a}:health:b", held.health("b"))
        for name, value in pairs(held) do
            if type(value) == "string" and value:find("^switchyard:") then
                assert.truthy(value:find("^switchyard:{tenant%-a}:"), name)
            end
        end
    end)

    it("takes nil or empty as the default group", function()
        keys.configure("b2")
        keys.configure(nil)
        assert.equal("switchyard:{cfg}:version", keys.version)
        keys.configure("")
        assert.equal("switchyard:{cfg}:changes", keys.changes)
    end)

    it("refuses names that would break the hash tag, the key layout or an ACL pattern", function()
        for _, bad in ipairs({"A", "a}b", "a{b", "a:b", "a*", "-a", "_a", "a b",
                              string.rep("x", 49)}) do
            assert.truthy(keys.problem(bad), bad)
            assert.has_error(function() keys.configure(bad) end)
        end
        assert.equal("switchyard:{cfg}:version", keys.version)   -- unchanged by a refusal
        assert.is_nil(keys.problem(string.rep("x", 48)))
        assert.is_nil(keys.problem("0-staging_2"))
    end)
end)
