"""The status page (GET /ui) in a real browser: headless Chromium driven by Selenium with
Debian's chromedriver, against a real stack (redis-server, the controller, one nginx edge,
the prober, demo backends), all on loopback.

The page loads without console errors, a wrong token is refused (and not kept), the right
one shows the configuration, a route created through the API appears, an endpoint whose
backend dies turns down, the edge agrees with Redis, the change stream and the certificate
are shown, and so is a stream. With SWITCHYARD_UI_SCREENSHOT=docs/ui.png the test also saves a screenshot (the
one in the docs); without it nothing is written to the tree.
"""
import base64
import os
import subprocess

import pytest
import requests
from browser_support import browser, css, explain_in_page, open_page, severe, shown, wait_for  # noqa: F401
from harness import ROOT, Edge, Prober, free_port, start_backends
from selenium.webdriver.common.by import By


@pytest.fixture(scope="module")
def stack(redis, controller, workdir):
    backends = start_backends("b1", "b2")
    edge = Edge(redis, workdir, "ui-edge", workers=1)
    prober = Prober(redis, workdir, "ui-prober")
    yield {"backends": backends, "edge": edge, "prober": prober}
    prober.stop()
    edge.stop()
    for b in backends.values():
        b.shutdown()
        b.server_close()


def health_of(driver, upstream, address):
    row = css(driver, f'tr[data-endpoint="{upstream} {address}"]')
    return row.get_attribute("data-health") if row else None


def self_signed(workdir, name, days):
    base = os.path.join(workdir, name)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", str(days), "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name},DNS:*.{name}",
                    "-keyout", base + ".key", "-out", base + ".crt"],
                   check=True, capture_output=True, timeout=30)
    with open(base + ".crt") as c, open(base + ".key") as k:
        return {"cert": c.read(), "key": k.read()}


