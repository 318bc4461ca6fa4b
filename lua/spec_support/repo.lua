-- Spec support: files of the repository outside lua/ (Tests/Fixtures), found from this
-- file's own path, so a spec reads the same file whatever directory busted runs in.

local _M = {}

_M.root = debug.getinfo(1, "S").source:match("^@(.*)lua/spec_support/[^/]*$") or "./"

-- The text of a file under the repository root; raises when it is missing (a spec that
-- depends on it must fail, not pass without looking).
function _M.read(relative)
    local path = _M.root .. relative
    local f, err = io.open(path, "rb")
    if not f then
        error("spec_support.repo: cannot read " .. path .. ": " .. tostring(err), 2)
    end
    local text = f:read("*a")
    f:close()
    return text
end

return _M
