-- busted spec for switchyard.util.backoff

local backoff = require "switchyard.util.backoff"

describe("backoff.delay", function()
    it("doubles from 100 ms up to 1 s, with jitter between half and all of it", function()
        math.randomseed(3)
        for attempt, full in pairs({[0] = 0.1, [1] = 0.2, [2] = 0.4, [3] = 0.8, [4] = 1, [10] = 1}) do
            for _ = 1, 50 do
                local d = backoff.delay(attempt)
                assert.is_true(d >= full / 2 - 1e-12 and d <= full + 1e-12, attempt .. ": " .. d)
            end
        end
    end)
end)
