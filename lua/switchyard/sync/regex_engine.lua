-- Which PCRE the lua module's ngx.re runs, told by what it compiles: PCRE 8.x reads
-- [\d-z] as a class with a literal "-", PCRE2 refuses it ("invalid range in character
-- class"). Debian 12's lua module links libpcre.so.3 (PCRE 8.39) while its nginx links
-- PCRE2, so only asking ngx.re tells. The syncer asks once at start; the heartbeat reports
-- it (`regex`) and the controller's status compares it with the engine it validates
-- regexes with (issue 16, M2). Pure: find is injected (ngx.re.find).

local _M = {}

-- find(subject, regex, options) -> from, to, err (err set when the regex does not compile)
function _M.detect(find)
    local _, _, err = find("", "[\\d-z]", "jo")
    return err and "pcre2" or "pcre1"
end

return _M
