-- busted spec for switchyard.shm.changelog: the serial + log:<serial> protocol every
-- writer and reader of the shared dicts uses.

local changelog = require "switchyard.shm.changelog"
local shared_dict = require "spec_support.shared_dict"

describe("changelog", function()
    local dict, logs
    local function log(level, msg) logs[#logs + 1] = level .. " " .. msg end
    before_each(function()
        dict, logs = shared_dict.new(), {}
    end)

    it("append writes the entry, then what goes with it, then the serial", function()
        assert.is_nil(changelog.serial(dict))
        assert.equal(1, changelog.append(dict, "sy_meta", "route:a", 600, log, "version", 7))
        assert.same({"log:1", "version", "serial"}, dict.writes)
        assert.equal(2, changelog.append(dict, "sy_meta", "route:b upstream:u", 600, log))
        assert.equal(2, changelog.serial(dict))
        assert.equal("route:b upstream:u", dict:get("log:2"))
        assert.equal(600, dict:ttl("log:2"))
        assert.equal(7, dict:get("version"))
        assert.same({}, logs)
    end)

    it("says so when the dict is full", function()
        local entry = string.rep("x", 100)
        dict = shared_dict.new({capacity = 2 * shared_dict.entry_size("log:1", entry)
                                          + shared_dict.entry_size("serial", 1)})
        changelog.append(dict, "sy_meta", entry, 600, log)
        changelog.append(dict, "sy_meta", entry, 600, log)
        assert.same({}, logs)
        changelog.append(dict, "sy_meta", entry, 600, log)   -- log:1 evicted for log:3
        assert.same({"warn sy_meta is full: older log entries were evicted"}, logs)
        assert.is_nil(dict:get("log:1"))
        assert.equal(3, changelog.serial(dict))
    end)

    it("append_shared takes the serial with an atomic incr", function()
        assert.equal(1, changelog.append_shared(dict, "sy_passive", "u a:1 10", 60, log))
        assert.equal(2, changelog.append_shared(dict, "sy_passive", "u b:1 11", 60, log))
        assert.same({"serial", "log:1", "serial", "log:2"}, dict.writes)
        dict:set("serial", "garbage")
        assert.is_nil(changelog.append_shared(dict, "sy_passive", "u c:1 12", 60, log))
        assert.same({"err sy_passive: cannot bump the serial: not a number"}, logs)
    end)

    it("entries lists what a reader missed, or nil when it must start over", function()
        for i = 1, 4 do
            changelog.append(dict, "sy_meta", "e" .. i, 600, log)
        end
        assert.same({}, changelog.entries(dict, 4, 4, 10))
        assert.same({"e2", "e3", "e4"}, changelog.entries(dict, 1, 4, 10))
        assert.is_nil(changelog.entries(dict, nil, 4, 10))      -- nothing applied yet
        assert.is_nil(changelog.entries(dict, 2, nil, 10))      -- the serial is gone
        assert.is_nil(changelog.entries(dict, 5, 4, 10))        -- went backwards
        assert.is_nil(changelog.entries(dict, 0, 4, 3))         -- too far behind
        dict:delete("log:3")
        assert.is_nil(changelog.entries(dict, 1, 4, 10))        -- expired or evicted
        assert.same({"e4"}, changelog.entries(dict, 3, 4, 10))
        changelog.append(dict, "sy_meta", "*", 600, log)
        assert.is_nil(changelog.entries(dict, 4, 5, 10, "*"))   -- "everything"
        assert.same({"*"}, changelog.entries(dict, 4, 5, 10))
    end)
end)
