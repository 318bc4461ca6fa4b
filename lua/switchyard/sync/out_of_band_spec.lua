-- busted spec for switchyard.sync.out_of_band: documents changed behind sy_apply's back.

local oob = require "switchyard.sync.out_of_band"
local digest = require "switchyard.shm.digest"
local cjson = require "cjson"

-- a stand-in hash: any function of key and bytes works for the bookkeeping
local function hash(key, raw)
    local h = 0
    local s = key .. "\n" .. raw
    for i = 1, #s do
        h = (h * 31 + s:byte(i)) % 2 ^ 52
    end
    return h
end

local docs = {
    ["route:a"] = '{"version":3,"id":"a"}',
    ["route:b"] = '{"version":4,"id":"b","priority":7}',   -- edited by hand
    ["upstream:u"] = '{"version":2,"name":"u"}',
    ["route:c"] = 'typed into redis-cli',                  -- no recorded hash at all
}

local function recorded()
    return {
        ["route:a"] = digest.hex(hash("route:a", docs["route:a"])),
        ["route:b"] = digest.hex(hash("route:b", '{"version":4,"id":"b"}')),
        ["upstream:u"] = digest.hex(hash("upstream:u", docs["upstream:u"])),
    }
end

describe("out_of_band", function()
    it("finds the documents whose bytes differ from the recorded hash", function()
        local d, state = oob.scan(docs, recorded(), hash)
        assert.equal(digest.of(docs, hash), d)   -- the edge's digest: what it holds
        assert.equal(2, state.n)
        assert.equal("route:b,route:c", oob.named(state))
        -- corrected by delta, it is what Redis's digest is: the sum of the recorded hashes
        local redis = 0
        for _, hex in pairs(recorded()) do
            redis = digest.add(redis, digest.parse(hex))
        end
        assert.equal(redis, oob.recorded_digest(state, d))
    end)

    it("finds nothing when Redis keeps no hashes (a library from before them)", function()
        local d, state = oob.scan(docs, nil, hash)
        assert.equal(digest.of(docs, hash), d)
        assert.equal(0, state.n)
        assert.equal(d, oob.recorded_digest(state, d))
    end)

    it("forgets a document sy_apply wrote again, and keeps the sums right", function()
        local d, state = oob.scan(docs, recorded(), hash)
        local redis = oob.recorded_digest(state, d)
        -- sy_apply rewrites route:b: Redis subtracts the recorded hash, the edge the actual one
        local new = '{"version":9,"id":"b","priority":3}'
        local h_new = hash("route:b", new)
        local r_b = digest.parse(recorded()["route:b"])
        redis = digest.add(digest.sub(redis, r_b), h_new)
        d = digest.add(digest.sub(d, hash("route:b", docs["route:b"])), h_new)
        assert.is_true(oob.forget(state, {["route:b"] = new}))
        assert.equal(1, state.n)
        assert.equal(redis, oob.recorded_digest(state, d))
        assert.is_false(oob.forget(state, {["route:a"] = "x"}))
        -- deleting the last one empties the state
        assert.is_true(oob.forget(state, {["route:c"] = false}))
        assert.equal(0, state.n)
        assert.equal(0, state.delta)
    end)

    it("counts past what it tracks, and then cannot vouch for the digest", function()
        local many, rec = {}, {}
        for i = 1, oob.MAX_TRACKED + 5 do
            many["route:r" .. i] = "doc " .. i
            rec["route:r" .. i] = digest.hex(hash("route:r" .. i, "other " .. i))
        end
        local d, state = oob.scan(many, rec, hash)
        assert.equal(oob.MAX_TRACKED + 5, state.n)
        assert.is_true(state.overflow)
        assert.is_nil(oob.recorded_digest(state, d))
    end)

    it("round-trips through JSON without rounding 52-bit numbers", function()
        local _, state = oob.scan(docs, recorded(), hash)
        local back = oob.decode(oob.encode(state, cjson.encode), cjson.decode)
        assert.same(state, back)
        assert.is_nil(oob.decode("not json", function() return nil end))
        assert.is_nil(oob.decode('{"keys":{},"n":1,"delta":"x"}', cjson.decode))
    end)

    it("pauses between slices", function()
        local many = {}
        for i = 1, 2 * oob.PAUSE_EVERY + 1 do
            many["route:r" .. i] = "doc"
        end
        local pauses = 0
        oob.scan(many, nil, hash, function() pauses = pauses + 1 end)
        assert.equal(2, pauses)
    end)
end)
