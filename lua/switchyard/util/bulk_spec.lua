-- busted spec for switchyard.util.bulk (bulk builds with the garbage collector stopped)

local bulk = require "switchyard.util.bulk"

describe("bulk.run", function()
    it("stops the collector for the build and restarts it after", function()
        local during
        local a, b = bulk.run(false, function(x, y)
            during = collectgarbage("isrunning")
            return x + y, "two"
        end, 1, 2)
        assert.is_false(during)
        assert.is_true(collectgarbage("isrunning"))
        assert.equal(3, a)
        assert.equal("two", b)
    end)

    it("collects the build's garbage when asked", function()
        collectgarbage("collect")
        local before = collectgarbage("count")
        bulk.run(true, function()
            local t = {}
            for i = 1, 20000 do t[i] = {i, tostring(i)} end
            assert.equal(20000, #t)
            assert.is_true(collectgarbage("count") > before + 500)
        end)
        assert.is_true(collectgarbage("count") < before + 100)
    end)

    it("restarts the collector when the build fails, and raises its error", function()
        local ok, err = pcall(bulk.run, false, function() error("broken build", 0) end)
        assert.is_false(ok)
        assert.equal("broken build", err)
        assert.is_true(collectgarbage("isrunning"))
    end)

    it("restarts only after the outermost of nested builds", function()
        local inner_after
        bulk.run(false, function()
            bulk.run(false, function() end)
            inner_after = collectgarbage("isrunning")
        end)
        assert.is_false(inner_after)
        assert.is_true(collectgarbage("isrunning"))
    end)
end)
