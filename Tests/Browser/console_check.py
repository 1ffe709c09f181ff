#!/usr/bin/env python3
"""Drives the ingress web console in headless Chromium, as a user would.

  console_check.py classify --url URL --image JPEG --expect-label LABEL --screenshot PNG
                            [--api-key K] [--timeout 120]
      Submits the image, waits for the expected top-1 label and for a worker in the
      summary, saves a full-page screenshot, then deletes the job from the jobs table.
  console_check.py cancel --url URL --image JPEG [--api-key K] [--timeout 60]
      Submits the image while the worker is paused, and cancels the queued job from
      the jobs table.

Exit code 0 means the console behaved; otherwise the reason is on stderr. The last
line on stdout is always a JSON object of what the script saw.

Chromium and chromedriver come from the system (Debian's chromium and chromium-driver,
or CONVEYOR_CHROMIUM and CONVEYOR_CHROMEDRIVER), so selenium-manager never downloads.
"""

import argparse
import base64
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ENDED = {"succeeded", "failed", "expired", "cancelled"}


class CheckFailed(Exception):
    pass


def make_driver(window_size):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={window_size}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CONVEYOR_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    width, height = (int(n) for n in window_size.split(","))
    if width < 500:
        # Headless windows are at least 500 px wide; a phone's width needs device emulation.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 0, "mobile": True})
    return driver


def text_of(driver, selector):
    """The element's text, or None when it is absent or was just replaced."""
    try:
        elements = driver.find_elements(By.CSS_SELECTOR, selector)
        return elements[0].text.strip() if elements else None
    except StaleElementReferenceException:
        return None


def row_selector(job_id):
    quoted = job_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'#jobs-table tbody tr[data-job-id="{quoted}"]'


def wait_for(driver, timeout, what, condition):
    """Waits until condition(driver) is truthy and returns it; CheckFailed names what was awaited."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise CheckFailed(f"timed out after {timeout:g} s waiting for {what}; {observed(driver)}") from None


def observed(driver):
    """A short description of the page, for failure messages."""
    fields = {
        "connection": text_of(driver, "#connection"),
        "job": text_of(driver, "#current-job-id"),
        "status": text_of(driver, "#current-job-status"),
        "message": text_of(driver, "#message"),
        "top1": text_of(driver, "#top5 .prediction-row .label"),
    }
    return ", ".join(f"{name}={value!r}" for name, value in fields.items() if value)


def open_console(driver, args):
    driver.get(args.url.rstrip("/") + "/")
    wait_for(driver, args.timeout, "the console page", lambda d: d.find_elements(By.ID, "file-input"))
    if args.api_key:
        field = driver.find_element(By.ID, "api-key")
        field.clear()
        field.send_keys(args.api_key)
        driver.find_element(By.ID, "api-key-save").click()
    wait_for(driver, args.timeout, "the event stream to be live", lambda d: text_of(d, "#connection") == "live")


def submit(driver, args):
    """Sends the image through the file input and returns the new job's id."""
    image = os.path.abspath(args.image)
    if not os.path.isfile(image):
        raise CheckFailed(f"no image at {image}")
    driver.find_element(By.ID, "file-input").send_keys(image)

    def accepted(d):
        message = text_of(d, "#message")
        if message:
            raise CheckFailed(f"the console reported an error after submitting: {message}")
        return text_of(d, "#current-job-id")

    return wait_for(driver, args.timeout, "the job id after submitting", accepted)


def current_status_is(expected):
    """A condition on #current-job-status that fails at once when the job ends otherwise."""
    def condition(driver):
        status = text_of(driver, "#current-job-status")
        if status != expected and status in ENDED:
            detail = text_of(driver, "#current-job-error") or ""
            raise CheckFailed(f"the job ended {status}, not {expected}: {detail}")
        return status == expected
    return condition


def full_page_screenshot(driver, path):
    """Saves the whole page, beyond the window's height, as a PNG."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png",
        "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    })
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as file:
        file.write(base64.b64decode(shot["data"]))


def delete_row(driver, args, job_id, label):
    """Clicks the row's delete button, after checking that it reads label."""
    selector = row_selector(job_id)
    button_selector = f"{selector} button.delete"
    wait_for(driver, args.timeout, f"the job's row with a {label} button",
             lambda d: text_of(d, button_selector) == label)
    button = driver.find_element(By.CSS_SELECTOR, button_selector)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    return selector


