"""Headless Chromium for the status page tests: Debian's chromium and chromium-driver, driven
by PyPI selenium. Selenium is given the driver's path, so it never looks for (or downloads)
one. Import the `browser` fixture into a test module to use it."""
import os
import shutil
import tempfile

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 20  # seconds: the page polls every 1.5 s, the prober marks a dead endpoint in < 1 s


@pytest.fixture(scope="module")
def browser():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("chromium and chromium-driver are needed (make deps installs them)")
    options = Options()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="switchyard-chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps", "--hide-scrollbars",
                     f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def severe(entries):
    """The console entries at error level."""
    return [e for e in entries if e.get("level") == "SEVERE"]


def wait_for(driver, what, condition, timeout=WAIT):
    """WebDriverWait with a message; stale elements (the page redraws) are retried."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(d), message=f"waiting {timeout}s for {what}")


def css(driver, selector):
    """The first element matching selector, or None."""
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0] if found else None


def shown(driver, element_id):
    """The element when it is displayed, else None (for wait_for)."""
    element = driver.find_element(By.ID, element_id)
    return element if element.is_displayed() else None


def open_page(driver, controller, token=None):
    """Loads /ui and, with a token, logs in and waits for the dashboard."""
    driver.get(controller.url + "/ui")
    wait_for(driver, "the page", lambda d: shown(d, "token") or shown(d, "dashboard"))
    if token is not None:
        field = driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)
        driver.find_element(By.ID, "login-button").click()
        wait_for(driver, "the dashboard", lambda d: shown(d, "dashboard"))


def explain_in_page(driver, url, headers=(), method="GET"):
    """Fills the page's explain form and submits it; returns once an answer or error shows."""
    for element_id, value in (("explain-url", url), ("explain-method", method),
                              ("explain-headers", "\n".join(headers))):
        field = driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)
    driver.find_element(By.ID, "explain-button").click()
    return wait_for(driver, "the explanation",
                    lambda d: css(d, "#explain-verdict") or css(d, "#explain-error"))
