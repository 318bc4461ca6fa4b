-- busted spec for switchyard.shm.digest and the digest kept by switchyard.shm.store.

local digest = require "switchyard.shm.digest"
local store_mod = require "switchyard.shm.store"
local shared_dict = require "spec_support.shared_dict"

local sha1_bin = require("spec_support.sha1").bin

local function to_hex(bin)
    return (bin:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- the shared dict; capacity: room for about that many documents of this spec's size
local function fake_dict(capacity)
    return shared_dict.new({capacity = capacity
        and capacity * shared_dict.entry_size("route:r10", "doc 100 route:r10")})
end

local hash = digest.hasher(sha1_bin)

describe("digest", function()
    -- reference values from Python's hashlib
    local vectors = {
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d", 2983610221359208},
        {'route:a\n{"version":1,"host":"x"}', "2cf8526d2cf5da6f5dc8290319d43daa3e922eff",
         791120742371165},
        {"upstream:b\ngarbage {", "249337af8b0a225235840be1bc25db53f713395f", 643435408699554},
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709", 3839057572783796},
    }

    it("takes the first 13 hex digits of sha1, from binary or hex alike", function()
        for _, v in ipairs(vectors) do
            local bin = sha1_bin(v[1])
            assert.equal(v[2], to_hex(bin))
            assert.equal(v[3], digest.from_bin(bin))
            assert.equal(v[3], digest.from_hex(v[2]))
            assert.equal(v[2]:sub(1, 13), digest.hex(digest.from_bin(bin)))
        end
        assert.equal(791120742371165, hash("route:a", '{"version":1,"host":"x"}'))
        assert.equal(643435408699554, hash("upstream:b", "garbage {"))
    end)

    it("formats 13 hex digits and parses them back", function()
        assert.equal("0000000000000", digest.hex(0))
        assert.equal(digest.ZERO, digest.hex(0))
        assert.equal("fffffffffffff", digest.hex(2 ^ 52 - 1))
        assert.equal("0000010000000", digest.hex(2 ^ 28))
        assert.equal(2 ^ 52 - 1, digest.parse("fffffffffffff"))
        assert.equal(2 ^ 28, digest.parse("0000010000000"))
        assert.is_nil(digest.parse("fffffffffffff0"))
        assert.is_nil(digest.parse("xyz0000000000"))
        assert.is_nil(digest.parse(nil))
    end)

    it("adds and subtracts modulo 2^52, exactly", function()
        local top = 2 ^ 52 - 1
        assert.equal(0, digest.add(top, 1))
        assert.equal(top - 1, digest.add(top, top))
        assert.equal(top, digest.sub(0, 1))
        local d = 0
        local hs = {}
        for i = 1, 200 do
            hs[i] = hash("route:r" .. i, "doc " .. i)
            d = digest.add(d, hs[i])
        end
        for i = 200, 1, -1 do
            d = digest.sub(d, hs[i])
        end
        assert.equal(0, d)
    end)

    it("pauses between slices when asked to", function()
        local docs = {}
        for i = 1, 2 * digest.PAUSE_EVERY + 500 do docs["route:r" .. i] = "d" .. i end
        local cheap = function(key, raw) return #key + #raw end
        local pauses = 0
        local d = digest.of(docs, cheap, function() pauses = pauses + 1 end)
        assert.equal(2, pauses)
        assert.equal(digest.of(docs, cheap), d)
    end)

    it("does not depend on order", function()
        local docs = {}
        for i = 1, 50 do docs["route:r" .. i] = '{"version":' .. i .. "}" end
        local forward, backward = 0, 0
        for i = 1, 50 do forward = digest.add(forward, hash("route:r" .. i, docs["route:r" .. i])) end
        for i = 50, 1, -1 do backward = digest.add(backward, hash("route:r" .. i, docs["route:r" .. i])) end
        assert.equal(forward, backward)
        assert.equal(forward, digest.of(docs, hash))
    end)
end)

describe("store digest", function()
    it("follows every commit and equals a recomputation, failed writes included", function()
        math.randomseed(7)
        local cfg, meta = fake_dict(40), fake_dict()
        local st = store_mod.new(cfg, meta, function() end, hash)
        for round = 1, 300 do
            local changes = {}
            for _ = 1, math.random(1, 5) do
                local key = (math.random() < 0.3 and "upstream:u" or "route:r") .. math.random(1, 50)
                changes[key] = math.random() < 0.25 and false or ("doc " .. round .. " " .. key)
            end
            st:commit(changes, round)
            assert.equal(st:compute_digest(), meta:get("digest"))
        end
        assert.is_true(meta:get("sync:shm_errors") > 0)   -- the capacity was hit
    end)

    it("recomputes on a full load and starts from the dict when it has no digest", function()
        local cfg, meta = fake_dict(), fake_dict()
        cfg:safe_set("route:pre", "existing")        -- written by an older edge, no digest
        local st = store_mod.new(cfg, meta, function() end, hash)
        st:commit({["route:a"] = "A"}, 1)
        assert.equal(digest.of({["route:pre"] = "existing", ["route:a"] = "A"}, hash),
                     meta:get("digest"))
        meta:set("digest", 12345)                       -- drift
        st:full({["route:a"] = "A", ["upstream:u"] = "garbage {"}, 2)
        assert.equal(digest.of({["route:a"] = "A", ["upstream:u"] = "garbage {"}, hash),
                     meta:get("digest"))
        assert.is_nil(cfg:get("route:pre"))
    end)

    it("keeps no digest without a hash function", function()
        local cfg, meta = fake_dict(), fake_dict()
        store_mod.new(cfg, meta):commit({["route:a"] = "A"}, 1)
        assert.is_nil(meta:get("digest"))
    end)
end)
