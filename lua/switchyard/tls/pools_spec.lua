-- busted spec for switchyard.tls.pools: the upstream{} block of each HTTPS upstream.

local tls = require "switchyard.tls.pools"

describe("connection pools", function()
    local function up(name, verify, ...)
        local eps = {}
        for i, a in ipairs({...}) do
            eps[i] = {address = a}
        end
        return {tls = {name = name, verify = verify}, endpoints = eps}
    end

    it("pool fixed names, never per-host SNI, and never two names on one address", function()
        local ups = {
            plain = {endpoints = {{address = "10.0.0.1:80"}}},                 -- http: no plan
            named = up("a.internal", false, "10.0.0.2:443", "10.0.0.3:443"),
            per_host = up(nil, false, "10.0.0.2:443"),                          -- SNI = $host
            verified = up("a.internal", true, "10.0.0.2:443"),
            verified_other = up("b.internal", true, "10.0.0.4:443"),
            clash_1 = up("c.internal", false, "10.0.0.5:443"),
            clash_2 = up("d.internal", false, "10.0.0.6:443", "10.0.0.5:443"),
            same_name = up("a.internal", false, "10.0.0.3:443"),
        }
        local pools = tls.plan_pools(ups)
        assert.is_nil(pools[ups.plain])
        assert.equal(tls.POOL_MAIN, pools[ups.named])
        assert.equal(tls.POOL_MAIN, pools[ups.same_name])     -- same name, same address: fine
        assert.equal(tls.POOL_FRESH, pools[ups.per_host])
        assert.equal(tls.POOL_VERIFIED, pools[ups.verified])  -- verified and not: other pools
        assert.equal(tls.POOL_VERIFIED, pools[ups.verified_other])
        assert.equal(tls.POOL_FRESH, pools[ups.clash_1])
        assert.equal(tls.POOL_FRESH, pools[ups.clash_2])
    end)
end)
