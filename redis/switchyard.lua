#!lua name=switchyard
--
-- Switchyard's write path. Every change to the configuration is one FCALL of sy_apply:
-- it checks the whole batch first, then writes the objects, bumps the version once,
-- appends to the change stream and publishes the new version. Either all of a batch is
-- written or none of it is, and an edge never sees half a change.
--
-- The key schema is documented in redis/README.md (and mirrored in
-- Sources/SwitchyardCore/KeySchema.swift and lua/switchyard/sync/keys.lua).
--
-- FCALL sy_apply 1 <base>version  [epoch <id>] [owner <name>] [who <name>] [note <text>]
--                                  [if_version <N>] [dry 1] [keep <count>:<bytes>] [force 1]
--                                  op kind id doc refs expect  [op kind id doc refs expect ...]
--
--   KEYS[1]  the version key, e.g. "switchyard:{cfg}:version". Every other key is derived
--            from it, so all keys share its hash tag (one cluster slot).
--   epoch    (optional) the configuration history the writer knows (EPOCH below): Redis
--            must hold it
--   owner    (optional; "" = none) who writes: an existing object is changed or deleted
--            only by its owner (<base>owners; OWNERS below), a put by an owner records it
--   who      (optional) who made the change, recorded in the history (HISTORY below)
--   note     (optional) a note recorded with the change in the history
--   if_version (optional) the configuration version the writer saw: the call fails with
--            precondition_failed (nothing written) when <base>version is another
--   dry      (optional) "1": check everything, write nothing; reply {version, changed,
--            epoch, "dry"} (changed: how many objects the call would change)
--   keep     (optional) the history's retention, "<changes>:<bytes>" (default
--            HISTORY_MAX_CHANGES:HISTORY_MAX_BYTES)
--   report   (optional) "1": the reply gets a fourth element, per operation in the
--            order given: the object's stored version after the call (0 after a del) and
--            1 when the call created it, else 0 (flat: {v1, created1, v2, created2, ...}).
--            A single-object PUT needs no GET before it then (created or replaced, and the
--            version an unchanged document keeps). Not with dry.
--   force    (optional) "1": skip the owner check (a revert that restores owned objects
--            too). A "restore" records the owner its document names ("owner" member), else
--            the object keeps the owner it has
--   op       "put", "del", or "restore" (doc = a document exactly as sy_apply stored it,
--            "version" included, written byte for byte: a revert, so the recorded hashes
--            and the digest come back to what they were)
--   kind     "route", "upstream", "certificate" (a TLS certificate the edges serve by
--            SNI; no refs, nothing refers to it) or "stream" (a TCP/UDP listen port served
--            by `switchyard stream`, docs/stream.md; refs "": its document's "upstream" must
--            exist, and no other stream may hold its "listen" port and "protocol")
--   id       route id, upstream name, certificate or stream id
--   doc      put: the object as a JSON object WITHOUT "version" (the controller's encoding);
--            del: ""
--   refs     put route: comma-separated names of the upstreams it uses; otherwise ""
--   expect   "" for no precondition; "0" = the object must not exist; N = the object's
--            stored version must be N (optimistic concurrency for read-modify-write)
--
-- Reply: { version, changed, epoch } (with report: { version, changed, epoch, report }).
-- A batch that changes nothing (every put identical to what is stored) does not bump the
-- version and replies { current version, 0, epoch }.
--
-- Digest: every write also updates <base>digest, an order-independent digest of every
-- stored route, upstream, certificate and stream document (13 hex digits; see DIGEST below and
-- redis/README.md, "The digest"), in the same atomic step as the version, so an edge that
-- reports the same version and digest holds exactly the documents Redis holds.
--
-- Errors are replies of the form  SYERR {"code":...,"kind":...,"id":...,...}  with code
--   not_found          del of an object that does not exist
--   in_use             del of an upstream that routes or streams still use ("routes": [...],
--                      "streams": [...])
--   missing_upstream   route or stream put naming an upstream that will not exist
--                      ("upstream": name)
--   port_conflict      stream put whose listen port and protocol another stream holds after
--                      the batch ("stream": that id, "listen", "protocol")
--   version_mismatch   an expect precondition failed ("expected", "actual")
--   bad_request        malformed call (wrong arity, unknown op/kind, duplicate object,
--                      doc not a JSON object)
--   wrong_type         a key the call reads or writes has the wrong Redis type (typed in
--                      by hand): "key", "type" (what it is), "want" (what it must be)
--   too_large          more than MAX_OPS (1,000) operations ("max", "ops")
--   owned              an object owned by another writer than this one ("key", "owner":
--                      its owner or null, "writer", "source": the document's, or null)
--   no_epoch, epoch_mismatch, data_lost, edge_conflict   the history (EPOCH below)
--   precondition_failed  the if_version option is not the stored version ("expected",
--                      "version")
-- Nothing is written when an error is returned: the batch is checked completely, and
-- every key it will write is checked for its type, before the first write (a Redis
-- script is not rolled back when a command fails half-way).
--
-- Style as the edge's Lua (lua/README.md): the Redis API and Lua's libraries in locals,
-- snake_case, double quotes. Redis runs a library's top level with almost nothing in scope
-- (redis.register_function and redis.log; naming string, cjson or redis.call there fails
-- with "Script attempted to access nonexistent global variable"), so the locals are bound
-- by bind() when a function first runs, not when the library loads.

-- sy_apply's leading options (see the header)
local APPLY_OPTIONS = {epoch = true, owner = true, who = true, note = true, if_version = true,
                       dry = true, keep = true, force = true, report = true}
local STREAM_MAXLEN = 10000  -- approximate cap of the change stream (XADD MAXLEN ~)
-- Operations per sy_apply call. A Function cannot yield: its work is O(operations) in one
-- go, during which Redis answers nobody. 1,000 keeps the longest call at about 50 ms here
-- (1,000 upstreams of 1.9 KB: bench/apply_cost.py, README "Batches"); larger imports are
-- several calls (POST /api/v1/apply?atomic=false). The controller's Batch.maxObjects.
local MAX_OPS = 1000
local HINT_KEYS = 32         -- batches up to this size name their objects in the event
-- HISTORY. Every change is also one entry of <base>history (a stream, id "<version>-0"):
--   bytes  the entry's size (the sum of its values' lengths), for the byte bound
--   who    the writer (the API token's name, or the owner such as "k8s/switchyard")
--   note   the X-Switchyard-Note of the request ("" for none)
--   ts     Redis's clock (ms) at the change
--   digest the configuration digest after the change
--   then per object, in batch order: "o" <kind>:<id>, "b" the document before (as stored,
--   "" when it did not exist), "a" the document after ("" when deleted).
-- A resync (sy_digest adopting hand edits, sy_reseed) is an entry "op" "resync": a revert
-- cannot cross it. <base>history_bytes is the sum of the entries' bytes; the oldest entries
-- go when there are more than <count> or more than <bytes> bytes (the newest always stays).
local HISTORY_MAX_CHANGES = 1000
local HISTORY_MAX_BYTES = 32 * 1024 * 1024
local HISTORY_TRIM_PAGE = 100
-- The kinds of object sy_apply writes, in the order bulk reads walk them.
local KINDS = {"upstream", "route", "certificate", "stream"}

-- The Redis API and Lua's libraries, bound by bind() (see the header).
local call, pcall_redis, sha1hex, error_reply
local json_encode, json_decode, json_null
local type, pairs, ipairs, pcall, error, tonumber, tostring, unpack
local str_format, math_floor, math_max, math_min, tbl_concat, tbl_sort

local function bind()
    call, pcall_redis = redis.call, redis.pcall
    sha1hex, error_reply = redis.sha1hex, redis.error_reply
    json_encode, json_decode, json_null = cjson.encode, cjson.decode, cjson.null
    type, pairs, ipairs, pcall, error = _G.type, _G.pairs, _G.ipairs, _G.pcall, _G.error
    tonumber, tostring, unpack = _G.tonumber, _G.tostring, _G.unpack
    str_format, math_floor, math_max, math_min = string.format, math.floor, math.max, math.min
    tbl_concat, tbl_sort = table.concat, table.sort
end

local function fail(code, fields)
    fields = fields or {}
    fields.code = code
    return error_reply("SYERR " .. json_encode(fields))
end

-- CHECKED READS. A Redis script is not rolled back when a command fails half-way, so a
-- key of the wrong type must be found before the first write, never by the write itself
-- (a WRONGTYPE error after INCR version would leave half a change behind). Pass 1 reads
-- through read(), which turns WRONGTYPE into a typed abort; keys pass 2 writes without
-- pass 1 having read them are checked with want_type(). abort() unwinds to run_checked(),
-- which answers SYERR {"code":"wrong_type","key":...,"type":...,"want":...}.
local ABORT = {}   -- marks an error raised by abort()

local function abort(code, fields)
    error({[ABORT] = true, code = code, fields = fields or {}}, 0)
end

local function want_type(key, want)
    local t = call("TYPE", key)
    t = type(t) == "table" and t.ok or t
    if t ~= "none" and t ~= want then
        abort("wrong_type", {key = key, type = t, want = want})
    end
end

-- redis.call(cmd, key, ...) for a key that must be of type `want` (or absent).
local function read(want, cmd, key, ...)
    local r = pcall_redis(cmd, key, ...)
    if type(r) == "table" and r.err then
        want_type(key, want)
        error(r.err, 0)   -- not a type problem: Redis's own error
    end
    return r
end

-- Runs fn(...) and turns an abort() into its SYERR reply; other errors propagate.
local function run_checked(fn, ...)
    local ok, res = pcall(fn, ...)
    if ok then
        return res
    end
    if type(res) == "table" and res[ABORT] then
        return fail(res.code, res.fields)
    end
    error(res, 0)
end

-- DIGEST. h(kind, id, doc) = the first 13 hex digits (52 bits) of
-- sha1(kind .. ":" .. id .. "\n" .. doc), doc being the stored bytes (with "version").
-- sy_apply records h of every document it writes in <base>hashes (field "<kind>:<id>", 13
-- hex digits) and keeps <base>digest = the sum of the recorded hashes, modulo 2^52, as 13
-- lowercase hex digits: a change subtracts the RECORDED hash of the document it replaces
-- (never a hash of what is stored now, which someone may have changed by hand) and adds
-- the new one's. The edges keep the same sum over what they hold
-- (lua/switchyard/shm/digest.lua), so equal digests mean the edge holds what sy_apply
-- wrote; a document edited behind sy_apply's back shows as its stored bytes not hashing to
-- the recorded value (sy_check, the edges' full reload), and sy_digest adopts such edits.
-- All arithmetic stays below 2^53, exact in Lua's doubles.
local DIGEST_MOD = 2 ^ 52
local DIGEST_SPLIT = 2 ^ 28
local HSET_CHUNK = 500     -- fields per HSET when hashes are written in bulk

local function digest_h(kind, id, doc)
    return tonumber(sha1hex(kind .. ":" .. id .. "\n" .. doc):sub(1, 13), 16)
end

local function digest_hex(d)
    return str_format("%06x%07x", math_floor(d / DIGEST_SPLIT), d % DIGEST_SPLIT)
end

-- 13 hex digits -> number, nil for anything else
local function parse_hex13(v)
    if type(v) ~= "string" or #v ~= 13 or v:find("[^0-9a-f]") then
        return nil
    end
    return tonumber(v, 16)
end

-- What the hashes would be if sy_apply had written every stored document as it is now:
-- field -> 13 hex digits for every id in the index sets whose document exists, and their
-- sum. O(objects): an upgrade's first write (no hashes yet), sy_digest and sy_reseed.
local function hashes_of_documents(schema)
    local map, d = {}, 0
    for _, kind in ipairs(KINDS) do
        for _, id in ipairs(read("set", "SMEMBERS", schema.index[kind])) do
            local doc = read("string", "GET", schema.object(kind, id))
            if doc then
                local h = digest_h(kind, id, doc)
                map[kind .. ":" .. id] = digest_hex(h)
                d = (d + h) % DIGEST_MOD
            end
        end
    end
    return map, d
end

-- The sum of the recorded hashes (the digest from scratch when its key is missing).
local function recorded_sum(schema)
    local d = 0
    for _, hex in ipairs(read("hash", "HVALS", schema.hashes)) do
        d = (d + (parse_hex13(hex) or 0)) % DIGEST_MOD
    end
    return d
end

-- Replaces <base>hashes with map (field -> hex).
local function write_hashes(schema, map)
    call("DEL", schema.hashes)
    local args = {}
    for field, hex in pairs(map) do
        args[#args + 1] = field
        args[#args + 1] = hex
        if #args >= 2 * HSET_CHUNK then
            call("HSET", schema.hashes, unpack(args))
            args = {}
        end
    end
    if #args > 0 then
        call("HSET", schema.hashes, unpack(args))
    end
end

-- The keys of one call, all derived from the version key (one hash tag, one slot).
local schemas = {}   -- version key -> schema (one per group; built once per library load)

local function build_schema(version_key)
    local suffix = "version"
    if #version_key <= #suffix or version_key:sub(-#suffix) ~= suffix then
        return nil
    end
    local base = version_key:sub(1, #version_key - #suffix)
    local schema = {
        base = base,
        version = version_key,
        routes = base .. "routes",
        upstreams = base .. "upstreams",
        uses = base .. "uses",
        changes = base .. "changes",
        events = base .. "events",
        digest = base .. "digest",
        hashes = base .. "hashes",
        owners = base .. "owners",
        certificates = base .. "certificates",
        streams = base .. "streams",
        epoch = base .. "epoch",
        adopt = base .. "adopt",
        edges = base .. "edges",
        history = base .. "history",
        history_bytes = base .. "history_bytes",
        object = function(kind, id) return base .. kind .. ":" .. id end,
        used_by = function(name) return base .. "used_by:" .. name end,
        edge = function(id) return base .. "edge:" .. id end,
    }
    -- kind -> its index set; also the list of kinds sy_apply accepts
    schema.index = {route = schema.routes, upstream = schema.upstreams,
                    certificate = schema.certificates, stream = schema.streams}
    return schema
end

local SCHEMAS_MAX = 64   -- distinct version keys remembered (a bound, not a limit on groups)
local schema_count = 0

local function schema_for(version_key)
    local schema = schemas[version_key]
    if schema then
        return schema
    end
    schema = build_schema(version_key)
    if schema and schema_count < SCHEMAS_MAX then
        schemas[version_key] = schema
        schema_count = schema_count + 1
    end
    return schema
end

-- A Function of the library: binds the locals on first use, derives the schema from
-- KEYS[1] (the version key) and runs body(schema, args) under run_checked().
local function library_function(body)
    return function(keys, args)
        if not call then
            bind()
        end
        local schema = schema_for(keys[1] or "")
        if not schema then
            return fail("bad_request", {message = "KEYS[1] must be the version key"})
        end
        return run_checked(body, schema, args)
    end
end

-- The stored document is '{"version":N,' .. rest. Returns N and rest, or nil for a
-- document that was not written by this library (someone typed it into redis-cli).
local function split_stored(stored)
    local v, rest_at = stored:match('^{"version":(%d+),()')
    if not v then
        return nil
    end
    return tonumber(v), stored:sub(rest_at)
end

-- OWNERS. <base>owners (hash) maps "<kind>:<id>" to the writer that owns the object, e.g.
-- "k8s/switchyard" for the Kubernetes source of ingress class switchyard. sy_apply's
-- "owner" option names the writer ("" or absent: none, the admin API). For every operation
-- on an object that exists, the owner recorded there (absent = none) must be the writer,
-- else the whole call fails before any write (SYERR owned); a put by an owning writer
-- records it, a delete removes it. Documents may carry "owner" and "source" members for
-- humans; the hash decides.

-- The "source" member of a stored document (provenance for humans: "k8s:default/bbs"), or
-- nil. Only read to explain an "owned" refusal.
local function source_of(stored)
    if not stored then
        return nil
    end
    local ok, doc = pcall(json_decode, stored)
    if ok and type(doc) == "table" and type(doc.source) == "string" then
        return doc.source
    end
    return nil
end

local function split_refs(s)
    local out = {}
    if s == nil or s == "" then
        return out
    end
    for name in s:gmatch("[^,]+") do
        out[#out + 1] = name
    end
    return out
end

-- EPOCH. <base>epoch names one configuration history (32 hex digits). It is created with
-- the first write into an empty Redis (or the first write after an upgrade from a library
-- without epochs), changed only by sy_reseed, and remembered by every edge (in its shared
-- dict and its snapshot) and by the controller. After Redis lost its data (FLUSHDB, a
-- restart without persistence) the key is gone: a writer that passes the epoch it knows
-- gets no_epoch instead of starting a new history at version 1, and an edge that holds a
-- configuration does not follow a history it does not know (redis/README.md, "When Redis
-- lost its data").
local LIVE_MS = 5000   -- an edge whose heartbeat is older than this is not live

local function redis_now_ms()
    local t = call("TIME")
    return tonumber(t[1]) * 1000 + math_floor(tonumber(t[2]) / 1000)
end

-- A new epoch: 32 hex digits from Redis's clock and the caller's bytes.
local function new_epoch(schema, salt)
    local t = call("TIME")
    return sha1hex(schema.base .. t[1] .. "." .. t[2] .. "\n" .. (salt or "")):sub(1, 32)
end

-- The registered edges (heartbeat within `window_ms` of Redis's clock; nil: all of them)
-- as {id, applied (number), epoch ("" for none)}. Read leniently: edges write these keys,
-- and a damaged one must not block configuration writes.
local function registered_edges(schema, window_ms, now_ms)
    local low = window_ms and ((now_ms or redis_now_ms()) - window_ms) or "-inf"
    local ids = pcall_redis("ZRANGEBYSCORE", schema.edges, low, "+inf")
    local out = {}
    if type(ids) ~= "table" or ids.err then
        return out
    end
    for _, id in ipairs(ids) do
        local f = pcall_redis("HMGET", schema.edge(id), "applied_version", "epoch")
        if type(f) == "table" and not f.err and f[1] then
            out[#out + 1] = {id = id, applied = tonumber(f[1]) or 0,
                             epoch = type(f[2]) == "string" and f[2] or ""}
        end
    end
    return out
end

local function edge_json(edge)
    return {id = edge.id, applied_version = edge.applied,
            epoch = edge.epoch ~= "" and edge.epoch or json_null}
end

-- Would this live edge refuse to follow Redis (epoch `epoch`, adopt key `adopt`, version
-- `version`)? The edges' own rule (lua/switchyard/sync/plan.lua): another epoch is followed
-- only when it was re-seeded (adopt = epoch); a version below the applied one never.
local function edge_conflicts(edge, epoch, adopt, version)
    if edge.epoch ~= "" and edge.epoch ~= epoch then
        return adopt ~= epoch
    end
    return edge.applied > version
end

-- WRITES, batched. Pass 2 collects the arguments of its commands by (command, key) and
-- sends each with as few calls as possible (one MSET of many documents, one SADD per
-- index, one HSET of many hashes): a Redis script pays per call more than per argument.
-- Removals go out before additions, which is all the order one batch needs: an object
-- appears once in it, and a route that stays in a used_by set is removed, then added.
local REMOVE, ADD = 1, 2
local WRITE_CHUNK = 500   -- arguments per call

local function new_writes()
    return {[REMOVE] = {}, [ADD] = {}, by = {}}
end

-- key nil: a command over keys (DEL k...) or key-value pairs (MSET k v ...)
local function add_write(w, phase, cmd, key, a, b)
    local id = phase .. cmd .. "\0" .. (key or "")
    local entry = w.by[id]
    if not entry then
        entry = {cmd = cmd, key = key}
        w.by[id] = entry
        local list = w[phase]
        list[#list + 1] = entry
    end
    entry[#entry + 1] = a
    if b ~= nil then
        entry[#entry + 1] = b
    end
end

local function flush_writes(w)
    for _, phase in ipairs({REMOVE, ADD}) do
        for _, entry in ipairs(w[phase]) do
            for i = 1, #entry, WRITE_CHUNK do
                local last = math_min(i + WRITE_CHUNK - 1, #entry)
                if entry.key then
                    call(entry.cmd, entry.key, unpack(entry, i, last))
                else
                    call(entry.cmd, unpack(entry, i, last))
                end
            end
        end
    end
end

-- HISTORY (see the header): the retention "<count>:<bytes>" of the keep option.
local function history_limits(keep)
    local c, b = (keep or ""):match("^(%d+):(%d+)$")
    if not c then
        return HISTORY_MAX_CHANGES, HISTORY_MAX_BYTES
    end
    return math_max(1, tonumber(c)), math_max(1, tonumber(b))
end

-- Appends the history entry of `version` (fields: flat name, value list without "bytes")
-- and drops the oldest entries beyond the retention. The keys' types were checked in
-- pass 1; an id at or below the last entry (the version key reset by hand) is skipped.
local function record_history(schema, version, fields, keep)
    local size = 0
    for i = 2, #fields, 2 do
        size = size + #tostring(fields[i])
    end
    local added = pcall_redis("XADD", schema.history, version .. "-0", "bytes", size,
                              unpack(fields))
    if type(added) == "table" and added.err then
        redis.log(redis.LOG_WARNING, "switchyard: history entry " .. version
                  .. " not recorded: " .. added.err)
        return
    end
    local max_n, max_b = history_limits(keep)
    local n = call("XLEN", schema.history)
    local total
    if n == 1 then
        -- the first entry (or the stream was deleted by hand): the counter starts over
        total = size
        call("SET", schema.history_bytes, size)
    else
        total = pcall_redis("INCRBY", schema.history_bytes, size)
        if type(total) ~= "number" then
            -- not an integer (typed by hand): the count starts over at this entry; the byte
            -- bound is loose until the entries before it are trimmed by count
            redis.log(redis.LOG_WARNING, "switchyard: " .. schema.history_bytes
                      .. " was not an integer; reset")
            call("SET", schema.history_bytes, size)   -- SET replaces a key of any type
            total = size
        end
    end
    local minid
    local pages = 0
    -- Read only what goes: at the bound (the steady state of a busy history) one entry per
    -- change. A page of 100 entries with their documents cost ~230 us in Redis per write,
    -- more than the rest of sy_apply. Pages grow when the byte bound drops more.
    local want = math_max(n - max_n, 1)
    while (n > max_n or total > max_b) and n > 1 and pages < HISTORY_TRIM_PAGE do
        pages = pages + 1
        local page = call("XRANGE", schema.history, minid or "-", "+", "COUNT",
                          math_min(n - 1, want, HISTORY_TRIM_PAGE))
        want = want * 4
        local dropped = false
        for _, e in ipairs(page) do
            if not ((n > max_n or total > max_b) and n > 1) then
                break
            end
            local f = e[2]
            total = total - ((f[1] == "bytes" and tonumber(f[2])) or 0)
            n = n - 1
            minid = (tonumber(e[1]:match("^(%d+)-")) + 1) .. "-0"
            dropped = true
        end
        if not dropped then
            break
        end
    end
    if minid then
        call("XTRIM", schema.history, "MINID", minid)
        call("SET", schema.history_bytes, n == 1 and size or math_max(total, 0))
    end
end

-- The "owner" member of a document (a restored one names its owner), or nil.
local function owner_of(doc)
    local ok, obj = pcall(json_decode, doc)
    if ok and type(obj) == "table" and type(obj.owner) == "string" and obj.owner ~= "" then
        return obj.owner
    end
    return nil
end

-- The fields of a stream document sy_apply checks (upstream, listen, protocol), or nil when
-- it has none of them (not JSON, or written by hand).
local function stream_fields(raw)
    local ok, d = pcall(json_decode, type(raw) == "string" and raw or "")
    if ok and type(d) == "table" and type(d.upstream) == "string"
        and type(d.listen) == "number" then
        return {upstream = d.upstream, listen = d.listen,
                protocol = type(d.protocol) == "string" and d.protocol or "tcp"}
    end
    return nil
end

-- The report option's reply element (see the header): per operation, the object's stored
-- version after the call and whether the call created it.
local function op_report(ops, version)
    local out = {}
    for _, op in ipairs(ops) do
        local v, created = 0, 0
        if op.op ~= "del" then
            if op.unchanged then
                v = op.stored and split_stored(op.stored) or 0
            elseif op.op == "restore" then
                v = split_stored(op.doc) or 0
            else
                v = version
            end
            created = op.stored == nil and 1 or 0
        end
        out[#out + 1] = v
        out[#out + 1] = created
    end
    return out
end

-- Pass 1 and pass 2 of sy_apply (see the header): the operations are args[first..],
-- opts the leading options; run under run_checked().
local function apply_batch(schema, args, first, opts)
    -- Pass 1: check every operation against the state the batch would produce, and every
    -- key pass 2 will write against the type it needs. Nothing is written here.
    -- one MGET for the three strings every write reads (a script pays per call, ~10k
    -- instructions each); MGET answers nil for a key of another type, so a nil is checked
    local strings = call("MGET", schema.version, schema.epoch, schema.digest)
    local current = strings[1] or nil
    if not current then
        want_type(schema.version, "string")
    end
    if not strings[2] then
        want_type(schema.epoch, "string")
    end
    if not strings[3] then
        want_type(schema.digest, "string")
    end
    local current_version = tonumber(current or "0")
    if not current_version or current_version ~= math_floor(current_version) then
        abort("wrong_type", {key = schema.version, type = "string",
                             want = "string (an integer)"})
    end
    local epoch = strings[2] or nil
    if opts.epoch and opts.epoch ~= "" then
        -- the writer knows a history: Redis must still hold it
        if not epoch then
            abort("no_epoch", {expected = opts.epoch, version = current_version})
        elseif epoch ~= opts.epoch then
            abort("epoch_mismatch", {expected = opts.epoch, epoch = epoch,
                                     adopt = read("string", "GET", schema.adopt) or json_null,
                                     version = current_version})
        end
    end

    local if_version = opts.if_version
    if if_version and if_version ~= "" and tonumber(if_version) ~= current_version then
        abort("precondition_failed", {expected = tonumber(if_version) or if_version,
                                      version = current_version})
    end
    local force = opts.force == "1"

    local ops = {}
    local seen = {}
    local exists = {route = {}, upstream = {}, certificate = {}, stream = {}}   -- overlay
    local users = {}                              -- upstream -> {route id -> true/false} overlay
    local new_uses = {}                           -- route id -> refs list after the batch
    local used_by_checked = {}                    -- upstream -> its used_by set's type checked
    -- The keys pass 2 writes are type-checked by the typed reads below, before any write:
    -- the index set of every kind in the batch (SMISMEMBER), owners (HMGET), uses (HMGET,
    -- for routes), hashes (HMGET of the changed fields), the change stream (XREVRANGE);
    -- used_by sets by want_type. The history is written leniently (record_history).
    local writer = opts.owner or ""

    local function index_key(kind)
        return schema.index[kind]
    end
    -- membership of the index sets as stored (read in bulk below; memoized)
    local in_index = {route = {}, upstream = {}, certificate = {}, stream = {}}
    local function indexed(kind, id)
        local m = in_index[kind][id]
        if m == nil then
            m = read("set", "SISMEMBER", index_key(kind), id) == 1
            in_index[kind][id] = m
        end
        return m
    end
    local function object_exists(kind, id)
        local o = exists[kind][id]
        if o ~= nil then
            return o
        end
        return indexed(kind, id)
    end
    local function current_uses(op)
        return split_refs(op.stored_uses)   -- pass 2 leaves the used_by sets of these
    end
    -- pass 2 SADDs and SREMs the used_by sets of every upstream a route op names, old or new
    local function check_used_by(name)
        if not used_by_checked[name] then
            used_by_checked[name] = true
            want_type(schema.used_by(name), "set")
        end
    end
    local function note_user(upstream, route_id, using)
        check_used_by(upstream)
        users[upstream] = users[upstream] or {}
        users[upstream][route_id] = using
    end
    -- STREAMS: what each stored stream names (upstream, listen, protocol), read once when
    -- the batch needs it (O(streams): a few hundred at most); the batch's stream puts and
    -- deletes overlay it (id -> fields, or false)
    local stream_overlay = {}
    local stored_streams
    local function streams_after()
        if not stored_streams then
            stored_streams = {}
            local ids = read("set", "SMEMBERS", schema.streams)
            for i = 1, #ids, WRITE_CHUNK do
                local last = math_min(i + WRITE_CHUNK - 1, #ids)
                local mkeys = {}
                for j = i, last do
                    mkeys[#mkeys + 1] = schema.object("stream", ids[j])
                end
                local docs = call("MGET", unpack(mkeys))
                for j = i, last do
                    stored_streams[ids[j]] = stream_fields(docs[j - i + 1])
                end
            end
        end
        local out = {}
        for sid, f in pairs(stored_streams) do
            out[sid] = f
        end
        for sid, f in pairs(stream_overlay) do
            out[sid] = f or nil
        end
        return out
    end
    -- the streams naming upstream `name` (sorted)
    local function stream_users(name)
        local out = {}
        for sid, f in pairs(streams_after()) do
            if f.upstream == name then
                out[#out + 1] = sid
            end
        end
        tbl_sort(out)
        return out
    end

    -- the operations' shape first, then what they read, in bulk: a script pays per call
    local shaped = {}
    for i = first, #args, 6 do
        local op = {op = args[i], kind = args[i + 1], id = args[i + 2], doc = args[i + 3],
                    refs = split_refs(args[i + 4]), raw_refs = args[i + 4], expect = args[i + 5]}
        if op.op ~= "put" and op.op ~= "del" and op.op ~= "restore" then
            return fail("bad_request", {message = "unknown op", op = op.op})
        end
        if not schema.index[op.kind] then
            return fail("bad_request", {message = "unknown kind", kind = op.kind})
        end
        if op.id == "" then
            return fail("bad_request", {message = "empty id", kind = op.kind})
        end
        op.field = op.kind .. ":" .. op.id
        if seen[op.field] then
            return fail("bad_request", {message = "object appears twice in one batch",
                                        kind = op.kind, id = op.id})
        end
        seen[op.field] = true
        shaped[#shaped + 1] = op
    end
    for i = 1, #shaped, WRITE_CHUNK do
        local last = math_min(i + WRITE_CHUNK - 1, #shaped)
        local fields, routes, ids = {}, {}, {route = {}, upstream = {}, certificate = {},
                                             stream = {}}
        for j = i, last do
            local op = shaped[j]
            fields[#fields + 1] = op.field
            if op.kind == "route" then
                routes[#routes + 1] = op
            end
            local list = ids[op.kind]
            list[#list + 1] = op.id
        end
        local owners = read("hash", "HMGET", schema.owners, unpack(fields))
        for j = i, last do
            shaped[j].owner = owners[j - i + 1] or nil
        end
        if #routes > 0 then
            local route_ids = {}
            for j, op in ipairs(routes) do
                route_ids[j] = op.id
            end
            local uses = read("hash", "HMGET", schema.uses, unpack(route_ids))
            for j, op in ipairs(routes) do
                op.stored_uses = uses[j] or ""
            end
        end
        for kind, list in pairs(ids) do
            if #list > 0 then
                local flags = read("set", "SMISMEMBER", index_key(kind), unpack(list))
                for j, id in ipairs(list) do
                    in_index[kind][id] = flags[j] == 1
                end
            end
        end
    end

    for _, op in ipairs(shaped) do
        local seen_key = op.field
        op.key = schema.object(op.kind, op.id)
        op.stored = read("string", "GET", op.key)
        if op.stored == false then
            op.stored = nil
        end
        -- OWNERS: an existing object is changed or deleted only by the writer that owns it
        -- (an unowned one only by a writer without owner); anyone creates a new one
        if not force and (op.owner or "") ~= writer and (op.stored or indexed(op.kind, op.id)) then
            abort("owned", {key = seen_key, kind = op.kind, id = op.id,
                            owner = op.owner or json_null,
                            writer = writer ~= "" and writer or json_null,
                            source = source_of(op.stored) or json_null})
        end

        if op.expect ~= "" then
            local actual = 0
            if op.stored then
                actual = split_stored(op.stored) or -1
            end
            if tostring(actual) ~= op.expect then
                return fail("version_mismatch", {kind = op.kind, id = op.id,
                                                 expected = tonumber(op.expect), actual = actual})
            end
        end

        if op.op == "put" or op.op == "restore" then
            -- the shape only: parsing every document cost a third of the call, the
            -- controller has validated it, and an edge skips a document it cannot decode
            if op.doc:sub(1, 1) ~= "{" or op.doc:sub(-1) ~= "}" or #op.doc < 3 then
                return fail("bad_request", {message = "doc must be a non-empty JSON object",
                                            kind = op.kind, id = op.id})
            end
            if op.op == "restore" and not split_stored(op.doc) then
                return fail("bad_request", {message = "a restored doc starts with its version",
                                            kind = op.kind, id = op.id})
            end
            if op.kind == "route" then
                for _, name in ipairs(op.refs) do
                    if not object_exists("upstream", name) then
                        return fail("missing_upstream",
                                    {kind = "route", id = op.id, upstream = name})
                    end
                end
                for _, old in ipairs(current_uses(op)) do
                    note_user(old, op.id, false)
                end
                for _, name in ipairs(op.refs) do
                    note_user(name, op.id, true)
                end
                new_uses[op.id] = op.refs
            elseif op.kind == "stream" then
                local f = stream_fields(op.doc)
                if not f then
                    return fail("bad_request",
                                {message = "a stream doc needs listen (a number) and upstream",
                                 kind = "stream", id = op.id})
                end
                if not object_exists("upstream", f.upstream) then
                    return fail("missing_upstream",
                                {kind = "stream", id = op.id, upstream = f.upstream})
                end
                stream_overlay[op.id] = f
            end
            -- unchanged: the same document, already in its index, with the same uses
            local _, rest = nil, nil
            if op.stored then
                _, rest = split_stored(op.stored)
            end
            if op.op == "restore" then
                op.unchanged = op.stored == op.doc and indexed(op.kind, op.id)
            else
                op.unchanged = rest ~= nil and rest == op.doc:sub(2) and indexed(op.kind, op.id)
            end
            op.unchanged = op.unchanged
                and (op.kind ~= "route" or op.stored_uses == op.raw_refs)
            exists[op.kind][op.id] = true
        else
            if not object_exists(op.kind, op.id) then
                return fail("not_found", {kind = op.kind, id = op.id})
            end
            if op.kind == "route" then
                for _, old in ipairs(current_uses(op)) do
                    note_user(old, op.id, false)
                end
                new_uses[op.id] = {}
            elseif op.kind == "stream" then
                stream_overlay[op.id] = false
            elseif op.kind == "upstream" then
                local still = {}
                local overlay = users[op.id] or {}
                for _, rid in ipairs(read("set", "SMEMBERS", schema.used_by(op.id))) do
                    if overlay[rid] ~= false then
                        still[rid] = true
                    end
                end
                for rid, using in pairs(overlay) do
                    if using then
                        still[rid] = true
                    end
                end
                local names = {}
                for rid in pairs(still) do
                    names[#names + 1] = rid
                end
                if #names > 0 then
                    -- (streams are checked after the batch, below; named here too)
                    local streams = stream_users(op.id)
                    tbl_sort(names)
                    tbl_sort(streams)
                    return fail("in_use", {kind = "upstream", id = op.id, routes = names,
                                           streams = streams})
                end
            end
            exists[op.kind][op.id] = false
        end
        ops[#ops + 1] = op
    end

    -- no stream may name an upstream the batch deletes (after the batch: the order of the
    -- batch's stream and upstream operations does not matter)
    for _, op in ipairs(ops) do
        if op.kind == "upstream" and op.op == "del" then
            local streams = stream_users(op.id)
            if #streams > 0 then
                return fail("in_use", {kind = "upstream", id = op.id, routes = {},
                                       streams = streams})
            end
        end
    end
    -- one stream per listen port and protocol, after the batch: a stream the batch puts must
    -- not share one with another (stored or put)
    local stream_puts = false
    for _, f in pairs(stream_overlay) do
        stream_puts = stream_puts or f ~= false
    end
    if stream_puts then
        local holders = {}
        for sid, f in pairs(streams_after()) do
            local port = f.protocol .. "/" .. tostring(f.listen)
            holders[port] = holders[port] or {}
            holders[port][#holders[port] + 1] = sid
        end
        for _, op in ipairs(ops) do
            local f = op.kind == "stream" and stream_overlay[op.id]
            if f then
                local list = holders[f.protocol .. "/" .. tostring(f.listen)]
                tbl_sort(list)
                for _, other in ipairs(list) do
                    if other ~= op.id then
                        return fail("port_conflict", {kind = "stream", id = op.id, stream = other,
                                                      listen = f.listen, protocol = f.protocol})
                    end
                end
            end
        end
    end

    local changed = {}
    for _, op in ipairs(ops) do
        if not op.unchanged then
            changed[#changed + 1] = op
        end
    end
    if #changed == 0 then
        if opts.report == "1" then
            return {current_version, 0, epoch or "", op_report(ops, current_version)}
        end
        return {current_version, 0, epoch or ""}
    end
    -- the stream's last entry: a version key lost or reset by hand continues after it
    local last = read("stream", "XREVRANGE", schema.changes, "+", "-", "COUNT", 1)[1]
    local reached = math_max(current_version, last and tonumber(last[1]:match("^(%d+)-")) or 0)
    -- the history this change continues, and the live edges that would not follow it
    local create_epoch
    local now_ms = redis_now_ms()
    if epoch then
        local adopt   -- read only when a live edge holds another epoch (after a re-seed)
        local conflicts = {}
        for _, edge in ipairs(registered_edges(schema, LIVE_MS, now_ms)) do
            if edge.epoch ~= "" and edge.epoch ~= epoch and adopt == nil then
                adopt = read("string", "GET", schema.adopt) or false
            end
            if edge_conflicts(edge, epoch, adopt or nil, reached) then
                conflicts[#conflicts + 1] = edge_json(edge)
            end
        end
        if #conflicts > 0 then
            abort("edge_conflict", {edges = conflicts, epoch = epoch, version = reached})
        end
    else
        -- the first write of a history: into an empty Redis, or into data written by a
        -- library without epochs. Not while live edges hold a configuration Redis lacks.
        local fresh = not current
        for _, kind in ipairs(KINDS) do
            fresh = fresh and read("set", "SCARD", schema.index[kind]) == 0
        end
        local lost = {}
        for _, edge in ipairs(registered_edges(schema, LIVE_MS, now_ms)) do
            if (fresh and edge.applied > 0)
                or (not fresh and (edge.epoch ~= "" or edge.applied > reached)) then
                lost[#lost + 1] = edge_json(edge)
            end
        end
        if #lost > 0 then
            abort("data_lost", {edges = lost, version = current_version})
        end
        create_epoch = new_epoch(schema, #args .. ":" .. args[first + 2])
    end
    -- the recorded hashes of the documents this batch replaces or deletes, and the digest
    -- before it. Documents without hashes (written by a library from before them, or the
    -- key deleted by hand): recorded now from what is stored, once.
    local digest = parse_hex13(strings[3])
    local rebuild
    if call("EXISTS", schema.hashes) == 0 then
        for _, kind in ipairs(KINDS) do
            if not rebuild and call("SCARD", schema.index[kind]) > 0 then
                rebuild, digest = hashes_of_documents(schema)
            end
        end
    end
    if not digest then
        digest = recorded_sum(schema)
    end
    if rebuild then
        for _, op in ipairs(changed) do
            op.recorded = parse_hex13(rebuild[op.kind .. ":" .. op.id])
        end
    else
        for i = 1, #changed, HSET_CHUNK do
            local fields = {}
            for j = i, math_min(i + HSET_CHUNK - 1, #changed) do
                fields[#fields + 1] = changed[j].kind .. ":" .. changed[j].id
            end
            local recorded = read("hash", "HMGET", schema.hashes, unpack(fields))
            for j = 1, #fields do
                changed[i + j - 1].recorded = parse_hex13(recorded[j])
            end
        end
    end

    if opts.dry == "1" then
        return {current_version, #changed, epoch or "", "dry"}
    end

    -- Pass 2: write. The version first, so every document carries it.
    if create_epoch then
        call("SET", schema.epoch, create_epoch)
        epoch = create_epoch
    end
    local version = call("INCR", schema.version)
    if last then
        local last_version = tonumber(last[1]:match("^(%d+)-"))
        if last_version and last_version >= version then
            -- the version key was lost or reset by hand: move past the stream
            version = last_version + 1
            call("SET", schema.version, version)
        end
    end

    if rebuild then
        write_hashes(schema, rebuild)
    end
    local w = new_writes()
    for _, op in ipairs(changed) do
        -- out goes what sy_apply recorded for the old document, whatever is stored now
        local field = op.kind .. ":" .. op.id
        if op.recorded then
            digest = (digest - op.recorded) % DIGEST_MOD
        end
        if op.op == "put" or op.op == "restore" then
            local stored = op.doc
            if op.op == "put" then
                stored = '{"version":' .. version .. "," .. op.doc:sub(2)
            end
            op.after = stored
            local h = digest_h(op.kind, op.id, stored)
            add_write(w, ADD, "MSET", nil, op.key, stored)
            add_write(w, ADD, "SADD", index_key(op.kind), op.id)
            add_write(w, ADD, "HSET", schema.hashes, field, digest_hex(h))
            digest = (digest + h) % DIGEST_MOD
            if op.op == "restore" then
                -- the owner the document names (the Kubernetes source writes it); else
                -- the object keeps the owner it has
                local named = owner_of(op.doc)
                if named and op.owner ~= named then
                    add_write(w, ADD, "HSET", schema.owners, field, named)
                end
            elseif writer ~= "" and op.owner ~= writer then
                add_write(w, ADD, "HSET", schema.owners, field, writer)
            elseif writer == "" and op.owner then
                add_write(w, REMOVE, "HDEL", schema.owners, field)   -- left by a hand delete
            end
        else
            add_write(w, REMOVE, "DEL", nil, op.key)
            add_write(w, REMOVE, "SREM", index_key(op.kind), op.id)
            add_write(w, REMOVE, "HDEL", schema.hashes, field)
            if op.owner then
                add_write(w, REMOVE, "HDEL", schema.owners, field)
            end
            if op.kind == "upstream" then
                add_write(w, REMOVE, "DEL", nil, schema.used_by(op.id))
            end
        end
        if op.kind == "route" then
            for _, old in ipairs(split_refs(op.stored_uses)) do
                add_write(w, REMOVE, "SREM", schema.used_by(old), op.id)
            end
            local refs = new_uses[op.id]
            if refs and #refs > 0 then
                add_write(w, ADD, "HSET", schema.uses, op.id, tbl_concat(refs, ","))
                for _, name in ipairs(refs) do
                    add_write(w, ADD, "SADD", schema.used_by(name), op.id)
                end
            else
                add_write(w, REMOVE, "HDEL", schema.uses, op.id)
            end
        end
    end
    flush_writes(w)

    -- ts: Redis's clock (ms) at the write; an edge's propagation lag is its apply time
    -- minus this (the entry id is the version, not a time)
    local ts = now_ms
    for n, op in ipairs(changed) do
        call("XADD", schema.changes, "MAXLEN", "~", STREAM_MAXLEN, version .. "-" .. (n - 1),
             "version", version, "kind", op.kind, "id", op.id,
             "op", op.op == "del" and "del" or "put", "ts", ts)
    end
    call("SET", schema.digest, digest_hex(digest))
    local entry = {"who", opts.who or (writer ~= "" and writer or ""), "note", opts.note or "",
                   "ts", ts, "digest", digest_hex(digest)}
    for _, op in ipairs(changed) do
        entry[#entry + 1] = "o"
        entry[#entry + 1] = op.field
        entry[#entry + 1] = "b"
        entry[#entry + 1] = op.stored or ""
        entry[#entry + 1] = "a"
        entry[#entry + 1] = op.after or ""
    end
    record_history(schema, version, entry, opts.keep)
    -- the new version, then for a small batch the objects it changed: a subscriber may
    -- fetch them in the same round trip as the stream page (a hint; the stream decides)
    local message = tostring(version)
    if #changed <= HINT_KEYS then
        local parts = {message}
        for _, op in ipairs(changed) do
            parts[#parts + 1] = op.kind .. ":" .. op.id
        end
        message = tbl_concat(parts, " ")
    end
    call("PUBLISH", schema.events, message)
    if opts.report == "1" then
        return {version, #changed, epoch, op_report(ops, version)}
    end
    return {version, #changed, epoch}
end

-- sy_apply's arguments: the leading options, then the operations (apply_batch).
local function apply(schema, args)
    -- leading options: "epoch" <id>, "owner" <name>
    local opts, first = {}, 1
    while APPLY_OPTIONS[args[first]] do
        opts[args[first]] = args[first + 1] or ""
        first = first + 2
    end
    local n = #args - first + 1
    if n <= 0 or n % 6 ~= 0 then
        return fail("bad_request",
                    {message = "arguments: [epoch <id>] [owner <name>], then groups of 6: "
                               .. "op kind id doc refs expect"})
    end
    if n / 6 > MAX_OPS then
        return fail("too_large", {max = MAX_OPS, ops = n / 6,
                                  message = "at most " .. MAX_OPS .. " operations per call"})
    end
    return apply_batch(schema, args, first, opts)
end

redis.register_function("sy_apply", library_function(apply))

-- Redis's version as a number (a missing key is 0); wrong_type for anything else.
local function stored_version(schema)
    local v = tonumber(read("string", "GET", schema.version) or "0")
    if not v or v ~= math_floor(v) then
        abort("wrong_type", {key = schema.version, type = "string", want = "string (an integer)"})
    end
    return v
end

-- The version of the change stream's last entry (0: none).
local function stream_version(schema)
    local last = read("stream", "XREVRANGE", schema.changes, "+", "-", "COUNT", 1)[1]
    return last and tonumber(last[1]:match("^(%d+)-")) or 0
end

-- Sets the version to `version`, appends one "resync" entry (edges reload everything) and
-- publishes it.
-- The caller has checked the history keys' types (want_type) before its first write.
local function announce_resync(schema, version, digest, who)
    call("SET", schema.version, version)
    record_history(schema, version, {"who", who, "note", "", "ts", redis_now_ms(),
                                     "digest", digest, "op", "resync"}, nil)
    call("XADD", schema.changes, "MAXLEN", "~", STREAM_MAXLEN, version .. "-0",
         "version", version, "kind", "*", "id", "*", "op", "resync")
    call("PUBLISH", schema.events, tostring(version))
end

-- FCALL sy_digest 1 <base>version
--
--   Adopts documents written behind sy_apply's back (redis-cli SET): records the hash of
--   every indexed document as it is stored now (<base>hashes), recomputes <base>digest
--   from them and, when any recorded hash changed, bumps the version with one "resync"
--   entry and PUBLISH, so every edge reloads what Redis holds. O(objects) (about 1 s for
--   100,000 routes, during which Redis answers nothing else). A call that finds nothing to
--   adopt writes the digest only. Reply: { version, digest, adopted } (adopted: documents
--   whose recorded hash was added, changed or removed).
local function adopt(schema)
    want_type(schema.digest, "string")
    want_type(schema.hashes, "hash")
    want_type(schema.changes, "stream")
    want_type(schema.history, "stream")
    want_type(schema.history_bytes, "string")
    local version = stored_version(schema)
    local map, sum = hashes_of_documents(schema)
    local old = {}
    local flat = read("hash", "HGETALL", schema.hashes)
    for i = 1, #flat, 2 do
        old[flat[i]] = flat[i + 1]
    end
    local adopted = 0
    for field, hex in pairs(map) do
        if old[field] ~= hex then
            adopted = adopted + 1
        end
    end
    for field in pairs(old) do
        if not map[field] then
            adopted = adopted + 1
        end
    end
    local digest = digest_hex(sum)
    if adopted > 0 then
        write_hashes(schema, map)
        version = math_max(version, stream_version(schema)) + 1
        call("SET", schema.digest, digest)
        announce_resync(schema, version, digest, "sy_digest")
    else
        call("SET", schema.digest, digest)
    end
    return {version, digest, adopted}
end

local sy_digest = library_function(adopt)

redis.register_function("sy_digest", sy_digest)

-- FCALL_RO sy_check 1 <base>version  <kind>:<id> [...]
--
--   Read only (no-writes: runs on replicas too). For each object, whether what is stored
--   is what sy_apply recorded: the reply lists, flat, the field and its problem for every
--   one that differs:
--     edited      the stored bytes do not hash to the recorded value (changed by hand)
--     unrecorded  indexed and stored, but no hash recorded (written by hand)
--     missing     listed in its index set, but no document
--     unindexed   a recorded hash, but not in its index set (removed by hand)
--   The controller calls it in chunks of 500 (GET /api/v1/status?check=documents).
local function check(schema, args)
    local out = {}
    for _, field in ipairs(args) do
        local kind, id = field:match("^(%a+):(.+)$")
        local index = kind and schema.index[kind]
        if not index then
            return fail("bad_request", {message = "fields are <kind>:<id>", field = field})
        end
        local doc = read("string", "GET", schema.object(kind, id))
        local recorded = read("hash", "HGET", schema.hashes, field)
        local indexed = read("set", "SISMEMBER", index, id) == 1
        local problem
        if indexed and not doc then
            problem = "missing"
        elseif indexed and not recorded then
            problem = "unrecorded"
        elseif indexed and digest_hex(digest_h(kind, id, doc)) ~= recorded then
            problem = "edited"
        elseif not indexed and recorded then
            problem = "unindexed"
        end
        if problem then
            out[#out + 1] = field
            out[#out + 1] = problem
        end
    end
    return out
end

local sy_check = library_function(check)

redis.register_function({function_name = "sy_check", callback = sy_check,
                         flags = {"no-writes"}})

-- FCALL sy_reseed 1 <base>version  confirm [epoch]
--
--   The operator's explicit step after Redis lost its data or went back to an older state
--   (POST /api/v1/reseed, `switchyard reseed`): what Redis holds now becomes the
--   configuration, restored or empty. confirm must be Redis's epoch now, or "none" when it
--   has none (so a blind retry cannot re-seed twice). Starts a new history: a new epoch
--   (the caller's 32 hex digits, or one made here), <base>adopt = that epoch (edges follow
--   a new epoch only when adopt names it), version = 1 + the highest of Redis's version,
--   the change stream's last entry and every registered edge's applied version (so no edge
--   sees it as going backwards), the hashes and the digest recorded from the stored
--   documents (as sy_digest), one "resync" entry in the stream and PUBLISH: every edge
--   reloads everything.
--   Reply: { version, epoch }. Errors: confirm_mismatch ("epoch": Redis's, or null),
--   bad_request, wrong_type. Nothing is written on error.
local function reseed(schema, args)
    local confirm, wanted = args[1], args[2]
    if type(confirm) ~= "string" or confirm == "" then
        return fail("bad_request", {message = "arguments: confirm [epoch]"})
    end
    if wanted and wanted ~= "" and (#wanted ~= 32 or wanted:find("[^0-9a-f]")) then
        return fail("bad_request", {message = "epoch must be 32 lowercase hex digits"})
    end
    for _, key in ipairs({schema.epoch, schema.adopt, schema.digest}) do
        want_type(key, "string")
    end
    want_type(schema.changes, "stream")
    want_type(schema.hashes, "hash")
    want_type(schema.history, "stream")
    want_type(schema.history_bytes, "string")
    local epoch = read("string", "GET", schema.epoch) or nil
    if confirm ~= (epoch or "none") then
        return fail("confirm_mismatch", {epoch = epoch or json_null, confirm = confirm})
    end
    local version = math_max(stored_version(schema), stream_version(schema))
    for _, edge in ipairs(registered_edges(schema, nil)) do
        version = math_max(version, edge.applied)
    end
    version = version + 1
    local map, sum = hashes_of_documents(schema)
    local new = (wanted and wanted ~= "") and wanted or new_epoch(schema, confirm)
    write_hashes(schema, map)
    call("SET", schema.epoch, new)
    call("SET", schema.adopt, new)
    call("SET", schema.digest, digest_hex(sum))
    announce_resync(schema, version, digest_hex(sum), "sy_reseed")
    return {version, new}
end

local sy_reseed = library_function(reseed)

redis.register_function("sy_reseed", sy_reseed)

-- ---------------------------------------------------------------------------------------
-- Endpoint health, written only by the active prober (`switchyard prober`). See
-- redis/README.md, "Health", for the keys, the message format and how edges catch up.
--
-- FCALL sy_lease 1 <base>prober:lease  id lease_ms heartbeat_ms heartbeat_value
--
--   Acquire (SET NX PX) or renew (compare-and-PEXPIRE) the prober lease for `id`, and
--   while holding it refresh the heartbeat key <base>prober:heartbeat (SET PX). Only the
--   holder renews, so two probers never fight over the key. lease_ms 0 releases: the
--   holder deletes the lease and the heartbeat (clean shutdown; a standby takes over at
--   its next attempt).
--   Reply: {1, "acquired" | "renewed"} while holding; {0, holder, pttl} when another
--   prober holds it; {0, "released" | "not_holder"} for a release.
--
-- FCALL sy_health 1 <base>health_version  prober  op upstream address value  [...]
--
--   op "set"  HSET <base>health:<upstream> <address> <value>; value is the record JSON
--             {"state":"up"|"down"|"unknown","since":ms,"reason":"...","prober":"..."}.
--             A record whose state equals the stored one changes nothing (the stored
--             "since" stays the moment the state began).
--   op "del"  HDEL the address (no longer checked); value "".
--   op "drop" DEL the upstream's whole hash (address "*", value "").
--   Every effective change INCRs <base>health_version once and PUBLISHes
--   "<health_version> <upstream> <address> <state>" on <base>health_events (state
--   "removed" for del and drop), in order. <base>health_upstreams keeps the names of the
--   upstreams that have a hash.
--   Refused with SYERR {"code":"not_leader","holder":...} unless `prober` holds the lease,
--   so a deposed prober cannot write. Reply: {health_version, changed}.
--   Errors (nothing written): not_leader, bad_request.

local function base_of(key, suffix)
    if #key <= #suffix or key:sub(-#suffix) ~= suffix then
        return nil
    end
    return key:sub(1, #key - #suffix)
end

local function sy_lease(keys, args)
    if not call then
        bind()
    end
    local base = base_of(keys[1] or "", "prober:lease")
    if not base then
        return fail("bad_request", {message = "KEYS[1] must be the prober lease key"})
    end
    local lease, heartbeat = keys[1], base .. "prober:heartbeat"
    local id, lease_ms = args[1], tonumber(args[2])
    local heartbeat_ms, heartbeat_value = tonumber(args[3]), args[4]
    if not id or id == "" or not lease_ms or lease_ms < 0 or lease_ms ~= math_floor(lease_ms)
        or (lease_ms > 0 and (not heartbeat_ms or heartbeat_ms <= 0
                              or heartbeat_value == nil)) then
        return fail("bad_request",
                    {message = "arguments: id lease_ms heartbeat_ms heartbeat_value"})
    end
    local holder = call("GET", lease)
    if lease_ms == 0 then
        if holder ~= id then
            return {0, "not_holder"}
        end
        call("DEL", lease, heartbeat)
        return {0, "released"}
    end
    local status
    if holder == id then
        call("PEXPIRE", lease, lease_ms)
        status = "renewed"
    elseif not holder then
        call("SET", lease, id, "NX", "PX", lease_ms)
        status = "acquired"
    else
        return {0, holder, call("PTTL", lease)}
    end
    call("SET", heartbeat, heartbeat_value, "PX", heartbeat_ms)
    return {1, status}
end

local HEALTH_STATES = {up = true, down = true, unknown = true}

local function sy_health(keys, args)
    if not call then
        bind()
    end
    local base = base_of(keys[1] or "", "health_version")
    if not base then
        return fail("bad_request", {message = "KEYS[1] must be the health_version key"})
    end
    local version_key, events = keys[1], base .. "health_events"
    local index = base .. "health_upstreams"
    local prober = args[1]
    if not prober or prober == "" or (#args - 1) % 4 ~= 0 then
        return fail("bad_request", {
            message = "arguments: prober, then groups of 4: op upstream address value"})
    end
    local holder = call("GET", base .. "prober:lease")
    if holder ~= prober then
        return fail("not_leader", {prober = prober, holder = holder or json_null})
    end

    -- Pass 1: check everything, so an error writes nothing.
    local ops = {}
    for i = 2, #args, 4 do
        local op = {op = args[i], upstream = args[i + 1], address = args[i + 2],
                    value = args[i + 3]}
        if op.upstream == "" or op.upstream:find("[%s]") or op.address == ""
            or op.address:find("[%s]") then
            return fail("bad_request",
                        {message = "upstream and address must be non-empty without spaces"})
        end
        if op.op == "set" then
            local ok, record = pcall(json_decode, op.value)
            if not ok or type(record) ~= "table" or not HEALTH_STATES[record.state] then
                return fail("bad_request", {
                    message = "value must be a JSON record with state up, down or unknown",
                    upstream = op.upstream, address = op.address})
            end
            op.state = record.state
        elseif op.op ~= "del" and op.op ~= "drop" then
            return fail("bad_request", {message = "unknown op", op = op.op})
        end
        ops[#ops + 1] = op
    end

    -- Pass 2: write, one version and one message per effective change.
    local changed = 0
    local version
    local function announce(op, state)
        version = call("INCR", version_key)
        call("PUBLISH", events, version .. " " .. op.upstream .. " " .. op.address .. " " .. state)
        changed = changed + 1
    end
    for _, op in ipairs(ops) do
        local key = base .. "health:" .. op.upstream
        if op.op == "set" then
            local stored = call("HGET", key, op.address)
            local same = false
            if stored then
                local ok, record = pcall(json_decode, stored)
                same = ok and type(record) == "table" and record.state == op.state
            end
            if not same then
                call("HSET", key, op.address, op.value)
                call("SADD", index, op.upstream)
                announce(op, op.state)
            end
        elseif op.op == "del" then
            if call("HDEL", key, op.address) == 1 then
                if call("EXISTS", key) == 0 then
                    call("SREM", index, op.upstream)
                end
                announce(op, "removed")
            end
        else
            call("SREM", index, op.upstream)
            if call("DEL", key) == 1 then
                announce(op, "removed")
            end
        end
    end
    return {tonumber(version or call("GET", version_key) or "0"), changed}
end

redis.register_function("sy_lease", sy_lease)
redis.register_function("sy_health", sy_health)

-- MIGRATION of streams (issue 23, docs/stream.md). The first version wrote streams with a
-- function of their own (sy_stream) under the keys sy_apply uses now (<base>stream:<id>,
-- index <base>streams), but with a version (<base>stream_version) and change stream
-- (<base>stream_changes) of their own and no recorded hashes.
--
-- FCALL sy_migrate 1 <base>version
--
--   When either old key exists: records the hash of every stream document that has none,
--   adds them to the digest, deletes the two old keys and, when there were streams, bumps
--   the version with one "resync" entry (every edge reloads once, and holds the streams from
--   then on). Otherwise writes nothing. The controller calls it at start, so an upgrade
--   needs no step by hand. O(streams). Reply: {version, migrated} (migrated: the streams
--   now recorded). Errors (nothing written): wrong_type.
local function migrate(schema)
    local old_version = schema.base .. "stream_version"
    local old_changes = schema.base .. "stream_changes"
    if call("EXISTS", old_version, old_changes) == 0 then
        return {stored_version(schema), 0}
    end
    want_type(schema.digest, "string")
    want_type(schema.hashes, "hash")
    want_type(schema.changes, "stream")
    want_type(schema.history, "stream")
    want_type(schema.history_bytes, "string")
    local version = stored_version(schema)
    local ids = read("set", "SMEMBERS", schema.streams)
    local digest = read("string", "GET", schema.digest) or ""
    local pending = {}
    if call("EXISTS", schema.hashes) == 1 then
        -- (without hashes, the next sy_apply records every document's, streams included)
        local d = parse_hex13(digest) or recorded_sum(schema)
        for _, id in ipairs(ids) do
            local field = "stream:" .. id
            local doc = read("string", "GET", schema.object("stream", id))
            if doc and not read("hash", "HGET", schema.hashes, field) then
                local h = digest_h("stream", id, doc)
                pending[#pending + 1] = field
                pending[#pending + 1] = digest_hex(h)
                d = (d + h) % DIGEST_MOD
            end
        end
        digest = digest_hex(d)
    end
    if #pending > 0 then
        call("HSET", schema.hashes, unpack(pending))
        call("SET", schema.digest, digest)
    end
    call("DEL", old_version, old_changes)
    if #ids > 0 then
        version = math_max(version, stream_version(schema)) + 1
        announce_resync(schema, version, digest, "sy_migrate")
    end
    return {version, #ids}
end

redis.register_function("sy_migrate", library_function(migrate))
