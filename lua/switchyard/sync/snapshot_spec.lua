-- busted spec for switchyard.sync.snapshot (the file an edge boots from when Redis is
-- unreachable) and its journal.

local digest = require "switchyard.shm.digest"
local store_mod = require "switchyard.shm.store"
local snapshot = require "switchyard.sync.snapshot"
local cjson = require "cjson"
local shared_dict = require "spec_support.shared_dict"
local sha1_bin = require("spec_support.sha1").bin

local hash = digest.hasher(sha1_bin)

local function fake_dict()
    return shared_dict.new()
end

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
        assert.is_nil(snap.epoch)   -- written without one
        assert.same(cfg:contents(), snap.docs)
        -- it is one JSON document an operator can read with jq
        local f = io.open(path, "rb")
        local decoded = cjson.decode(f:read("*a"))
        f:close()
        assert.equal(9, decoded.version)
    end)

    it("keeps the epoch the version belongs to", function()
        local cfg = filled()
        local hex = digest.hex(digest.of(cfg:contents(), hash))
        local epoch = "0123456789abcdef0123456789abcdef"
        assert(snapshot.write(path, cfg, {version = 9, digest = hex, epoch = epoch}, cjson.encode))
        assert.equal(epoch, assert(snapshot.read(path, cjson.decode, hash)).epoch)
    end)

    it("probes whether files can be created beside the snapshot", function()
        assert.is_true(snapshot.probe(path, 42))
        assert.is_nil(io.open(path:match("^(.*)/") .. "/.probe.42", "r"))   -- removed again
        local ok, err = snapshot.probe("/nonexistent-switchyard-dir/state/snapshot.json", 42)
        assert.is_nil(ok)
        assert.is_string(err)
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
        assert.truthy(err)
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

    it("keeps stream documents (held for the digest) in the journal and the snapshot", function()
        local cfg, meta, store = start()
        change(store, meta, {["stream:db"] = '{"id":"db","listen":5432,"upstream":"u"}'}, 2)
        local snap = assert(snapshot.read(path, safe_decode, hash))
        assert.is_nil(snap.journal_stop)
        assert.same(cfg:contents(), snap.docs)
        assert.equal(meta:get("digest"), snap.digest)
        assert(snapshot.write(path, cfg, {version = 2, digest = digest.hex(meta:get("digest"))},
                              cjson.encode))
        snap = assert(snapshot.read(path, safe_decode, hash))
        assert.equal('{"id":"db","listen":5432,"upstream":"u"}', snap.docs["stream:db"])
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
