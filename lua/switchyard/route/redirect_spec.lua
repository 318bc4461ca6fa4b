-- busted spec for switchyard.route.redirect (the Location of a redirect route)

local redirect = require "switchyard.route.redirect"
local policy = require "switchyard.route.policy"

-- the plan's redirect as switchyard.route.policy compiles it from a document's member
local function compiled(to, keep)
    local _, plan = policy.decode({redirect = {to = to, keep_path = keep}}, "prefix", "/", "r")
    return assert(plan and plan.redirect, "the policy refused the redirect")
end

describe("route.redirect", function()
    it("without keep_path: to, whatever the request", function()
        assert.equal("https://new.test/x", redirect.location(compiled("https://new.test/x", false),
                                                             "//evil.test/y"))
    end)

    it("keep_path appends the request URI to an absolute or path to", function()
        assert.equal("https://new.test/a/b?q=1",
                     redirect.location(compiled("https://new.test/", true), "/a/b?q=1"))
        assert.equal("https://new.test//evil.test/x",
                     redirect.location(compiled("https://new.test", true), "//evil.test/x"))
        assert.equal("/new/a?q", redirect.location(compiled("/new/", true), "/a?q"))
        assert.equal("/new//evil.test", redirect.location(compiled("/new", true), "//evil.test"))
        assert.equal("/a/b?q=1", redirect.location(compiled("/", true), "/a/b?q=1"))
        assert.equal("/", redirect.location(compiled("/", true), "/"))
    end)

    it("to \"/\" with keep_path never names another host (issue 16, L2)", function()
        for uri, want in pairs({
            ["//evil.test/x"] = "/evil.test/x",
            ["/\\evil.test/x"] = "/evil.test/x",
            ["///evil.test"] = "/evil.test",
            ["/\\/\\\\evil.test?a=b"] = "/evil.test?a=b",
            ["//"] = "/",
        }) do
            local got = redirect.location(compiled("/", true), uri)
            assert.equal(want, got, uri)
            assert.is_nil(got:find("^[/\\][/\\]"), uri)
        end
    end)
end)
