-- busted spec: switchyard.route.urlnorm (the URL an explain request names, as nginx
-- would see it)

local urlnorm = require "switchyard.route.urlnorm"

describe("urlnorm.parse", function()
    it("splits and normalizes like nginx's $host and $uri", function()
        local u = urlnorm.parse("http://BBS.Test.com:8080/api/%78/./y/../z?a=1&b=%2F")
        assert.equal("http", u.scheme)
        assert.equal("bbs.test.com", u.host)
        assert.equal("/api/x/z", u.path)
        assert.equal("a=1&b=%2F", u.query)
        assert.equal("/api/%78/./y/../z?a=1&b=%2F", u.request_uri)
        u = urlnorm.parse("HTTPS://h.test.")
        assert.equal("https", u.scheme)
        assert.equal("h.test", u.host)
        assert.equal("/", u.path)
        assert.is_nil(u.query)
        assert.equal("/a/b/", urlnorm.parse("http://h//a//b/").path)
        assert.equal("/a/", urlnorm.parse("http://h/a/b/..").path)
        assert.equal("[::1]", urlnorm.parse("http://[::1]:80/").host)
    end)

    it("refuses what is not an absolute http(s) URL, with the reason", function()
        for _, bad in ipairs({"/relative", "ftp://h/", "http://", "http://u@h/",
                              "http://h/%zz", "http://h/../x", "http://h/%00",
                              "http://h x/", ("http://h/" .. ("a"):rep(9000))}) do
            local u, err = urlnorm.parse(bad)
            assert.is_nil(u, bad)
            assert.is_string(err)
        end
    end)
end)
