-- busted spec for switchyard.sync.regex_engine: which PCRE ngx.re runs.

local regex_engine = require "switchyard.sync.regex_engine"

describe("regex_engine.detect", function()
    it("is pcre1 when the probe compiles, pcre2 when it is refused", function()
        local asked
        local pcre1 = function(_, re, opts)
            asked = {re, opts}
            return nil, nil, nil   -- compiled, no match
        end
        local pcre2 = function()
            return nil, nil, "pcre2_compile() failed: invalid range in character class"
        end
        assert.equal("pcre1", regex_engine.detect(pcre1))
        -- the pattern only one engine accepts, with the edges' options (JIT, cached)
        assert.same({"[\\d-z]", "jo"}, asked)
        assert.equal("pcre2", regex_engine.detect(pcre2))
    end)
end)
