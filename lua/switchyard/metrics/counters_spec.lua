-- busted spec: switchyard.metrics.counters (per-worker counts, buckets, flush) and
-- switchyard.metrics.render (the Prometheus text format of what was flushed).

local counters = require "switchyard.metrics.counters"
local render = require "switchyard.metrics.render"
local shared_dict = require "spec_support.shared_dict"

local function lines_of(text)
    local t = {}
    for line in text:gmatch("[^\n]+") do
        t[line] = true
    end
    return t
end

describe("metrics.counters", function()
    it("puts a duration in the first bucket whose bound is not below it", function()
        assert.equal(1, counters.bucket(0))
        assert.equal(1, counters.bucket(0.005))
        assert.equal(2, counters.bucket(0.0051))
        assert.equal(8, counters.bucket(1))
        assert.equal(11, counters.bucket(10))
        assert.equal(12, counters.bucket(10.5))
        assert.equal(12, counters.bucket(1e9))
    end)

    it("labels the code for 4xx and 5xx only", function()
        assert.same({"2xx", ""}, {counters.class_and_code(200)})
        assert.same({"3xx", ""}, {counters.class_and_code(308)})
        assert.same({"4xx", "404"}, {counters.class_and_code(404)})
        assert.same({"5xx", "503"}, {counters.class_and_code(503)})
        assert.same({"other", ""}, {counters.class_and_code(0)})
    end)

    it("adds a worker's counts to the dict and starts again from zero", function()
        local dict = shared_dict.new()
        local c = counters.new()
        c:request("r1", "u", 200, 0.003, 0.002, 100, 1000)
        c:request("r1", "u", 200, 0.3, 0.2, 100, 1000)
        c:request("r1", "u", 502, 20, nil, 10, 10)
        c:request("none", "", 404, 0.001, nil, 5, 50)
        local ep = {address = "127.0.0.1:9001"}
        c:attempt("u", ep)
        c:retry("u", ep)
        c:upstream_error("u", ep)
        c:count("rejections", "r1", "rate_limit")
        assert.equal(0, c:flush(dict))
        local S = counters.SEP
        assert.equal(2, dict:get("requests" .. S .. "r1" .. S .. "u" .. S .. "2xx" .. S))
        assert.equal(1, dict:get("requests" .. S .. "r1" .. S .. "u" .. S .. "5xx" .. S .. "502"))
        assert.equal(1, dict:get("requests" .. S .. "none" .. S .. S .. "4xx" .. S .. "404"))
        assert.equal(210, dict:get("bytes_in" .. S .. "r1"))
        assert.equal(2010, dict:get("bytes_out" .. S .. "r1"))
        assert.equal(1, dict:get("duration" .. S .. "r1" .. S .. "1"))
        assert.equal(1, dict:get("duration" .. S .. "r1" .. S .. "12"))
        assert.equal(3, dict:get("duration_count" .. S .. "r1"))
        assert.equal(2, dict:get("upstream_duration_count" .. S .. "r1"))
        assert.equal(2, dict:get("attempts" .. S .. "u" .. S .. "127.0.0.1:9001"))
        assert.equal(1, dict:get("retries" .. S .. "u" .. S .. "127.0.0.1:9001"))
        assert.equal(1, dict:get("upstream_errors" .. S .. "u" .. S .. "127.0.0.1:9001"))
        assert.equal(1, dict:get("rejections" .. S .. "r1" .. S .. "rate_limit"))
        -- a second flush adds only what came since
        c:request("r1", "u", 200, 0.003, 0.002, 1, 1)
        c:flush(dict)
        assert.equal(3, dict:get("requests" .. S .. "r1" .. S .. "u" .. S .. "2xx" .. S))
        assert.equal(4, dict:get("duration_count" .. S .. "r1"))
    end)
end)

describe("metrics.render", function()
    local function flushed()
        local dict = shared_dict.new()
        local c = counters.new()
        c:request("r1", "u", 200, 0.003, 0.002, 100, 1000)
        c:request("r1", "u", 200, 0.3, nil, 100, 1000)
        c:request("r\"x", "u", 503, 0.003, 0.002, 1, 1)
        c:flush(dict)
        local entries = {}
        for _, k in ipairs(dict:get_keys(0)) do
            entries[k] = dict:get(k)
        end
        return entries
    end

    it("renders counters with their labels, the code only for 4xx/5xx", function()
        local l = lines_of(render.render(flushed(), {}))
        assert.is_true(l['switchyard_edge_requests_total{route="r1",upstream="u",class="2xx"} 2'])
        assert.is_true(l['switchyard_edge_requests_total{route="r\\"x",upstream="u",class="5xx",'
                         .. 'code="503"} 1'])
        assert.is_true(l["# TYPE switchyard_edge_requests_total counter"])
        assert.is_true(l['switchyard_edge_response_bytes_total{route="r1"} 2000'])
    end)

    it("renders histograms with cumulative buckets, +Inf equal to the count", function()
        local l = lines_of(render.render(flushed(), {}))
        local m = "switchyard_edge_request_duration_seconds"
        assert.is_true(l["# TYPE " .. m .. " histogram"])
        assert.is_true(l[m .. '_bucket{route="r1",le="0.005"} 1'])
        assert.is_true(l[m .. '_bucket{route="r1",le="0.25"} 1'])
        assert.is_true(l[m .. '_bucket{route="r1",le="0.5"} 2'])
        assert.is_true(l[m .. '_bucket{route="r1",le="+Inf"} 2'])
        assert.is_true(l[m .. '_count{route="r1"} 2'])
        assert.is_true(l['switchyard_edge_upstream_response_duration_seconds_count{route="r1"} 1'])
    end)

    it("renders the values read at scrape time", function()
        local text = render.render({}, {
            connections = {{labels = {"active"}, value = 3}},
            config_version = {{value = 42}},
            config_propagation_lag = {{value = 0.012}},
        })
        local l = lines_of(text)
        assert.is_true(l['switchyard_edge_connections{state="active"} 3'])
        assert.is_true(l["switchyard_edge_config_version 42"])
        assert.is_true(l["switchyard_edge_config_propagation_lag_seconds 0.012"])
        assert.is_nil(text:find("requests_total", 1, true))
    end)

    it("escapes label values and ignores keys it does not know", function()
        assert.equal('a\\\\b\\"c\\nd', render.escape('a\\b"c\nd'))
        local text = render.render({["nonsense\1x"] = 5}, {})
        assert.equal("", text:gsub("\n", ""))
    end)
end)
