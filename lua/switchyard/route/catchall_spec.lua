-- busted spec: the catch-all host "*" (a Kubernetes Ingress rule without host; K2's addition,
-- docs/kubernetes.md), in the router and the route decoder. Kept in its own file so the
-- router's and decoder's own specs stay as their owners wrote them.

local router_mod = require "switchyard.route.router"
local decode = require "switchyard.route.decode"

local find = require("spec_support.regex").find

local function route(id, host, path, match)
    return {id = id, host = host, path = path, match = match or "prefix", priority = 0, upstream = "u"}
end

local function id_of(r, host, uri)
    local m = r:match(host, uri)
    return m and m.id
end

describe("catch-all host", function()
    it("takes requests no other host entry claims, and only those", function()
        local r = router_mod.new(find)
        r:put(route("any", "*", "/api"))
        r:put(route("named", "bbs.test.com", "/"))
        r:put(route("wild", "*.apps.test", "/x"))
        assert.equal("any", id_of(r, "unknown.example", "/api/v1"))
        assert.equal("any", id_of(r, "10.0.0.1", "/api"))
        assert.is_nil(id_of(r, "unknown.example", "/other"))
        -- a host entry with routes never falls through to the catch-all
        assert.equal("named", id_of(r, "bbs.test.com", "/api"))
        assert.is_nil(id_of(r, "a.apps.test", "/api"))
        r:remove("any")
        assert.is_nil(id_of(r, "unknown.example", "/api"))
    end)

    it("works without any wildcard host", function()
        local r = router_mod.new(find)
        r:put(route("any", "*", "/", "prefix"))
        assert.equal("any", id_of(r, "whatever", "/x"))
    end)

    it("is a host the decoder accepts; a bare * in a name is not", function()
        assert.equal("*", decode.normalize_host("*"))
        assert.is_nil(decode.normalize_host("*x"))
        assert.is_nil(decode.normalize_host("a.*"))
    end)
end)