def check_classify(driver, args):
    open_console(driver, args)
    job_id = submit(driver, args)
    wait_for(driver, args.timeout, "the job to succeed", current_status_is("succeeded"))
    wait_for(driver, args.timeout, f"the top prediction {args.expect_label!r}",
             lambda d: text_of(d, "#top5 .prediction-row .label") == args.expect_label)
    top1 = text_of(driver, "#top5 .prediction-row .label")
    wait_for(driver, args.timeout, "a worker in the summary",
             lambda d: d.find_elements(By.CSS_SELECTOR, "#workers li:not(.empty)"))
    # The next summaries count the finished job: its latency shows as p50.
    wait_for(driver, args.timeout, "the finished job in the summary's p50",
             lambda d: text_of(d, '#summary [data-field="p50"]') not in (None, "", "–"))
    full_page_screenshot(driver, args.screenshot)
    selector = delete_row(driver, args, job_id, "Delete")
    wait_for(driver, args.timeout, "the deleted job's row to go",
             lambda d: not d.find_elements(By.CSS_SELECTOR, selector))
    return {"job_id": job_id, "top1": top1, "screenshot": os.path.abspath(args.screenshot)}


def check_cancel(driver, args):
    open_console(driver, args)
    job_id = submit(driver, args)
    wait_for(driver, args.timeout, "the job to be queued", current_status_is("queued"))
    selector = delete_row(driver, args, job_id, "Cancel")
    wait_for(driver, args.timeout, "the row's status to read cancelled",
             lambda d: text_of(d, f"{selector} td.status") == "cancelled")
    wait_for(driver, args.timeout, "the current job to read cancelled", current_status_is("cancelled"))
    return {"job_id": job_id}


def report_failure(driver, args, reason):
    print(f"console check failed: {reason}", file=sys.stderr)
    if driver is None:
        return
    directory = os.path.dirname(os.path.abspath(args.screenshot)) if getattr(args, "screenshot", None) else os.getcwd()
    path = os.path.join(directory, "console_failure.png")
    try:
        os.makedirs(directory, exist_ok=True)
        if driver.save_screenshot(path):
            print(f"screenshot of the failure: {path}", file=sys.stderr)
    except (OSError, WebDriverException) as error:
        print(f"no screenshot of the failure: {error}", file=sys.stderr)
    try:
        for entry in driver.get_log("browser"):
            print(f"browser {entry.get('level')}: {entry.get('message')}", file=sys.stderr)
    except WebDriverException:
        pass


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description="Checks the ingress web console in headless Chromium.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, timeout in (("classify", 120.0), ("cancel", 60.0)):
        command = commands.add_parser(name)
        command.add_argument("--url", required=True, help="the ingress, e.g. http://127.0.0.1:8080")
        command.add_argument("--image", required=True, help="a JPEG to submit")
        command.add_argument("--api-key", help="typed into the console's API key field")
        command.add_argument("--timeout", type=float, default=timeout, help="seconds for each wait")
        command.add_argument("--window-size", default="1280,1000", help="WIDTH,HEIGHT of the browser window")
        if name == "classify":
            command.add_argument("--expect-label", required=True, help="the top-1 label the console must show")
            command.add_argument("--screenshot", required=True, help="where to save a full-page PNG")
        else:
            command.add_argument("--screenshot", help="failure screenshots go beside this path")
    return parser.parse_args(argv)


def main(argv):
    args = parse_arguments(argv)
    driver = None
    try:
        driver = make_driver(args.window_size)
        check = check_classify if args.command == "classify" else check_cancel
        result = check(driver, args)
    except (CheckFailed, WebDriverException) as error:
        reason = str(error) if isinstance(error, CheckFailed) else f"WebDriver: {error.msg}"
        report_failure(driver, args, reason)
        seen = {"error": reason}
        if driver is not None:
            try:
                seen["page"] = observed(driver)
            except WebDriverException:
                pass
        print(json.dumps(seen))
        return 1
    finally:
        if driver is not None:
            driver.quit()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
