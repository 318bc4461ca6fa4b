-- busted spec for switchyard.health.staleness (when the prober's verdicts go stale)

local staleness = require "switchyard.health.staleness"

describe("health.staleness", function()
    it("is stale before any heartbeat was seen", function()
        local s = staleness.new(3, 1)
        assert.is_true(s:stale(0))
    end)

    it("counts a third of a lease plus a check from the key's expiry", function()
        local s = staleness.new(3, 1)
        -- seen at t=100 with 2.5 s to live, lease 3 s: expires at 102.5, stale after 104.5
        s:seen(100, 2500, 3000)
        assert.equal(2, s:grace())
        assert.is_false(s:stale(102.5))
        assert.is_false(s:stale(104.5))
        assert.is_true(s:stale(104.51))
    end)

    it("a failover does not flap: the standby's heartbeat within lease/3 of the expiry", function()
        local s = staleness.new(3, 1)
        -- the old prober renewed at t=0 (PTTL 3000 seen at once), then died: the key
        -- expires at 3; the standby writes it within lease/3 = 1 s after, and the edge
        -- sees it at its next check, at most 1 s later still
        s:seen(0, 3000, 3000)
        for t = 3, 5, 0.25 do
            assert.is_false(s:stale(t), "stale at " .. t)
        end
        s:seen(5, 3000, 3000)
        assert.is_false(s:stale(7.9))
    end)

    it("a dead prober is ignored within lease + lease/3 + 2 checks of its last renewal", function()
        for _, lease_ms in ipairs({1000, 3000, 10000}) do
            local s = staleness.new(3, 1)
            local lease = lease_ms / 1000
            -- the worst case: the last sighting right after the last renewal at t=0, then
            -- checks every second, the first stale one is the answer
            s:seen(0, lease_ms, lease_ms)
            local t = 0
            while not s:stale(t) do
                t = t + 1
            end
            assert.is_true(t <= staleness.bound(lease, 1) + 1e-9,
                           lease_ms .. ": stale at " .. t .. " > " .. staleness.bound(lease, 1))
            assert.is_true(t > lease + lease / 3, lease_ms .. ": stale too early, at " .. t)
        end
        assert.equal(6, staleness.bound(3, 1))
    end)

    it("uses the lease the heartbeat announced, else the default", function()
        local s = staleness.new(3, 1)
        s:seen(0, 9000, 9000)
        assert.equal(4, s:grace())
        s:seen(0, 9000, nil)
        assert.equal(2, s:grace())
        s:seen(0, 9000, 50)      -- below 100 ms: not a lease
        assert.equal(2, s:grace())
    end)

    it("a key without a TTL counts as renewed when seen; a vanished one too", function()
        local s = staleness.new(3, 1)
        s:seen(10, -1, 3000)
        assert.is_false(s:stale(15))
        assert.is_true(s:stale(15.01))
        s:seen(20, nil, 3000)
        assert.is_false(s:stale(25))
    end)
end)
