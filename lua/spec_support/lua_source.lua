-- Spec support: reading the edge's Lua as text, for specs about the code itself (which
-- module requires which, which names it uses). A small lexer: comments are dropped and
-- strings are kept apart from code, so a name in a comment or a log message is not
-- mistaken for a use.

local repo = require "spec_support.repo"

local _M = {}

-- Every module file under lua/switchyard (specs left out): module name -> path.
function _M.modules()
    local out = {}
    local p = assert(io.popen("cd '" .. repo.root .. "lua' && find switchyard -name '*.lua'"))
    for path in p:lines() do
        if not path:find("_spec%.lua$") then
            out[(path:gsub("%.lua$", ""):gsub("/", "."))] = repo.root .. "lua/" .. path
        end
    end
    p:close()
    return out
end

function _M.read(path)
    local f = assert(io.open(path, "rb"))
    local text = f:read("*a")
    f:close()
    return text
end

-- Splits Lua source into {kind = "code" | "string", text} pieces; comments are dropped.
function _M.pieces(src)
    local out = {}
    local i, n = 1, #src
    local code_start = 1
    local function flush(to)
        if to >= code_start then
            out[#out + 1] = {kind = "code", text = src:sub(code_start, to)}
        end
    end
    while i <= n do
        local c = src:sub(i, i)
        if c == "-" and src:sub(i + 1, i + 1) == "-" then
            flush(i - 1)
            local eq = src:match("^%[(=*)%[", i + 2)
            if eq then
                local close = src:find("]" .. eq .. "]", i + 4 + #eq, true)
                i = (close or n) + #eq + 2
            else
                local nl = src:find("\n", i, true)
                i = nl or n + 1
            end
            code_start = i
        elseif c == "[" and src:match("^%[=*%[", i) then
            flush(i - 1)
            local eq = src:match("^%[(=*)%[", i)
            local close = src:find("]" .. eq .. "]", i + 2 + #eq, true) or n
            out[#out + 1] = {kind = "string", text = src:sub(i + 2 + #eq, close - 1)}
            i = close + #eq + 2
            code_start = i
        elseif c == '"' or c == "'" then
            flush(i - 1)
            local j = i + 1
            while j <= n do
                local d = src:sub(j, j)
                if d == "\\" then
                    j = j + 2
                elseif d == c then
                    break
                else
                    j = j + 1
                end
            end
            out[#out + 1] = {kind = "string", text = src:sub(i + 1, j - 1)}
            i = j + 1
            code_start = i
        else
            i = i + 1
        end
    end
    flush(n)
    return out
end

-- The modules a source requires, in order: {name, literal} (literal false: the argument
-- is not a string, so nobody can tell what it loads).
function _M.requires(src)
    local pieces = _M.pieces(src)
    local out = {}
    for k = 1, #pieces do
        local p = pieces[k]
        if p.kind == "code" then
            local pos = 1
            while true do
                local s, e = p.text:find("%f[%w_]require%f[^%w_]", pos)
                if not s then
                    break
                end
                local rest = p.text:sub(e + 1)
                local nxt = pieces[k + 1]
                if rest:match("^%s*%(?%s*$") and nxt and nxt.kind == "string" then
                    out[#out + 1] = {nxt.text, true}
                else
                    out[#out + 1] = {rest:match("^%s*%(?%s*([^%s%)]*)") or "", false}
                end
                pos = e + 1
            end
        end
    end
    return out
end

return _M
