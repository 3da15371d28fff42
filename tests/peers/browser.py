#!/usr/bin/env python3
"""A real browser for the web page's tests (tests/ui.rs): Debian's chromium,
headless, driven by selenium through Debian's chromedriver.

The test sends one JSON command per line on stdin; this answers one JSON
line on stdout per command ({"ok": ...} or {"error": "..."}). It does what
a person does (open, type, choose a file, click) and reports what the
browser shows; the Rust test asserts the outcome. Nothing is downloaded:
the chromedriver path is given, so selenium's driver manager never runs.

Usage: browser.py BASE_URL DOWNLOAD_DIR
"""

import json
import os
import sys
import time

# Never look for (or fetch) a driver or a browser of selenium's own.
os.environ["SE_OFFLINE"] = "true"

CHROMIUM = os.environ.get("UI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UI_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 60


def fail_start(message):
    print(json.dumps({"error": message}), flush=True)
    sys.exit(3)


try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:
    fail_start(f"python3 cannot import selenium ({e}): pip install selenium (scripts/test installs it)")

for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
    if not os.access(path, os.X_OK):
        fail_start(f"{path} is missing: install the Debian package {package} (apt-get install {package}; scripts/test does)")


def start(download_dir, javascript=True):
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--password-store=basic",
    ):
        o.add_argument(a)
    o.add_experimental_option(
        "prefs",
        {
            "download.default_directory": download_dir,
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
            # 2 = blocked: the page's own scripts do not run (a user who
            # turned JavaScript off); the driver's still do.
            "profile.managed_default_content_settings.javascript": 1 if javascript else 2,
        },
    )
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=o)
    d.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": download_dir, "eventsEnabled": True},
    )
    d.set_page_load_timeout(WAIT)
    return d


def main():
    base, download_dir = sys.argv[1], sys.argv[2]
    javascript = sys.argv[3:4] != ["nojs"]
    os.makedirs(download_dir, exist_ok=True)
    d = start(download_dir, javascript)
    print(json.dumps({"ok": "ready"}), flush=True)
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            cmd = json.loads(line)
            try:
                out = run(d, base, download_dir, cmd)
                print(json.dumps({"ok": out}), flush=True)
            except Exception as e:  # reported to the test, which fails
                try:
                    shown = page(d)
                    shown = f" (at {shown['url']}: {shown['text'][:600]!r})"
                except Exception:
                    shown = ""
                msg = str(e).split("Stacktrace:")[0].strip()
                print(json.dumps({"error": f"{cmd.get('cmd')}: {type(e).__name__}: {msg}{shown}"}), flush=True)
            if cmd.get("cmd") == "quit":
                break
    finally:
        d.quit()


def wait(d):
    return WebDriverWait(d, WAIT)


def navigated(d, action):
    """Runs `action` (a click that loads a page) and waits for the new page."""
    old = d.find_element(By.TAG_NAME, "html")
    try:
        action()
    except WebDriverException as e:
        # On a busy machine the page can be gone before chromedriver has
        # finished with the click it dispatched: the click was delivered,
        # and the wait below sees the new page.
        if "does not belong to the document" not in str(e) and "stale element" not in str(e):
            raise

    def gone(_):
        # Stale, or (chromedriver's other word for it) no longer in the
        # document: the old page is gone.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    wait(d).until(gone)
    wait(d).until(lambda d: d.execute_script("return document.readyState") == "complete")


def page(d):
    h1 = d.find_elements(By.TAG_NAME, "h1")
    return {"url": d.current_url, "h1": h1[0].text if h1 else "", "text": d.find_element(By.TAG_NAME, "body").text}


FETCH = """
const [method, path, fields, multipart, fileName, fileText, done] = arguments;
let body;
if (method !== 'GET') {
  if (multipart) {
    body = new FormData();
    for (const [k, v] of fields) body.append(k, v);
    if (fileName !== null) body.append('file', new Blob([fileText], {type: 'text/csv'}), fileName);
  } else {
    body = new URLSearchParams();
    for (const [k, v] of fields) body.append(k, v);
  }
}
fetch(path, {method, body, credentials: 'same-origin'})
  .then(async r => done({status: r.status, url: r.url, text: await r.text()}))
  .catch(e => done({status: -1, url: '', text: String(e)}));
"""


