-- busted spec for switchyard.shm.digest, the digest kept by switchyard.shm.store, and
-- switchyard.sync.snapshot (the file an edge boots from when Redis is unreachable).

local digest = require "switchyard.shm.digest"
local store_mod = require "switchyard.shm.store"
local snapshot = require "switchyard.sync.snapshot"
local cjson = require "cjson"
local shared_dict = require "spec_support.shared_dict"

local bit = bit32

-- A plain SHA-1 (FIPS 180-1) so the spec can hash anything; checked against known vectors.
local function sha1_bin(msg)
    local function lrot(x, n) return bit.lrotate(x, n) end
    local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
    local ml = #msg * 8
    msg = msg .. "\128" .. string.rep("\0", (55 - #msg) % 64)
    local len = ""
    for i = 7, 0, -1 do len = len .. string.char(math.floor(ml / 2 ^ (8 * i)) % 256) end
    msg = msg .. len
    assert(#msg % 64 == 0)
    for chunk = 1, #msg, 64 do
        local w = {}
        for i = 0, 15 do
            local a, b, c, d = msg:byte(chunk + i * 4, chunk + i * 4 + 3)
            w[i] = ((a * 256 + b) * 256 + c) * 256 + d
        end
        for i = 16, 79 do
            w[i] = lrot(bit.bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1)
        end
        local a, b, c, d, e = h0, h1, h2, h3, h4
        for i = 0, 79 do
            local f, k
            if i < 20 then
                f, k = bit.bor(bit.band(b, c), bit.band(bit.bnot(b), d)), 0x5A827999
            elseif i < 40 then
                f, k = bit.bxor(b, c, d), 0x6ED9EBA1
            elseif i < 60 then
                f, k = bit.bor(bit.band(b, c), bit.band(b, d), bit.band(c, d)), 0x8F1BBCDC
            else
                f, k = bit.bxor(b, c, d), 0xCA62C1D6
            end
            local temp = (lrot(a, 5) + f + e + k + w[i]) % 2 ^ 32
            e, d, c, b, a = d, c, lrot(b, 30), a, temp
        end
        h0, h1, h2 = (h0 + a) % 2 ^ 32, (h1 + b) % 2 ^ 32, (h2 + c) % 2 ^ 32
        h3, h4 = (h3 + d) % 2 ^ 32, (h4 + e) % 2 ^ 32
    end
    local out = {}
    for _, h in ipairs({h0, h1, h2, h3, h4}) do
        for i = 3, 0, -1 do out[#out + 1] = string.char(math.floor(h / 2 ^ (8 * i)) % 256) end
    end
    return table.concat(out)
end

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

-- cjson.decode without raising, as the edge passes it (cjson.safe)
local function safe_decode(s)
    local ok, v = pcall(cjson.decode, s)
    if ok then return v end
    return nil, v
end

describe("snapshot", function()
    local path
    before_each(function()
        path = os.tmpname()
        os.remove(path)
    end)
    after_each(function()
        os.remove(path)
    end)

    local function filled()
        local cfg = fake_dict()
        cfg:safe_set("route:a", '{"version":3,"id":"a","host":"x.test","path":"/"}')
        cfg:safe_set("upstream:u", '{"version":2,"name":"u","endpoints":[]}')
        cfg:safe_set("route:weird", 'not json {\n\t"\\\255 ü')   -- stored bytes, whatever they are
        return cfg
    end

    it("writes atomically and reads back the same documents, version and digest", function()
        local cfg = filled()
        local d = digest.of(cfg:contents(), hash)
        local n = assert(snapshot.write(path, cfg, {version = 9, digest = digest.hex(d),
                                                    edge_id = "e1", written_at = 1234}, cjson.encode, 77))
        assert.equal(3, n)
        assert.is_nil(io.open(path .. ".tmp.77", "r"))    -- renamed away
        local snap = assert(snapshot.read(path, cjson.decode, hash))
        assert.equal(9, snap.version)
        assert.equal(d, snap.digest)
        assert.equal(3, snap.count)
        assert.equal("e1", snap.edge_id)
        assert.same(cfg:contents(), snap.docs)
        -- it is one JSON document an operator can read with jq
        local f = io.open(path, "rb")
        local decoded = cjson.decode(f:read("*a"))
        f:close()
        assert.equal(9, decoded.version)
    end)

    it("pauses between slices of a big configuration", function()
        local cfg = fake_dict()
        local n = 2 * snapshot.PAUSE_EVERY + 100
        for i = 1, n do cfg:safe_set("route:r" .. i, "doc " .. i) end
        local pauses = 0
        assert.equal(n, snapshot.write(path, cfg, {version = 1, digest = digest.hex(digest.of(cfg:contents(), hash))},
                                          cjson.encode, 1, function() pauses = pauses + 1 end))
        assert.equal(2, pauses)
        assert.equal(n, assert(snapshot.read(path, cjson.decode, hash)).count)
    end)

    it("writes an empty configuration", function()
        local cfg = fake_dict()
        assert.equal(0, snapshot.write(path, cfg, {version = 0, digest = digest.ZERO}, cjson.encode))
        local snap = assert(snapshot.read(path, cjson.decode, hash))
        assert.equal(0, snap.count)
        assert.same({}, snap.docs)
    end)

    local function write_raw(text)
        local f = io.open(path, "wb")
        f:write(text)
        f:close()
    end

    it("rejects malformed, truncated, tampered and foreign files", function()
        local snap, err, missing = snapshot.read(path, safe_decode, hash)
        assert.is_nil(snap)
        assert.is_true(missing)

        local cfg = filled()
        local hex = digest.hex(digest.of(cfg:contents(), hash))
        assert(snapshot.write(path, cfg, {version = 4, digest = hex}, cjson.encode))
        local f = io.open(path, "rb")
        local good = f:read("*a")
        f:close()

        local cases = {
            {good:sub(1, #good - 20), "not JSON"},
            {"", "empty"},
            {good:gsub('"version":4', '"version":-1'), "version"},
            {good:gsub('"version":4', '"version":"4"'), "version"},
            {good:gsub('"format":1', '"format":2'), "format"},
            {good:gsub(hex, "zzz"), "digest is not"},
            {good:gsub("not json", "NOT json"), "do not match the digest"},
            {good:gsub('"count":3', '"count":2'), "3 documents"},
            {good:gsub('"route:a"', '"other:a"'), "bad entry"},
            {'{"format":1,"docs":[],"count":0,"version":1,"digest":"0000000000000"}', nil},
        }
        for i, case in ipairs(cases) do
            write_raw(case[1])
            snap, err, missing = snapshot.read(path, safe_decode, hash)
            if case[2] then
                assert.is_nil(snap, "case " .. i)
                assert.is_nil(missing)
                assert.truthy(err:find(case[2], 1, true), "case " .. i .. ": " .. tostring(err))
            end
        end
    end)

    it("removes its temporary file when the pause fails", function()
        local cfg = fake_dict()
        for i = 1, snapshot.PAUSE_EVERY + 1 do cfg:safe_set("route:r" .. i, "doc") end
        local ok, err = snapshot.write(path, cfg, {version = 1, digest = digest.ZERO}, cjson.encode, 5,
                                       function() error("worker exiting") end)
        assert.is_nil(ok)
        assert.truthy(err:find("worker exiting", 1, true))
        assert.is_nil(io.open(path .. ".tmp.5", "r"))
        assert.is_nil(io.open(path, "r"))
    end)

    it("leaves the old file in place when the new one cannot be written", function()
        local cfg = filled()
        local hex = digest.hex(digest.of(cfg:contents(), hash))
        assert(snapshot.write(path, cfg, {version = 4, digest = hex}, cjson.encode))
        local ok, err = snapshot.write("/nonexistent-dir/snapshot.json", cfg,
                                       {version = 5, digest = hex}, cjson.encode)
        assert.is_nil(ok)
        assert.truthy(err:find("cannot create", 1, true))
        assert.equal(4, assert(snapshot.read(path, cjson.decode, hash)).version)
    end)
end)

describe("snapshot journal", function()
    local path
    before_each(function()
        path = os.tmpname()
        os.remove(path)
    end)
    after_each(function()
        os.remove(snapshot.journal_path(path))
        os.remove(path)
    end)

    -- sy_config and its store, with a snapshot of version 1 on disk
    local function start()
        local cfg, meta = fake_dict(), fake_dict()
        local store = store_mod.new(cfg, meta, nil, hash)
        store:commit({["route:a"] = "A1", ["upstream:u"] = "U1",
                      ["certificate:c"] = '{"chain":"x","key_enc":"y"}'}, 1)
        assert(snapshot.write(path, cfg, {version = 1, digest = digest.hex(meta:get("digest"))},
                              cjson.encode))
        return cfg, meta, store
    end

    -- a commit, journaled as the syncer does it: one open file for consecutive appends
    local file
    local function change(store, meta, changes, version)
        store:commit(changes, version)
        local bytes, f = snapshot.append(path, version, digest.hex(meta:get("digest")),
                                         changes, cjson.encode, file)
        assert(bytes, f)
        file = f
        return bytes
    end
    after_each(function()
        if file then
            file:close()
            file = nil
        end
    end)

    local function append_line(text)
        local f = io.open(snapshot.journal_path(path), "ab")
        f:write(text)
        f:close()
    end

    it("replays the journal on top of the snapshot: puts, deletes, certificates", function()
        local cfg, meta, store = start()
        assert.is_true(change(store, meta, {["route:b"] = "B1"}, 2) > 0)
        change(store, meta, {["route:a"] = false, ["upstream:u"] = "U2"}, 3)
        change(store, meta, {}, 4)   -- a version that changed nothing
        local snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(3, snap.journal_records)
        assert.is_nil(snap.journal_stop)
        assert.equal(4, snap.version)
        assert.same(cfg:contents(), snap.docs)
        assert.equal(meta:get("digest"), snap.digest)
        assert.equal(3, snap.count)
    end)

    it("stops at a line cut short by a crash, keeping the records before it", function()
        local _, meta, store = start()
        change(store, meta, {["route:b"] = "B1"}, 2)
        append_line('{"version":3,"digest":"00000')
        local snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(1, snap.journal_records)
        assert.truthy(snap.journal_stop:find("does not parse", 1, true))
        assert.equal(2, snap.version)
        assert.equal("B1", snap.docs["route:b"])
    end)

    it("stops at a record that does not follow from the documents, undoing it", function()
        local _, meta, store = start()
        change(store, meta, {["route:b"] = "B1"}, 2)
        local before = meta:get("digest")
        -- made on top of other documents: its digest is not what applying it gives
        append_line(cjson.encode({version = 3, digest = digest.hex(before),
                                  docs = {["route:a"] = false, ["route:c"] = "C"}}) .. "\n")
        change(store, meta, {["route:d"] = "D"}, 4)   -- never reached
        local snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(1, snap.journal_records)
        assert.truthy(snap.journal_stop:find("does not follow", 1, true))
        assert.equal(2, snap.version)
        assert.equal(before, snap.digest)
        assert.equal("A1", snap.docs["route:a"])
        assert.is_nil(snap.docs["route:c"])
        assert.is_nil(snap.docs["route:d"])
    end)

    it("rejects a record with a foreign key or a non-string document", function()
        local _, meta, store = start()
        append_line('{"version":2,"digest":"0000000000000","docs":{"other:x":"X"}}\n')
        local snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(0, snap.journal_records)
        assert.truthy(snap.journal_stop:find("bad entry", 1, true))
        assert.equal(1, snap.version)
        os.remove(snapshot.journal_path(path))
        append_line('{"version":2,"digest":"0000000000000","docs":{"route:x":7}}\n')
        snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(0, snap.journal_records)
        assert.truthy(snap.journal_stop:find("bad entry", 1, true))
        -- the records before a bad one still count
        os.remove(snapshot.journal_path(path))
        file = nil
        change(store, meta, {["route:b"] = "B1"}, 2)
        append_line('{"version":3,"digest":"0000000000000","docs":{"other:x":"X"}}\n')
        snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(1, snap.journal_records)
        assert.equal("B1", snap.docs["route:b"])
    end)

    it("skips records not newer than the snapshot; a new snapshot removes the journal", function()
        local cfg, meta, store = start()
        change(store, meta, {["route:b"] = "B1"}, 2)
        -- a crash between the rename and the removal: the new snapshot already has it
        local journal = io.open(snapshot.journal_path(path), "rb"):read("*a")
        file:close()
        file = nil
        assert(snapshot.write(path, cfg, {version = 2, digest = digest.hex(meta:get("digest"))},
                              cjson.encode))
        assert.is_nil(io.open(snapshot.journal_path(path), "rb"))
        append_line(journal)
        change(store, meta, {["route:c"] = "C1"}, 3)
        local snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal(1, snap.journal_records)
        assert.equal(3, snap.version)
        assert.same(cfg:contents(), snap.docs)
    end)
end)
