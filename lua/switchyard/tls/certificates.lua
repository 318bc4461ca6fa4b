-- TLS at the edge: the per-worker certificate table that ssl_certificate_by_lua picks from
-- (switchyard.tls.handshake), and the certificate documents it is built from
-- (redis/README.md, "Certificates"; Sources/SwitchyardCore/Certificate.swift).
--
-- Pure: no ngx. The PEM parsers (ngx.ssl.parse_pem_cert / parse_pem_priv_key) and the key
-- decrypter (switchyard.tls.aesgcm) are injected, so busted runs this on Lua 5.2. Never yields.
--
-- Certificate table (one per worker, fed by switchyard.state as `certificate:<id>` keys
-- change, so it follows the same serial as the routes):
--   apply(id, raw)   raw: the stored document, nil = deleted. Decodes it, decrypts the key
--                    (key_enc) and parses chain and key ONCE into the objects a handshake
--                    sets (cdata, freed by the GC when replaced). A document that fails any
--                    of that is logged and left out (the certificate is not served; the
--                    others are untouched).
--   select(name)     the certificate for an SNI name: the exact name, then the wildcard one
--                    label up (`*.example.com` serves `a.example.com`, not `a.b.example.com`
--                    nor `example.com`), then the default certificate; nil = none (the
--                    handshake is refused). No SNI: the default.
-- Several certificates claiming one name (or the default role): the later not_after wins,
-- then the smaller id — the rule the controller shows as "shadowed". A name's winner is
-- recomputed only for the names a change touches.
--
-- The TLS members of route and upstream documents: switchyard.tls.fields; the connection
-- pools of HTTPS upstreams: switchyard.tls.pools.

local check = require "switchyard.util.check"
local fields = require "switchyard.tls.fields"

local type = type
local pairs = pairs
local tostring = tostring
local setmetatable = setmetatable
local str_lower = string.lower
local str_find = string.find
local str_sub = string.sub


local _M = {}

local DEFAULT = "\0default"   -- the default role, as a claimed "name" (cannot be a host name)
_M.DEFAULT = DEFAULT

local is_integer = check.is_integer
local valid_name = fields.valid_name

-- Decodes a certificate document. Returns {id, cert, key | key_enc, names, default,
-- not_after, version, fingerprint} or nil, err.
function _M.decode_certificate(raw, id)
    local obj, err = check.decode_object(raw)
    if not obj then
        return nil, err
    end
    if type(obj.id) ~= "string" or obj.id == "" then
        return nil, "missing field \"id\""
    end
    if id ~= nil and obj.id ~= id then
        return nil, "id \"" .. obj.id .. "\" does not match its key"
    end
    local cert = obj.cert
    if type(cert) ~= "string" or not str_find(cert, "-----BEGIN CERTIFICATE-----", 1, true) then
        return nil, "field \"cert\" must be a PEM certificate chain"
    end
    local key, key_enc = obj.key, obj.key_enc
    if key ~= nil and type(key) ~= "string" then
        return nil, "field \"key\" must be a string"
    end
    if key_enc ~= nil and type(key_enc) ~= "string" then
        return nil, "field \"key_enc\" must be a string"
    end
    if not key and not key_enc then
        return nil, "missing field \"key\" or \"key_enc\""
    end
    local names = obj.names
    if names == nil then
        names = {}
    elseif type(names) ~= "table" then
        return nil, "field \"names\" must be an array"
    end
    local list = {}
    for i = 1, #names do
        if not valid_name(names[i]) then
            return nil, "invalid name " .. tostring(names[i])
        end
        list[i] = names[i]
    end
    local default = obj.default
    if default ~= nil and type(default) ~= "boolean" then
        return nil, "field \"default\" must be true or false"
    end
    if #list == 0 and not default then
        return nil, "no names and not the default: nothing to serve"
    end
    local not_after = obj.not_after
    if not_after ~= nil and type(not_after) ~= "string" then
        return nil, "field \"not_after\" must be a string"
    end
    local version = obj.version
    if version ~= nil and not is_integer(version) then
        return nil, "field \"version\" must be an integer"
    end
    -- client certificates (mTLS): the CA bundle, and "required" (the default) or "optional"
    local client_ca, verify_client = obj.client_ca, obj.verify_client
    if client_ca ~= nil and type(client_ca) ~= "string" then
        return nil, "field \"client_ca\" must be a string"
    end
    if client_ca then
        verify_client = verify_client or "required"
        if verify_client ~= "required" and verify_client ~= "optional" then
            return nil, "field \"verify_client\" must be \"required\" or \"optional\""
        end
    else
        verify_client = nil
    end
    return {
        client_ca = client_ca,
        verify_client = verify_client,
        id = obj.id,
        cert = obj.cert,
        key = key,
        key_enc = key_enc,
        names = list,
        default = default == true,
        not_after = not_after or "",
        version = version,
        fingerprint = type(obj.fingerprint_sha256) == "string" and obj.fingerprint_sha256 or nil,
    }
end

-- a beats b for a name both claim
local function wins(a, b)
    if a.not_after ~= b.not_after then
        return a.not_after > b.not_after
    end
    return a.id < b.id