def run(d, base, download_dir, cmd):
    c = cmd["cmd"]
    if c == "get":
        d.get(base + cmd["path"])
        return page(d)
    if c == "page":
        return page(d)
    if c == "fill":
        e = d.find_element(By.CSS_SELECTOR, cmd["css"])
        e.clear()
        e.send_keys(cmd["value"])
        return None
    if c == "file":
        d.find_element(By.CSS_SELECTOR, cmd["css"]).send_keys(cmd["path"])
        return None
    if c == "select":
        Select(d.find_element(By.CSS_SELECTOR, cmd["css"])).select_by_value(cmd["value"])
        return None
    if c == "click":
        e = d.find_element(By.CSS_SELECTOR, cmd["css"])
        navigated(d, e.click)
        if cmd.get("until"):
            wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, cmd["until"])))
        return page(d)
    if c == "press":
        # A click that does not wait for a new page (a script handles it).
        d.find_element(By.CSS_SELECTOR, cmd["css"]).click()
        return None
    if c == "wait_text":
        # Until an element of `css` shows `text`, looked at every 10 ms: a
        # state that lasts a moment (a progress message) is seen.
        def shown(d):
            try:
                return any(e.text == cmd["text"] for e in d.find_elements(By.CSS_SELECTOR, cmd["css"]))
            except WebDriverException:
                return False
        WebDriverWait(d, WAIT, poll_frequency=0.01).until(shown)
        return page(d)
    if c == "dblclick":
        e = d.find_element(By.CSS_SELECTOR, cmd["css"])
        navigated(d, lambda: ActionChains(d).double_click(e).perform())
        if cmd.get("until"):
            wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, cmd["until"])))
        return page(d)
    if c == "refresh":
        navigated(d, d.refresh)
        return page(d)
    if c == "wait":
        wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, cmd["css"])))
        return page(d)
    if c == "count":
        return len(d.find_elements(By.CSS_SELECTOR, cmd["css"]))
    if c == "text":
        return [e.text for e in d.find_elements(By.CSS_SELECTOR, cmd["css"])]
    if c == "attr":
        return [e.get_attribute(cmd["name"]) for e in d.find_elements(By.CSS_SELECTOR, cmd["css"])]
    if c == "table":
        rows = d.find_elements(By.CSS_SELECTOR, cmd["css"] + " tbody tr")
        return [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    if c == "alert":
        try:
            return d.switch_to.alert.text
        except NoAlertPresentException:
            return None
    if c == "cookies":
        return d.get_cookies()
    if c == "screenshot":
        d.save_screenshot(cmd["path"])
        return cmd["path"]
    if c == "size":
        d.set_window_size(cmd["width"], cmd["height"])
        return None
    if c == "download":
        before = set(os.listdir(download_dir))
        d.find_element(By.CSS_SELECTOR, cmd["css"]).click()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            new = [
                n for n in set(os.listdir(download_dir)) - before
                if not n.endswith(".crdownload") and not n.endswith(".tmp")
            ]
            if new:
                return os.path.join(download_dir, new[0])
            # Chrome writes the file itself: nothing to wait on but the directory.
            time.sleep(0.05)
        raise TimeoutError("no download finished")
    if c == "fetch":
        f = cmd.get("file") or {}
        d.set_script_timeout(WAIT)
        return d.execute_async_script(
            FETCH,
            cmd.get("method", "POST"),
            cmd["path"],
            cmd.get("fields", []),
            bool(cmd.get("multipart")),
            f.get("name"),
            f.get("text", ""),
        )
    if c == "quit":
        return None
    raise ValueError(f"unknown command {c!r}")


if __name__ == "__main__":
    main()
