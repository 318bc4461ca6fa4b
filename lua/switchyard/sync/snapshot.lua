-- The edge's last good configuration on disk, so an edge can start (and serve) while Redis
-- is unreachable.
--
-- File (default <prefix>/state/snapshot.json), one JSON object:
--   {"format":1,
--    "docs":{"route:a":"<raw document as stored in Redis>", ...},
--    "count":N,"version":V,"digest":"<13 hex>","epoch":"<32 hex>","edge_id":"...",
--    "written_at":<ms>}
-- "epoch" names the configuration history the version belongs to (redis/README.md, "When
-- Redis lost its data"); absent when the edge knew none (files from before epochs too).
-- The documents are the raw bytes of sy_config (garbage included), so "digest" (see
-- switchyard.shm.digest) checks the file: documents that do not add up to it are corrupt.
--
-- write(): streams the documents to <path>.tmp.<pid>, one per line (100k routes never
-- become one huge Lua string), closes it and renames it over <path>: a reader sees the old
-- snapshot or the new one, never half of one. No fsync: it could stall the worker for as
-- long as the disk likes; after a power loss the file is old, or malformed and ignored.
-- read(): the whole file; nil, err for anything that does not parse, has the wrong shape or
-- does not match its digest (the caller logs and ignores it).
--
-- The journal, <path>.journal: rewriting 100k documents for every change would cost a
-- worker ~0.5 s per write, so between full writes the syncer appends each commit to the
-- journal instead, one JSON object per line:
--   {"version":V,"digest":"<13 hex>","docs":{"route:a":"<raw>","route:b":false}}
-- (false: deleted). append() is one write of one line; write() removes the journal after
-- the rename, so a new snapshot starts with none. read() applies the journal's records on
-- top of the snapshot in order, each only if the documents then add up to the record's
-- digest; it stops at the first line that does not parse (a write cut short by a crash)
-- or does not add up (records made on top of another snapshot), keeping what was applied
-- before. Records not newer than the snapshot are skipped (a crash between the rename and
-- the removal).
--
-- Pure Lua (io, os); JSON codec and hash injected. Blocking file I/O, never yields: call
-- from init_by_lua (read, in the master) or the syncer's timer (write), never from the
-- request path. Debouncing is the caller's job (switchyard.sync.syncer).

local digest = require "switchyard.shm.digest"

local io_open = io.open
local os_rename = os.rename
local os_remove = os.remove
local type = type
local pairs = pairs
local tostring = tostring
local pcall = pcall
local math_floor = math.floor
local str_find = string.find

local _M = {}

_M.FORMAT = 1

local function valid_key(key)
    return type(key) == "string"
        and (str_find(key, "^route:.") ~= nil or str_find(key, "^upstream:.") ~= nil
             or str_find(key, "^certificate:.") ~= nil or str_find(key, "^stream:.") ~= nil)
end

function _M.journal_path(path)
    return path .. ".journal"
end

-- Whether files can be created beside the snapshot at `path` (by this process, i.e. the
-- worker's user): writes and removes <dir>/.probe.<pid>. Returns true, or nil, err.
function _M.probe(path, pid)
    local dir = path:match("^(.*)/[^/]*$") or "."
    local probe = dir .. "/.probe." .. tostring(pid or 0)
    local f, err = io_open(probe, "wb")
    if not f then
        return nil, tostring(err)
    end
    local ok, werr = f:write("switchyard")
    local closed, cerr = f:close()
    os_remove(probe)
    if not ok or not closed then
        return nil, tostring(werr or cerr)
    end
    return true
end

-- cfg: the sy_config dict; info: version, digest (13 hex), epoch (nil: none), edge_id,
-- written_at (ms);
-- encode: a JSON encoder (cjson.encode); pid: makes the temporary name unique; pause
-- (optional): called after every PAUSE_EVERY documents (the syncer yields there, so a big
-- configuration never stalls the worker's requests for long; the caller must make sure
-- nothing writes sy_config meanwhile: the syncer is the only writer and it is busy here).
-- Returns the number of documents written and the file's size in bytes, or nil, err
-- (nothing replaced then).
_M.PAUSE_EVERY = 1000

function _M.write(path, cfg, info, encode, pid, pause)
    local tmp = path .. ".tmp." .. tostring(pid or 0)
    local f, err = io_open(tmp, "wb")
    if not f then
        return nil, "cannot create " .. tmp .. ": " .. tostring(err)
    end
    local count = 0
    local ok, werr
    -- under pcall: whatever fails (a pause that raises), the temporary file is removed
    local fine, perr = pcall(function()
        local keys = cfg:get_keys(0)
        ok, werr = f:write('{"format":', _M.FORMAT, ',"docs":{')
        for i = 1, #keys do
            if not ok then
                break
            end
            local key = keys[i]
            local raw = cfg:get(key)
            if raw ~= nil then
                ok, werr = f:write(count == 0 and "\n" or ",\n", encode(key), ":", encode(raw))
                count = count + 1
                if pause and count % _M.PAUSE_EVERY == 0 then
                    pause()
                end
            end
        end
    end)
    if not fine then
        ok, werr = false, perr
    end
    if ok then
        ok, werr = f:write('\n},"count":', count, ',"version":', info.version,
                           ',"digest":', encode(info.digest),
                           info.epoch and (',"epoch":' .. encode(info.epoch)) or "",
                           ',"edge_id":',
                           encode(info.edge_id or ""), ',"written_at":',
                           math_floor(info.written_at or 0), "}\n")
    end
    local size = ok and f:seek("cur") or 0
    -- close flushes: a full disk often shows only here
    local closed, cerr = f:close()
    if not ok or not closed then
        os_remove(tmp)
        return nil, "cannot write " .. tmp .. ": " .. tostring(werr or cerr)
    end
    local renamed, rerr = os_rename(tmp, path)
    if not renamed then
        os_remove(tmp)
        return nil, "cannot rename " .. tmp .. " to " .. path .. ": " .. tostring(rerr)
    end
    -- the journal held changes on top of the old snapshot; the new one has them
    os_remove(_M.journal_path(path))
    return count, size
end

-- Appends one commit to the journal: version, digest (13 hex) of every document after it,
-- changes (shm key -> raw, or false for a delete). f: the journal as the last append left
-- it open (nil: opened here). Returns the bytes written and the open file, to pass to the
-- next append and to close before the next write(); or nil, err (file closed; the caller
-- writes a whole snapshot instead). One write and one flush: no open or close per commit.
function _M.append(path, version, digest_hex, changes, encode, f)
    local line = encode({version = version, digest = digest_hex, docs = changes})
    if type(line) ~= "string" then
        if f then
            f:close()
        end
        return nil, "cannot encode the journal record"
    end
    local jpath = _M.journal_path(path)
    if not f then
        local err
        f, err = io_open(jpath, "ab")
        if not f then
            return nil, "cannot open " .. jpath .. ": " .. tostring(err)
        end
    end
    local ok, werr = f:write(line, "\n")
    if ok then
        ok, werr = f:flush()
    end
    if not ok then
        f:close()
        return nil, "cannot write " .. jpath .. ": " .. tostring(werr)
    end
    return #line + 1, f
end

-- Applies the journal at jpath to snap (docs, digest, version, count; changed in place).
-- Returns the number of records applied and why it stopped early (nil: the end).
local function replay(jpath, snap, decode, hash)
    local f = io_open(jpath, "rb")
    if not f then
        return 0
    end
    local docs = snap.docs
    local applied = 0
    local stop
    for line in f:lines() do
        local rec = decode(line)
        local want = type(rec) == "table" and digest.parse(rec.digest)
        local version = want and rec.version
        if not want or type(version) ~= "number" or version % 1 ~= 0
            or type(rec.docs) ~= "table" then
            stop = "record " .. (applied + 1) .. " does not parse"
            break
        end
        if version > snap.version then
            local undo, sum, count, bad = {}, snap.digest, snap.count, false
            for key, raw in pairs(rec.docs) do
                if not valid_key(key) or (raw ~= false and type(raw) ~= "string") then
                    bad = true
                    break
                end
                local old = docs[key]
                if old == nil then
                    undo[key] = false
                else
                    undo[key] = old
                end
                if old ~= nil then
                    sum = digest.sub(sum, hash(key, old))
                    count = count - 1
                end
                if raw then
                    sum = digest.add(sum, hash(key, raw))
                    count = count + 1
                    docs[key] = raw
                else
                    docs[key] = nil
                end
            end
            if bad or sum ~= want then
                for key, old in pairs(undo) do
                    docs[key] = old or nil
                end
                stop = "record " .. (applied + 1) .. (bad and " has a bad entry"
                    or " does not follow from the documents before it")
                break
            end
            snap.digest, snap.count, snap.version = sum, count, version
            applied = applied + 1
        end
    end
    f:close()
    return applied, stop
end

-- decode: a JSON decoder returning nil, err on bad input (cjson.safe.decode); hash: the
-- digest's per-document hash. Returns {version, digest (number), docs, count, epoch, edge_id,
-- written_at}, or nil, err, missing (missing = true when there is no file at all).
function _M.read(path, decode, hash)
    local f, err = io_open(path, "rb")
    if not f then
        return nil, "cannot open " .. path .. ": " .. tostring(err), true
    end
    local text = f:read("*a")
    f:close()
    if not text or text == "" then
        return nil, path .. " is empty"
    end
    local snap, derr = decode(text)
    if type(snap) ~= "table" then
        return nil, path .. " is not JSON: " .. tostring(derr)
    end
    if snap.format ~= _M.FORMAT then
        return nil, path .. ": unknown format " .. tostring(snap.format)
    end
    local version = snap.version
    if type(version) ~= "number" or version < 0 or version % 1 ~= 0 then
        return nil, path .. ": version is not a non-negative integer"
    end
    local want = digest.parse(snap.digest)
    if not want then
        return nil, path .. ": digest is not 13 hex digits"
    end
    local docs = snap.docs
    if type(docs) ~= "table" then
        return nil, path .. ": docs is not an object"
    end
    local count = 0
    local sum = 0
    for key, raw in pairs(docs) do
        if not valid_key(key) or type(raw) ~= "string" then
            return nil, path .. ": bad entry " .. tostring(key)
        end
        count = count + 1
        sum = digest.add(sum, hash(key, raw))
    end
    if count ~= snap.count then
        return nil, path .. ": " .. count .. " documents, the file says " .. tostring(snap.count)
    end
    if sum ~= want then
        return nil, path .. ": documents do not match the digest " .. snap.digest
            .. " (computed " .. digest.hex(sum) .. ")"
    end
    local out = {
        version = version,
        digest = sum,
        docs = docs,
        count = count,
        epoch = type(snap.epoch) == "string" and snap.epoch ~= "" and snap.epoch or nil,
        edge_id = snap.edge_id,
        written_at = snap.written_at,
    }
    out.journal_records, out.journal_stop = replay(_M.journal_path(path), out, decode, hash)
    return out
end

return _M
