-- busted spec for switchyard.util.logsafe (client-controlled text in error log lines)

local logsafe = require "switchyard.util.logsafe"

describe("util.logsafe", function()
    it("escape: leaves ordinary text alone", function()
        assert.equal("www.example.test", logsafe.escape("www.example.test"))
        assert.equal("/caf\195\169?q=1", logsafe.escape("/caf\195\169?q=1"))
    end)

    it("escape: a newline cannot start a line of its own", function()
        local forged = "x\n2026/01/01 00:00:00 [emerg] 1#1: forged by the client"
        local out = logsafe.escape(forged)
        assert.is_nil(out:find("\n", 1, true))
        assert.equal("x\\x0A2026/01/01 00:00:00 [emerg] 1#1: forged by the client", out)
    end)

    it("escape: controls, DEL, NUL, quotes and backslashes become \\xHH", function()
        assert.equal("a\\x0Db\\x00c\\x7Fd\\x22e\\x5Cf\\x09",
                     logsafe.escape("a\rb\0c\127d\"e\\f\t"))
    end)

    it("escape: cuts at max bytes of the input and says so", function()
        assert.equal("abc...", logsafe.escape("abcdef", 3))
        assert.equal("abc", logsafe.escape("abc", 3))
        local long = string.rep("a", 20000)
        assert.equal(logsafe.MAX + 3, #logsafe.escape(long))
        -- the cut comes before escaping: an escape is never split
        assert.equal("a\\x0A...", logsafe.escape("a\nbc", 2))
    end)

    it("escape: nil and non-strings", function()
        assert.equal("(none)", logsafe.escape(nil))
        assert.equal("12", logsafe.escape(12))
    end)

    it("line: only line breaks and controls, quotes stay readable", function()
        assert.equal('route:"a" \\x0Aforged', logsafe.line('route:"a" \nforged'))
        assert.equal("plain", logsafe.line("plain"))
        assert.equal("nil", logsafe.line(nil))
    end)
end)
