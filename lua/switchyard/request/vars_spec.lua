-- busted spec: switchyard.request.vars is the one list of the ngx.ctx keys and $sy_*
-- variables. Every $sy_ variable of the nginx template is in it, everything it lists is
-- used, and no other module spells one of those names itself.

local vars = require "switchyard.request.vars"
local lua_source = require "spec_support.lua_source"
local repo = require "spec_support.repo"

local function set_of(list)
    local s = {}
    for _, v in ipairs(list) do
        s[v] = true
    end
    return s
end

-- the nginx configuration the edge runs: the template and the snippets it includes
local function nginx_text()
    local text = repo.read("deploy/edge.nginx.conf")
    local p = assert(io.popen("ls '" .. repo.root .. "deploy/edge.d/'*.conf 2>/dev/null"))
    for path in p:lines() do
        text = text .. "\n" .. lua_source.read(path)
    end
    p:close()
    return text
end

local names = {}        -- every name vars.lua gives, -> "ctx" | "var"
for _, name in pairs(vars.ctx) do
    names[name] = "ctx"
end
for _, name in pairs(vars.var) do
    names[name] = "var"
end

describe("request.vars", function()
    it("lists every $sy_ variable of the nginx configuration", function()
        local known = set_of(vars.nginx_only)
        for _, name in pairs(vars.var) do
            known[name] = true
        end
        local unknown = {}
        for name in nginx_text():gmatch("%$(sy_[%w_]+)") do
            if not known[name] then
                unknown[#unknown + 1] = name
            end
        end
        assert.same({}, unknown)
    end)

    it("lists only variables nginx declares", function()
        local text = nginx_text()
        for _, name in pairs(vars.var) do
            assert.truthy(text:find("set%s+%$" .. name .. "%s") or text:find("%$" .. name .. "[^%w_]"),
                          name .. " is not in the nginx configuration")
        end
        for _, name in ipairs(vars.nginx_only) do
            assert.truthy(text:find("%$" .. name .. "[^%w_]"), name)
        end
    end)

    it("is the only module that spells a ctx key or variable name", function()
        local found = {}
        for module, path in pairs(lua_source.modules()) do
            if module ~= "switchyard.request.vars" then
                for _, piece in ipairs(lua_source.pieces(lua_source.read(path))) do
                    if piece.kind == "string" then
                        if names[piece.text] then
                            found[#found + 1] = module .. ": \"" .. piece.text .. "\""
                        end
                    else
                        for word in piece.text:gmatch("[%w_]+") do
                            if names[word] then
                                found[#found + 1] = module .. ": " .. word
                            end
                        end
                    end
                end
            end
        end
        table.sort(found)
        assert.same({}, found)
    end)

    it("names each key once", function()
        local seen = {}
        for _, t in ipairs({vars.ctx, vars.var}) do
            for _, name in pairs(t) do
                assert.is_nil(seen[name], name)
                seen[name] = true
                assert.truthy(name:find("^sy_"), name)
            end
        end
        for _, name in ipairs(vars.nginx_only) do
            assert.is_nil(seen[name], name)
        end
    end)
end)
