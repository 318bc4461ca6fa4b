-- busted spec for switchyard.cluster.slot. The expected slots are what redis-server 7.0.15
-- in cluster mode answered to CLUSTER KEYSLOT (a three-master cluster on loopback).

describe("switchyard.cluster.slot", function()
    local slot = require "switchyard.cluster.slot"

    it("computes CRC16/XMODEM", function()
        assert.equal(0x31C3, slot.crc16("123456789"))   -- the XMODEM check value
        assert.equal(0, slot.crc16(""))
    end)

    it("answers what CLUSTER KEYSLOT answers", function()
        local known = {
            ["123456789"] = 12739, foo = 12182, cfg = 16374, a = 15495, b = 3300,
            ["tenant-a"] = 10903, ["switchyard:{cfg}:version"] = 16374,
        }
        for key, want in pairs(known) do
            assert.equal(want, slot.of(key), key)
        end
    end)

    it("hashes only the first non-empty hash tag", function()
        assert.equal(slot.of("cfg"), slot.of("switchyard:{cfg}:route:x"))
        assert.equal(slot.of("a"), slot.of("switchyard:{a}:events"))
        assert.equal("a", slot.hashed_part("x{a}y{b}"))
        assert.equal("x{}y", slot.hashed_part("x{}y"))     -- empty tag: the whole key
        assert.equal("x{y", slot.hashed_part("x{y"))       -- no closing brace
        assert.equal("{}", slot.hashed_part("{}"))
    end)
end)