end
_M.wins = wins

local table_mt = {}
table_mt.__index = table_mt

-- opts: parse_cert(pem) -> obj | nil, err; parse_key(pem) -> obj | nil, err;
-- decrypt(key_enc, id) -> pem | nil, err (nil: keys cannot be decrypted); log(level, msg)
function _M.new_table(opts)
    return setmetatable({
        parse_cert = opts.parse_cert,
        parse_key = opts.parse_key,
        decrypt = opts.decrypt,
        log = opts.log or function() end,
        by_id = {},      -- id -> entry {id, names, default, not_after, version, cert, key}
        claims = {},     -- name -> {id -> entry}
        served = {},     -- name (or DEFAULT) -> winning entry
        n = 0,
        failed = {},     -- id -> why it is not served
        n_failed = 0,
    }, table_mt)
end

local function claimed_names(entry)
    local names = {}
    for i = 1, #entry.names do
        names[#names + 1] = entry.names[i]
    end
    if entry.default then
        names[#names + 1] = DEFAULT
    end
    return names
end

local function elect(self, name)
    local best
    local c = self.claims[name]
    if c then
        for _, entry in pairs(c) do
            if not best or wins(entry, best) then
                best = entry
            end
        end
        if not best then
            self.claims[name] = nil
        end
    end
    self.served[name] = best
end

local function set_failed(self, id, why)
    local was = self.failed[id]
    if why and not was then
        self.n_failed = self.n_failed + 1
    elseif not why and was then
        self.n_failed = self.n_failed - 1
    end
    self.failed[id] = why
end

-- Builds the served objects of a decoded certificate; nil, err when the key cannot be
-- decrypted or either PEM does not parse.
local function load(self, c)
    local key_pem = c.key
    if not key_pem then
        if not self.decrypt then
            return nil, "its key is encrypted (key_enc) and SWITCHYARD_CERT_KEY is not set on"
                .. " this edge"
        end
        local err
        key_pem, err = self.decrypt(c.key_enc, c.id)
        if not key_pem then
            return nil, "cannot decrypt its key: " .. tostring(err)
        end
    end
    local cert, err = self.parse_cert(c.cert)
    if not cert then
        return nil, "cannot parse its chain: " .. tostring(err)
    end
    local key
    key, err = self.parse_key(key_pem)
    if not key then
        return nil, "cannot parse its key: " .. tostring(err)
    end
    local client_ca
    if c.client_ca then
        client_ca, err = self.parse_cert(c.client_ca)
        if not client_ca then
            return nil, "cannot parse its client_ca: " .. tostring(err)
        end
    end
    return {
        client_ca = client_ca,
        verify_client = c.verify_client,
        id = c.id,
        names = c.names,
        default = c.default,
        not_after = c.not_after,
        version = c.version,
        fingerprint = c.fingerprint,
        cert = cert,
        key = key,
    }
end

-- raw: the certificate document (nil = deleted). Returns true when it is served.
function table_mt.apply(self, id, raw)
    local touched = {}
    local old = self.by_id[id]
    if old then
        local names = claimed_names(old)
        for i = 1, #names do
            local c = self.claims[names[i]]
            if c then
                c[id] = nil
            end
            touched[names[i]] = true
        end
        self.by_id[id] = nil
        self.n = self.n - 1
    end
    local entry
    if raw ~= nil then
        local c, err = _M.decode_certificate(raw, id)
        if c then
            entry, err = load(self, c)
        end
        if entry then
            set_failed(self, id, nil)
            self.by_id[id] = entry
            self.n = self.n + 1
            local names = claimed_names(entry)
            for i = 1, #names do
                local claims = self.claims[names[i]]
                if not claims then
                    claims = {}
                    self.claims[names[i]] = claims
                end
                claims[id] = entry
                touched[names[i]] = true
            end
        else
            set_failed(self, id, err)
            self.log("err", "not serving certificate:" .. id .. ": " .. tostring(err))
        end
    else
        set_failed(self, id, nil)
    end
    for name in pairs(touched) do
        elect(self, name)
    end
    return entry ~= nil
end

-- The entry serving an SNI name (any case, optional trailing dot), or nil.
function table_mt.select(self, name)
    local served = self.served
    if name and name ~= "" then
        local e = served[name]
        if e then
            return e
        end
        name = str_lower(name)
        if str_sub(name, -1) == "." then
            name = str_sub(name, 1, -2)
        end
        e = served[name]
        if e then
            return e
        end
        local dot = str_find(name, ".", 2, true)
        if dot then
            e = served["*" .. str_sub(name, dot)]
            if e then
                return e
            end
        end
    end
    return served[DEFAULT]
end

-- For the edge status: counts, the default's id, and why certificates are not served.
function table_mt.summary(self)
    local default = self.served[DEFAULT]
    local failed = {}
    for id, why in pairs(self.failed) do
        failed[id] = why
    end
    return {
        certificates = self.n,
        default = default and default.id or nil,
        not_served = self.n_failed > 0 and failed or nil,
    }
end

return _M