def test_status_page_in_chromium(browser, stack, controller, workdir):
    b1, b2 = stack["backends"]["b1"], stack["backends"]["b2"]
    checked = {"endpoints": [{"address": f"127.0.0.1:{b.port}"} for b in (b1, b2)],
               "health_check": {"type": "http", "path": "/healthz", "interval_ms": 200,
                                "timeout_ms": 150, "rise": 1, "fall": 1}}
    controller.ok("PUT", "/api/v1/upstreams/shop", checked)
    controller.upstream("static", b1.port)
    controller.route("shop-home", "shop.test", "/", "shop")
    controller.route("shop-api", "shop.test", "/api", "shop", match="segment_prefix", priority=5)
    controller.route("shop-images", "*.shop.test", "^/img/[0-9]+\\.png$", "static", match="regex")
    controller.route("fallback", "*", "/", "static")
    controller.ok("PUT", "/api/v1/certificates/shop", self_signed(workdir, "shop.test", 20))
    stream_port = free_port()
    controller.ok("PUT", "/api/v1/streams/shop-db", {"listen": stream_port, "protocol": "udp", "upstream": "static"})

    # the page loads (no token needed for it) without console errors and asks for the token
    browser.get(controller.url + "/ui")
    wait_for(browser, "the token form", lambda d: d.find_element(By.ID, "token").is_displayed())
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    assert severe(browser.get_log("browser")) == []

    # a wrong token is refused, shown, and kept nowhere
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.ID, "login-button").click()
    error = wait_for(browser, "the refusal", lambda d: d.find_element(By.ID, "login-error")
                     if d.find_element(By.ID, "login-error").is_displayed() else None)
    assert "refused" in error.text and "401" in error.text, error.text
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    assert browser.execute_script("return window.sessionStorage.length") == 0
    assert "not-the-token" not in browser.current_url
    # the only console error is the refused request itself
    refused = severe(browser.get_log("browser"))
    assert refused and all("401" in e["message"] for e in refused), refused

    # the right token: the configuration appears, grouped by host
    browser.find_element(By.ID, "token").clear()
    browser.find_element(By.ID, "token").send_keys(controller.token)
    browser.find_element(By.ID, "login-button").click()
    wait_for(browser, "the dashboard", lambda d: d.find_element(By.ID, "dashboard").is_displayed())
    wait_for(browser, "the routes", lambda d: css(d, 'div[data-host="shop.test"] tr[data-route-id="shop-api"]'))
    assert css(browser, 'div[data-host="*.shop.test"] tr[data-route-id="shop-images"]')
    assert css(browser, 'div[data-host="*"] tr[data-route-id="fallback"]')
    assert controller.token not in browser.current_url
    assert browser.execute_script("return window.sessionStorage.length") == 1
    version = controller.status()["version"]
    wait_for(browser, f"version {version}", lambda d: d.find_element(By.ID, "version").text == str(version))

    # the edge has applied that version and agrees with Redis
    wait_for(browser, "the edge agreeing", lambda d: css(d, 'tr[data-edge="ui-edge"] .badge.agrees'))
    # the certificate, 20 days from expiry
    cert = wait_for(browser, "the certificate", lambda d: css(d, 'tr[data-certificate="shop"]'))
    assert "shop.test" in cert.text and "expiring soon" in cert.text, cert.text
    # the stream: port, protocol, upstream
    stream = wait_for(browser, "the stream", lambda d: css(d, 'tr[data-stream="shop-db"]'))
    assert str(stream_port) in stream.text and "udp" in stream.text and "static" in stream.text, stream.text

    # both endpoints come up (the prober checks them)
    for b in (b1, b2):
        wait_for(browser, f"127.0.0.1:{b.port} up", lambda d, b=b: health_of(d, "shop", f"127.0.0.1:{b.port}") == "up")
    assert health_of(browser, "static", f"127.0.0.1:{b1.port}") == "unchecked"

    # a route created through the API appears, and so does its change
    controller.route("new-route", "new.test", "/new", "static")
    wait_for(browser, "the new route", lambda d: css(d, 'div[data-host="new.test"] tr[data-route-id="new-route"]'))
    changes = browser.find_element(By.ID, "changes").text
    assert "new-route" in changes, changes

    # a backend dies: its endpoint turns down, with the prober's reason and when
    b2.shutdown()
    b2.server_close()
    address = f"127.0.0.1:{b2.port}"
    wait_for(browser, f"{address} down", lambda d: health_of(d, "shop", address) == "down")
    row = css(browser, f'tr[data-endpoint="shop {address}"]')
    reason = row.find_element(By.CSS_SELECTOR, "td.reason").text
    assert reason, row.text
    assert health_of(browser, "shop", f"127.0.0.1:{b1.port}") == "up"

    # explain from the page: a bad url is refused by the controller, naming the field
    error = explain_in_page(browser, "ftp://shop.test/")
    assert error.get_attribute("id") == "explain-error", error.text
    assert "422" in error.text and "field url" in error.text, error.text
    browser.get_log("browser")  # the 422 is logged by the browser as a failed request

    # a reload keeps the session: no token asked again
    browser.refresh()
    wait_for(browser, "the dashboard after reload", lambda d: css(d, 'tr[data-route-id="new-route"]'))
    assert not browser.find_element(By.ID, "login-section").is_displayed()

    shot = os.environ.get("SWITCHYARD_UI_SCREENSHOT")
    if shot:
        path = shot if os.path.isabs(shot) else os.path.join(ROOT, shot)
        # the whole page, not only the window (DevTools protocol through chromedriver)
        size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
        png = browser.execute_cdp_cmd("Page.captureScreenshot",
                                      {"format": "png", "captureBeyondViewport": True, "clip": clip})
        with open(path, "wb") as f:
            f.write(base64.b64decode(png["data"]))

    # everything since the right token went in ran without a console error
    assert severe(browser.get_log("browser")) == []

    # forgetting the token clears the session and shows the form again
    browser.find_element(By.ID, "logout").click()
    wait_for(browser, "the token form again", lambda d: d.find_element(By.ID, "token").is_displayed())
    assert browser.execute_script("return window.sessionStorage.length") == 0
    assert not browser.find_element(By.ID, "dashboard").is_displayed()


def test_redis_down_is_shown_and_does_not_refuse_the_token(browser, stack, controller, redis):
    """Last in this module: it stops Redis. A 503 is not a refused token: the page keeps the
    token, shows why it cannot read the API, and keeps trying."""
    browser.get(controller.url + "/ui")
    wait_for(browser, "the token form", lambda d: d.find_element(By.ID, "token").is_displayed())
    browser.get_log("browser")
    redis.stop()
    status = controller.request("GET", "/api/v1/status")
    assert status.status_code == 503, status.text
    browser.find_element(By.ID, "token").send_keys(controller.token)
    browser.find_element(By.ID, "login-button").click()
    banner = wait_for(browser, "the problem banner", lambda d: d.find_element(By.ID, "problem")
                      if d.find_element(By.ID, "problem").is_displayed() else None)
    assert "503" in banner.text and "retrying" in banner.text, banner.text
    assert browser.execute_script("return window.sessionStorage.length") == 1
    assert not browser.find_element(By.ID, "login-section").is_displayed()
    # the console names the failed calls, nothing else
    errors = severe(browser.get_log("browser"))
    assert errors and all("503" in e["message"] for e in errors), errors


def test_page_headers_forbid_framing_and_inline_code(controller):
    r = requests.get(controller.url + "/ui", timeout=5)
    assert r.status_code == 200
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    # the data is behind the token: the page's own calls without it are refused
    assert requests.get(controller.url + "/api/v1/health", timeout=5).status_code == 401
    assert requests.get(controller.url + "/api/v1/changes", timeout=5).status_code == 401
