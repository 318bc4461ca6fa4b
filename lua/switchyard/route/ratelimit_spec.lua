-- busted spec for switchyard.route.ratelimit (GCRA over a shared dict) with an in-memory dict

local ratelimit = require "switchyard.route.ratelimit"
local shared_dict = require "spec_support.shared_dict"

-- the shared dict on a clock the test moves
local function dict(clock)
    return shared_dict.new({now = function() return clock.now end})
end

local function run(rps, burst, times, clock, d, key)
    local admitted, retry = 0, nil
    for _ = 1, times do
        local ok, r = ratelimit.check(d, key or "k", clock.now, 1 / rps, burst / rps)
        if ok then
            admitted = admitted + 1
        else
            retry = r
        end
    end
    return admitted, retry
end

describe("ratelimit.check", function()
    it("admits burst + 1 at once, then refuses with Retry-After >= 1", function()
        local clock = {now = 1000}
        local d = dict(clock)
        local admitted, retry = run(10, 20, 100, clock, d)
        assert.equal(21, admitted)
        assert.equal(1, retry)
    end)

    it("admits one request at once without burst", function()
        local clock = {now = 50}
        local d = dict(clock)
        assert.equal(1, (run(5, 0, 10, clock, d)))
    end)

    it("refills at the rate", function()
        local clock = {now = 0}
        local d = dict(clock)
        run(10, 0, 1, clock, d)
        local total = 0
        for _ = 1, 100 do            -- 10 s in steps of 0.1 s
            clock.now = clock.now + 0.1
            total = total + run(10, 0, 3, clock, d)
        end
        assert.equal(100, total)     -- exactly one per interval, not three
    end)

    it("counts Retry-After in whole seconds", function()
        local clock = {now = 0}
        local d = dict(clock)
        -- 1 rps, burst 5: six admitted, the seventh waits for the TAT to come within 5 s
        local admitted, retry = run(1, 5, 7, clock, d)
        assert.equal(6, admitted)
        assert.equal(1, retry)
        local _, r2 = run(1, 0, 2, {now = 0}, d, "k")   -- same key, no tolerance: 6 s
        assert.equal(6, r2)
    end)

    it("keeps keys apart and lets idle keys expire", function()
        local clock = {now = 0}
        local d = dict(clock)
        assert.equal(1, (run(1, 0, 3, clock, d, "a")))
        assert.equal(1, (run(1, 0, 3, clock, d, "b")))
        clock.now = 10
        assert.equal(0, #d:get_keys(0))
        assert.equal(1, (run(1, 0, 3, clock, d, "a")))
    end)
end)
