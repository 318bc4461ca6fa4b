#!lua name=switchyard
--
-- Switchyard's write path. Every change to the configuration is one FCALL of sy_apply:
-- it checks the whole batch first, then writes the objects, bumps the version once,
-- appends to the change stream and publishes the new version. Either all of a batch is
-- written or none of it is, and an edge never sees half a change.
--
-- The key schema is documented in redis/README.md (and mirrored in
-- Sources/SwitchyardCore/KeySchema.swift and lua/switchyard/keys.lua).
--
-- FCALL sy_apply 1 <base>version  op kind id doc refs expect  [op kind id doc refs expect ...]
--
--   KEYS[1]  the version key, e.g. "switchyard:{cfg}:version". Every other key is derived
--            from it, so all keys share its hash tag (one cluster slot).
--   op       "put" or "del"
--   kind     "route" or "upstream"
--   id       route id or upstream name
--   doc      put: the object as a JSON object WITHOUT "version" (the controller's encoding);
--            del: ""
--   refs     put route: comma-separated names of the upstreams it uses; otherwise ""
--   expect   "" for no precondition; "0" = the object must not exist; N = the object's
--            stored version must be N (optimistic concurrency for read-modify-write)
--
-- Reply: { version, changed }. A batch that changes nothing (every put identical to what
-- is stored) does not bump the version and replies { current version, 0 }.
--
-- Errors are replies of the form  SYERR {"code":...,"kind":...,"id":...,...}  with code
--   not_found          del of an object that does not exist
--   in_use             del of an upstream that routes still use ("routes": [...])
--   missing_upstream   route put naming an upstream that will not exist ("upstream": name)
--   version_mismatch   an expect precondition failed ("expected", "actual")
--   bad_request        malformed call (wrong arity, unknown op/kind, duplicate object,
--                      doc not a JSON object)
-- Nothing is written when an error is returned: the batch is checked completely before
-- the first write.

local STREAM_MAXLEN = 10000  -- approximate cap of the change stream (XADD MAXLEN ~)
local BIG_BATCH = 1000       -- larger batches log one "resync" entry instead of one per object

local function fail(code, fields)
    fields = fields or {}
    fields.code = code
    return redis.error_reply('SYERR ' .. cjson.encode(fields))
end

local function keys_for(version_key)
    local suffix = 'version'
    if #version_key <= #suffix or version_key:sub(-#suffix) ~= suffix then
        return nil
    end
    local base = version_key:sub(1, #version_key - #suffix)
    return {
        base = base,
        version = version_key,
        routes = base .. 'routes',
        upstreams = base .. 'upstreams',
        uses = base .. 'uses',
        changes = base .. 'changes',
        events = base .. 'events',
        object = function(kind, id) return base .. kind .. ':' .. id end,
        used_by = function(name) return base .. 'used_by:' .. name end,
    }
end

-- The stored document is '{"version":N,' .. rest. Returns N and rest, or nil for a
-- document that was not written by this library (someone typed it into redis-cli).
local function split_stored(stored)
    local v, rest_at = stored:match('^{"version":(%d+),()')
    if not v then return nil end
    return tonumber(v), stored:sub(rest_at)
end

local function split_refs(s)
    local out = {}
    if s == nil or s == '' then return out end
    for name in s:gmatch('[^,]+') do out[#out + 1] = name end
    return out
end

local function sy_apply(keys, args)
    local K = keys_for(keys[1] or '')
    if not K then return fail('bad_request', {message = 'KEYS[1] must be the version key'}) end
    if #args == 0 or #args % 6 ~= 0 then
        return fail('bad_request', {message = 'arguments come in groups of 6: op kind id doc refs expect'})
    end

    -- Pass 1: check every operation against the state the batch would produce.
    local ops = {}
    local seen = {}
    local exists = {route = {}, upstream = {}}   -- overlay: id -> true/false after earlier ops
    local users = {}                              -- upstream -> {route id -> true/false} overlay
    local new_uses = {}                           -- route id -> refs list after the batch

    local function index_key(kind) return kind == 'route' and K.routes or K.upstreams end
    local function object_exists(kind, id)
        local o = exists[kind][id]
        if o ~= nil then return o end
        return redis.call('SISMEMBER', index_key(kind), id) == 1
    end
    local function current_uses(route_id)
        if new_uses[route_id] then return new_uses[route_id] end
        return split_refs(redis.call('HGET', K.uses, route_id) or '')
    end
    local function note_user(upstream, route_id, using)
        users[upstream] = users[upstream] or {}
        users[upstream][route_id] = using
    end

    for i = 1, #args, 6 do
        local op = {op = args[i], kind = args[i + 1], id = args[i + 2], doc = args[i + 3],
                    refs = split_refs(args[i + 4]), expect = args[i + 5]}
        if op.op ~= 'put' and op.op ~= 'del' then
            return fail('bad_request', {message = 'unknown op', op = op.op})
        end
        if op.kind ~= 'route' and op.kind ~= 'upstream' then
            return fail('bad_request', {message = 'unknown kind', kind = op.kind})
        end
        if op.id == '' then return fail('bad_request', {message = 'empty id', kind = op.kind}) end
        local seen_key = op.kind .. ':' .. op.id
        if seen[seen_key] then
            return fail('bad_request', {message = 'object appears twice in one batch',
                                        kind = op.kind, id = op.id})
        end
        seen[seen_key] = true

        op.key = K.object(op.kind, op.id)
        op.stored = redis.call('GET', op.key)
        if op.stored == false then op.stored = nil end

        if op.expect ~= '' then
            local actual = 0
            if op.stored then actual = split_stored(op.stored) or -1 end
            if tostring(actual) ~= op.expect then
                return fail('version_mismatch', {kind = op.kind, id = op.id,
                                                 expected = tonumber(op.expect), actual = actual})
            end
        end

        if op.op == 'put' then
            if op.doc:sub(1, 1) ~= '{' or op.doc:sub(-1) ~= '}' or #op.doc < 3 then
                return fail('bad_request', {message = 'doc must be a non-empty JSON object',
                                            kind = op.kind, id = op.id})
            end
            local ok = pcall(cjson.decode, op.doc)
            if not ok then
                return fail('bad_request', {message = 'doc is not valid JSON', kind = op.kind, id = op.id})
            end
            if op.kind == 'route' then
                for _, name in ipairs(op.refs) do
                    if not object_exists('upstream', name) then
                        return fail('missing_upstream', {kind = 'route', id = op.id, upstream = name})
                    end
                end
                for _, old in ipairs(current_uses(op.id)) do note_user(old, op.id, false) end
                for _, name in ipairs(op.refs) do note_user(name, op.id, true) end
                new_uses[op.id] = op.refs
            end
            -- unchanged: the same document, already in its index, with the same uses
            local _, rest = nil, nil
            if op.stored then _, rest = split_stored(op.stored) end
            op.unchanged = rest ~= nil and rest == op.doc:sub(2)
                and redis.call('SISMEMBER', index_key(op.kind), op.id) == 1
                and (op.kind ~= 'route'
                     or (redis.call('HGET', K.uses, op.id) or '') == args[i + 4])
            exists[op.kind][op.id] = true
        else
            if not object_exists(op.kind, op.id) then
                return fail('not_found', {kind = op.kind, id = op.id})
            end
            if op.kind == 'route' then
                for _, old in ipairs(current_uses(op.id)) do note_user(old, op.id, false) end
                new_uses[op.id] = {}
            else
                local still = {}
                local overlay = users[op.id] or {}
                for _, rid in ipairs(redis.call('SMEMBERS', K.used_by(op.id))) do
                    if overlay[rid] ~= false then still[rid] = true end
                end
                for rid, using in pairs(overlay) do
                    if using then still[rid] = true end
                end
                local names = {}
                for rid in pairs(still) do names[#names + 1] = rid end
                if #names > 0 then
                    table.sort(names)
                    return fail('in_use', {kind = 'upstream', id = op.id, routes = names})
                end
            end
            exists[op.kind][op.id] = false
        end
        ops[#ops + 1] = op
    end

    local changed = {}
    for _, op in ipairs(ops) do
        if not op.unchanged then changed[#changed + 1] = op end
    end
    if #changed == 0 then
        return {tonumber(redis.call('GET', K.version) or '0'), 0}
    end

    -- Pass 2: write. The version first, so every document carries it.
    local version = redis.call('INCR', K.version)
    local last = redis.call('XREVRANGE', K.changes, '+', '-', 'COUNT', 1)[1]
    if last then
        local last_version = tonumber(last[1]:match('^(%d+)-'))
        if last_version and last_version >= version then
            -- the version key was lost or reset by hand: move past the stream
            version = last_version + 1
            redis.call('SET', K.version, version)
        end
    end

    for _, op in ipairs(changed) do
        if op.op == 'put' then
            redis.call('SET', op.key, '{"version":' .. version .. ',' .. op.doc:sub(2))
            redis.call('SADD', index_key(op.kind), op.id)
        else
            redis.call('DEL', op.key)
            redis.call('SREM', index_key(op.kind), op.id)
            if op.kind == 'upstream' then redis.call('DEL', K.used_by(op.id)) end
        end
        if op.kind == 'route' then
            for _, old in ipairs(split_refs(redis.call('HGET', K.uses, op.id) or '')) do
                redis.call('SREM', K.used_by(old), op.id)
            end
            local refs = new_uses[op.id]
            if refs and #refs > 0 then
                redis.call('HSET', K.uses, op.id, table.concat(refs, ','))
                for _, name in ipairs(refs) do redis.call('SADD', K.used_by(name), op.id) end
            else
                redis.call('HDEL', K.uses, op.id)
            end
        end
    end

    if #changed > BIG_BATCH then
        redis.call('XADD', K.changes, 'MAXLEN', '~', STREAM_MAXLEN, version .. '-0',
                   'version', version, 'kind', '*', 'id', '*', 'op', 'resync')
    else
        for n, op in ipairs(changed) do
            redis.call('XADD', K.changes, 'MAXLEN', '~', STREAM_MAXLEN, version .. '-' .. (n - 1),
                       'version', version, 'kind', op.kind, 'id', op.id, 'op', op.op)
        end
    end
    redis.call('PUBLISH', K.events, tostring(version))
    return {version, #changed}
end

redis.register_function('sy_apply', sy_apply)
