-- Spec support: Lua patterns standing in for the regex engine the edge injects
-- (ngx.re.find(subject, re, "jo") and its compile check; the router and the decoders take
-- them as arguments).

local _M = {}

-- unanchored find, like ngx.re.find
function _M.find(subject, re)
    return subject:find(re) ~= nil
end

-- the compile check: a pattern Lua refuses (unbalanced parentheses) is a bad regex
function _M.check(re)
    if pcall(string.find, "", re) then
        return true
    end
    return nil, "bad pattern"
end

return _M
