-- The edge's last good configuration on disk, so an edge can start (and serve) while Redis
-- is unreachable.
--
-- File (default <prefix>/state/snapshot.json), one JSON object:
--   {"format":1,
--    "docs":{"route:a":"<raw document as stored in Redis>", ...},
--    "count":N,"version":V,"digest":"<13 hex>","edge_id":"...","written_at":<ms>}
-- The documents are the raw bytes of sy_config (garbage included), so "digest" (see
-- switchyard.digest) checks the file: documents that do not add up to it are corrupt.
--
-- write(): streams the documents to <path>.tmp.<pid>, one per line (100k routes never
-- become one huge Lua string), closes it and renames it over <path>: a reader sees the old
-- snapshot or the new one, never half of one. No fsync: it could stall the worker for as
-- long as the disk likes; after a power loss the file is old, or malformed and ignored.
-- read(): the whole file; nil, err for anything that does not parse, has the wrong shape or
-- does not match its digest (the caller logs and ignores it).
--
-- Pure Lua (io, os); JSON codec and hash injected. Blocking file I/O, never yields: call
-- from init_by_lua (read, in the master) or the syncer's timer (write), never from the
-- request path. Debouncing is the caller's job (switchyard.syncer).

local digest = require "switchyard.digest"

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
        and (str_find(key, "^route:.") ~= nil or str_find(key, "^upstream:.") ~= nil)
end

-- cfg: the sy_config dict; info: version, digest (13 hex), edge_id, written_at (ms);
-- encode: a JSON encoder (cjson.encode); pid: makes the temporary name unique; pause
-- (optional): called after every PAUSE_EVERY documents (the syncer yields there, so a big
-- configuration never stalls the worker's requests for long; the caller must make sure
-- nothing writes sy_config meanwhile: the syncer is the only writer and it is busy here).
-- Returns the number of documents written, or nil, err (nothing replaced then).
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
                           ',"digest":', encode(info.digest), ',"edge_id":',
                           encode(info.edge_id or ""), ',"written_at":',
                           math_floor(info.written_at or 0), "}\n")
    end
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
    return count
end

-- decode: a JSON decoder returning nil, err on bad input (cjson.safe.decode); hash: the
-- digest's per-document hash. Returns {version, digest (number), docs, count, edge_id,
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
    return {
        version = version,
        digest = sum,
        docs = docs,
        count = count,
        edge_id = snap.edge_id,
        written_at = snap.written_at,
    }
end

return _M
