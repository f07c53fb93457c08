"""Drives berth's portal in headless Chromium (Selenium), for tests/e2e/portal.rs.

usage: portal_browser.py SCENARIO URL ADMIN_PASSWORD OCI_LAYOUT SHOTS_DIR

SCENARIO is one of `journey`, `hostile`, `roles`, `operations`, `oidc`,
`replication`, `preheat`, `administration`. The registry at URL is a fresh
berth; OCI_LAYOUT an OCI image layout holding the image `base` that skopeo
pushes. Every page visited is saved as a screenshot in SHOTS_DIR
(the file names are printed). Each step prints a line the Rust test looks
for; any failure raises (a non-zero exit).
"""

import base64
import hashlib
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

SCENARIO, URL, ADMIN_PASSWORD, LAYOUT, SHOTS = sys.argv[1:6]
HOST = URL.split("://", 1)[1].rstrip("/")
PAYLOAD = "<script>window.__pwned=1</script>\"'><img src=x onerror=window.__pwned=2>javascript:alert(1)"
shot_count = 0


def step(text):
    print(text, flush=True)


def suffix():
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))


# ------------------------------------------------------------ API and skopeo


def api(method, path, body=None, user="admin", password=None):
    """A call to /api/v2.0 with basic auth: (status, parsed body, headers)."""
    password = ADMIN_PASSWORD if password is None else password
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + "/api/v2.0" + path, data=data, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None), resp.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None), e.headers


def api_ok(method, path, body=None):
    status, out, headers = api(method, path, body)
    assert 200 <= status < 300, f"{method} {path}: {status} {out}"
    return out, headers


def skopeo(*args):
    out = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"skopeo {args}: {out.stderr}"
    return out.stdout


def push(project, repo, tag):
    skopeo("copy", "--dest-creds", f"admin:{ADMIN_PASSWORD}", "--dest-tls-verify=false",
           f"oci:{LAYOUT}:base", f"docker://{HOST}/{project}/{repo}:{tag}")


def push_distinct(project, repo, tag):
    """Pushes a manifest of its own (an annotation names the tag) through
    /v2 with basic auth: a new artifact per tag, as skopeo's copies of the
    one image are not."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": len(config)},
        "layers": [], "annotations": {"org.example.tag": tag}}).encode()
    auth = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    for method, path, body, kind in [
            ("POST", f"/v2/{project}/{repo}/blobs/uploads/?digest={digest}", config, "application/octet-stream"),
            ("PUT", f"/v2/{project}/{repo}/manifests/{tag}", manifest, "application/vnd.oci.image.manifest.v1+json")]:
        req = urllib.request.Request(URL + path, data=body, method=method)
        req.add_header("Authorization", auth)
        req.add_header("Content-Type", kind)
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 201, (path, resp.status)


def create_user(name, password="Portal12345"):
    api_ok("POST", "/users", {"username": name, "email": f"{suffix()}@example.com", "realname": name,
                              "password": password, "comment": ""})
    return password


# ------------------------------------------------------------ the browser


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("BERTH_TEST_CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("BERTH_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def shot(driver, name):
    global shot_count
    shot_count += 1
    path = os.path.join(SHOTS, f"{SCENARIO}-{shot_count:02d}-{name}.png")
    driver.save_screenshot(path)
    step(f"screenshot {path}")


def click(driver, element, alert=False):
    """Clicks what loads a new page (accepting a confirm dialog first when
    `alert`) and waits for that page: loaded, and without the mark set on
    the old one."""
    driver.execute_script("window.__old_page = true")
    element.click()
    if alert:
        WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
        driver.switch_to.alert.accept()

    def loaded(d):
        try:
            return d.execute_script("return window.__old_page === undefined && document.readyState === 'complete'")
        except WebDriverException:
            return False  # between the pages

    WebDriverWait(driver, 15).until(loaded)


def button(driver, text):
    return driver.find_element(By.XPATH, f"//button[text()='{text}']")


def go(driver, path):
    driver.get(URL + path)


def body_text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def has(driver, css):
    return len(driver.find_elements(By.CSS_SELECTOR, css)) > 0


def no_alert(driver):
    try:
        alert = driver.switch_to.alert
        text = alert.text
        alert.dismiss()
        raise AssertionError(f"an alert opened: {text!r}")
    except NoAlertPresentException:
        pass


def console_errors(driver):
    """Severe console entries (CSP refusals, script errors), the missing
    favicon and a refused password aside."""
    return [e for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]
            and "/account/sign-in - Failed to load resource: the server responded with a status of 401" not in e["message"]]


def sign_in(driver, user, password):
    go(driver, "/account/sign-in")
    driver.find_element(By.ID, "principal").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/account/sign-in'] button[type=submit]"))


def sign_out(driver):
    driver.find_element(By.CSS_SELECTOR, "details.user summary").click()
    click(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/account/sign-out'] button"))
    assert "/account/sign-in" in driver.current_url, driver.current_url


def project_id(name):
    out, _ = api_ok("GET", f"/projects/{name}")
    return out["project_id"]


# ------------------------------------------------------------ scenarios


def journey(driver):
    go(driver, "/")
    assert "/account/sign-in" in driver.current_url, driver.current_url
    shot(driver, "sign-in")
    sign_in(driver, "admin", "wrong-password")
    assert "Invalid user name or password" in body_text(driver)
    step("wrong password refused")
    sign_in(driver, "admin", ADMIN_PASSWORD)
    assert driver.current_url.endswith("/harbor/projects"), driver.current_url
    shot(driver, "projects")
    step("signed in as admin")

    project = "portal-" + suffix()
    driver.find_element(By.ID, "project_name").send_keys(project)
    click(driver, button(driver, "Create project"))
    assert "The project was created." in body_text(driver), body_text(driver)
    assert f"/harbor/projects/{project_id(project)}/repositories" in driver.current_url
    shot(driver, "project-created")
    step(f"project created {project}")

    push(project, "app", "v1")
    driver.refresh()
    click(driver, driver.find_element(By.LINK_TEXT, f"{project}/app"))
    assert "v1" in driver.find_element(By.ID, "artifacts").text
    shot(driver, "artifacts")
    step("pushed image listed with its tag")

    click(driver, driver.find_element(By.CSS_SELECTOR, "#artifacts tbody a"))
    pull = driver.find_element(By.ID, "pull").text
    assert pull.startswith(f"docker pull {HOST}/{project}/app@sha256:"), pull
    assert has(driver, f"button[data-copy='{pull}']")
    driver.find_element(By.ID, "tag_name").send_keys("v2")
    click(driver, button(driver, "Add tag"))
    assert "The tag was added." in body_text(driver)
    assert "v2" in driver.find_element(By.ID, "tags").text
    shot(driver, "artifact")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Remove tag v2']"), alert=True)
    assert "The tag was removed." in body_text(driver)
    assert "v2" not in driver.find_element(By.ID, "tags").text
    step("tags added and removed")
    click(driver, button(driver, "Scan now"))
    assert "The scan was started." in body_text(driver), body_text(driver)
    step("scan started")
    artifact_url = driver.current_url.split("?")[0].removeprefix(URL)

    member = "dev-" + suffix()
    member_password = create_user(member)
    pid = project_id(project)
    go(driver, f"/harbor/projects/{pid}/members")
    driver.find_element(By.ID, "member_name").send_keys(member)
    click(driver, button(driver, "Add member"))
    assert "The member was added." in body_text(driver)
    assert member in driver.find_element(By.ID, "members").text
    shot(driver, "members")
    step("member added")

    go(driver, "/harbor/users")
    assert member in driver.find_element(By.ID, "users").text
    shot(driver, "admin-users")
    go(driver, "/harbor/clearing-job/gc")
    shot(driver, "admin-gc")
    go(driver, "/harbor/logs")
    assert project in driver.find_element(By.ID, "audit").text
    shot(driver, "admin-audit")
    go(driver, "/harbor/interrogation-services/scanners")
    assert "berth" in driver.find_element(By.ID, "scanners").text
    shot(driver, "admin-scanners")
    go(driver, "/harbor/groups")
    driver.find_element(By.ID, "group_name").send_keys("qa-team")
    click(driver, button(driver, "Create group"))
    assert "The group was created." in body_text(driver)
    assert "qa-team" in driver.find_element(By.ID, "groups").text
    shot(driver, "admin-groups")
    go(driver, "/harbor/robot-accounts")
    driver.find_element(By.ID, "robot_name").send_keys("mirror")
    click(driver, button(driver, "Create robot account"))
    assert driver.find_element(By.ID, "robot-secret").text
    assert "mirror" in driver.find_element(By.ID, "robots").text
    shot(driver, "admin-robots")
    step("administration pages")

    go(driver, f"/harbor/projects/{pid}/robot-account")
    driver.find_element(By.ID, "robot_name").send_keys("puller")
    driver.find_element(By.ID, "robot_description").send_keys("pulls app")
    click(driver, button(driver, "Create robot account"))
    secret = driver.find_element(By.ID, "robot-secret").text
    notice = driver.find_element(By.CSS_SELECTOR, "div.secret strong").text
    robot_name = notice.removeprefix("Robot ").removesuffix(" was created.")
    assert secret and robot_name.startswith("robot$"), (notice, secret)
    assert has(driver, "div.secret button[data-copy]")
    shot(driver, "robot-created")
    with tempfile.TemporaryDirectory() as tmp:
        skopeo("copy", "--src-creds", f"{robot_name}:{secret}", "--src-tls-verify=false",
               f"docker://{HOST}/{project}/app:v1", f"oci:{tmp}/out:v1")
    go(driver, f"/harbor/projects/{pid}/robot-account")
    assert "robot-secret" not in driver.page_source, "the secret is shown once only"
    step("robot pulled with its secret")

    go(driver, f"/harbor/projects/{pid}/logs")
    assert "create" in driver.find_element(By.ID, "logs").text
    shot(driver, "logs")
    go(driver, f"/harbor/projects/{pid}/configs")
    driver.find_element(By.NAME, "auto_scan").click()
    click(driver, button(driver, "Save"))
    assert "The configuration was saved." in body_text(driver)
    out, _ = api_ok("GET", f"/projects/{pid}")
    assert out["metadata"].get("auto_scan") == "true", out["metadata"]
    shot(driver, "configs")
    quota = driver.find_element(By.ID, "quota_gib")
    quota.clear()
    quota.send_keys("2")
    click(driver, button(driver, "Set quota"))
    assert "The quota was set." in body_text(driver)
    quotas, _ = api_ok("GET", f"/quotas?reference=project&reference_id={pid}")
    assert quotas[0]["hard"]["storage"] == 2 * 1024 ** 3, quotas
    step("configuration saved")

    go(driver, f"/harbor/projects/{pid}/labels")
    driver.find_element(By.ID, "label_name").send_keys("reviewed")
    click(driver, button(driver, "Create label"))
    assert "The label was created." in body_text(driver)
    go(driver, artifact_url)
    click(driver, button(driver, "Add label"))
    assert "The label was added." in body_text(driver)
    assert has(driver, "button[aria-label='Remove label reviewed']")
    go(driver, f"/harbor/projects/{pid}/tag-strategy")
    pattern = driver.find_element(By.ID, "repo_pattern")
    pattern.clear()
    pattern.send_keys("frozen/**")
    click(driver, button(driver, "Add rule"))
    assert "The rule was added." in body_text(driver)
    assert "frozen/**" in driver.find_element(By.ID, "immutability").text
    shot(driver, "tag-strategy")
    go(driver, f"/harbor/projects/{pid}/webhook")
    driver.find_element(By.ID, "hook_name").send_keys("ci")
    driver.find_element(By.ID, "hook_address").send_keys("http://127.0.0.1:9/hook")
    click(driver, button(driver, "Create webhook"))
    assert "The webhook was created." in body_text(driver)
    assert "ci" in driver.find_element(By.ID, "webhooks").text
    shot(driver, "webhooks")
    step("labels, immutability and webhooks")

    sign_out(driver)
    go(driver, "/harbor/projects")
    assert "/account/sign-in" in driver.current_url
    sign_in(driver, member, member_password)
    assert project in driver.find_element(By.ID, "projects").text
    go(driver, f"/harbor/projects/{pid}/members")
    assert not has(driver, "#member_name"), "a developer may not add members"
    assert not has(driver, "button[aria-label^='Remove']")
    go(driver, artifact_url)
    assert has(driver, "#tag_name"), "a developer may add tags"
    assert not has(driver, "form[action$='/delete'] button.danger"), "a developer may not delete"
    shot(driver, "member-view")
    assert not has(driver, "a[href='/harbor/users']"), "administration is not offered to a member"
    go(driver, "/harbor/users")
    assert "Not allowed" in body_text(driver)
    # The refusal is a 403 (the browser logs it; nothing else may be there).
    assert all("/harbor/users - " in e["message"] and "403" in e["message"] for e in console_errors(driver))
    go(driver, "/harbor/projects")
    step("member sees what a developer may do")
    go(driver, "/account/password")
    driver.find_element(By.ID, "old").send_keys(member_password)
    driver.find_element(By.ID, "new").send_keys("Changed12345")
    click(driver, button(driver, "Change password"))
    assert "Your password was changed." in body_text(driver), body_text(driver)
    shot(driver, "password-changed")
    sign_out(driver)
    sign_in(driver, member, member_password)
    assert "Invalid user name or password" in body_text(driver)
    sign_in(driver, member, "Changed12345")
    assert driver.current_url.endswith("/harbor/projects"), driver.current_url
    step("own password changed")
    sign_out(driver)

    sign_in(driver, "admin", ADMIN_PASSWORD)
    go(driver, artifact_url)
    driver.find_element(By.NAME, "confirm").click()
    click(driver, button(driver, "Delete artifact"), alert=True)
    assert "The artifact was deleted." in body_text(driver)
    assert "/artifacts-tab" in driver.current_url
    shot(driver, "artifact-deleted")
    step("artifact deleted")

    def delete_project():
        go(driver, f"/harbor/projects/{pid}/configs")
        driver.find_element(By.NAME, "confirm").click()
        click(driver, button(driver, "Delete project"), alert=True)

    delete_project()
    assert "contains repositories" in driver.find_element(By.CSS_SELECTOR, "p.error").text
    go(driver, f"/harbor/projects/{pid}/repositories")
    click(driver, driver.find_element(By.CSS_SELECTOR, f"button[aria-label='Delete {project}/app']"), alert=True)
    assert "The repository was deleted." in body_text(driver)
    delete_project()
    assert "The project was deleted." in body_text(driver)
    assert project not in driver.find_element(By.ID, "projects").text
    step("project deleted")
    errors = console_errors(driver)
    assert not errors, errors
    step("journey done")


# The pages whose payloads are the values of form fields.
FIELDS = {"robot": ["robot_description"], "replication-rule": ["rule_description", "rule_name_filter"],
          "preheat-policy": ["policy_description", "policy_repos"]}


def hostile(driver):
    project = "hostile-" + suffix()
    api_ok("POST", "/projects", {"project_name": project, "metadata": {"public": "false"}})
    pid = project_id(project)
    push(project, "app", "v1")
    _, headers = api_ok("POST", "/labels", {"name": PAYLOAD, "description": PAYLOAD, "color": "#000000",
                                            "scope": "p", "project_id": pid})
    label_id = int(headers["Location"].rsplit("/", 1)[1])
    arts, _ = api_ok("GET", f"/projects/{project}/repositories/app/artifacts")
    digest = arts[0]["digest"]
    api_ok("POST", f"/projects/{project}/repositories/app/artifacts/{digest}/labels", {"id": label_id})
    api_ok("POST", "/robots", {"name": "r" + suffix(), "description": PAYLOAD, "duration": -1, "level": "project",
                               "permissions": [{"kind": "project", "namespace": project,
                                                "access": [{"resource": "repository", "action": "pull"}]}]})
    _, headers = api_ok("POST", f"/projects/{pid}/webhook/policies", {
        "name": PAYLOAD[:100], "description": PAYLOAD, "enabled": False, "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook"}]})
    hook_id = int(headers["Location"].rsplit("/", 1)[1])
    robots, _ = api_ok("GET", f"/robots?q=Level=project,ProjectID={pid}")
    robot_id = robots[0]["id"]
    api_ok("POST", "/retentions", {
        "algorithm": "or", "scope": {"level": "project", "ref": pid},
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
        "rules": [{"action": "retain", "template": "always", "params": {},
                   "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": PAYLOAD}],
                   "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                       "pattern": PAYLOAD}]}}]})
    user = "<b>x'" + suffix() + "</b>"
    create_user(user)
    api_ok("POST", f"/projects/{pid}/members", {"role_id": 2, "member_user": {"username": user}})
    _, headers = api_ok("POST", "/registries", {"name": "hostile-reg", "type": "docker-registry",
                                                "url": "http://127.0.0.1:9", "description": PAYLOAD})
    registry_id = int(headers["Location"].rsplit("/", 1)[1])
    _, headers = api_ok("POST", "/replication/policies", {
        "name": "hostile-rule", "description": PAYLOAD, "dest_registry": {"id": registry_id},
        "filters": [{"type": "name", "value": PAYLOAD}], "trigger": {"type": "manual"}, "enabled": True})
    rule_id = int(headers["Location"].rsplit("/", 1)[1])
    api_ok("POST", "/p2p/preheat/instances", {"name": "hostile-inst", "vendor": "dragonfly", "description": PAYLOAD,
                                              "endpoint": "http://127.0.0.1:9", "enabled": True})
    instance_id = api_ok("GET", "/p2p/preheat/instances/hostile-inst")[0]["id"]
    api_ok("POST", f"/projects/{project}/preheat/policies", {
        "name": "hostile-policy", "description": PAYLOAD, "provider_id": instance_id, "enabled": True,
        "filters": json.dumps([{"type": "repository", "value": PAYLOAD}, {"type": "tag", "value": "**"}]),
        "trigger": json.dumps({"type": "manual"})})
    step("hostile names stored")

    # `javascript:` as the place to return to after signing in.
    go(driver, "/account/sign-in?redirect_url=javascript:alert(1)")
    sign_in_page_url = driver.current_url
    driver.find_element(By.ID, "principal").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    click(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/account/sign-in'] button[type=submit]"))
    no_alert(driver)
    assert driver.current_url.endswith("/harbor/projects"), (sign_in_page_url, driver.current_url)

    quoted = urllib.parse.quote(PAYLOAD)
    pages = [
        ("artifacts", f"/harbor/projects/{pid}/repositories/app/artifacts-tab", "artifacts"),
        ("artifact", f"/harbor/projects/{pid}/repositories/app/artifacts-tab/artifacts/{digest}", None),
        ("robots", f"/harbor/projects/{pid}/robot-account", "robots"),
        ("labels", f"/harbor/projects/{pid}/labels", "labels"),
        ("webhooks", f"/harbor/projects/{pid}/webhook", "webhooks"),
        ("webhook", f"/harbor/projects/{pid}/webhook/{hook_id}", None),
        ("robot", f"/harbor/projects/{pid}/robot-account/{robot_id}", None),
        ("retention", f"/harbor/projects/{pid}/tag-strategy", "retention"),
        ("retention-rule", f"/harbor/projects/{pid}/tag-strategy/retention/rules/0", None),
        ("members", f"/harbor/projects/{pid}/members", None),
        ("registries", "/harbor/registries", None),
        ("replication-rule", f"/harbor/replications/{rule_id}", None),
        ("distributions", "/harbor/distribution/instances", None),
        ("preheat-policies", f"/harbor/projects/{pid}/p2p-provider", None),
        ("preheat-policy", f"/harbor/projects/{pid}/p2p-provider/hostile-policy", None),
        ("reflected", f"/harbor/projects?error={quoted}&done={quoted}&q={quoted}", None),
        ("reflected-repos", f"/harbor/projects/{pid}/repositories?q={quoted}&error={quoted}", None),
    ]
    for name, path, table in pages:
        go(driver, path)
        no_alert(driver)
        shot(driver, name)
        text = body_text(driver)
        if name.startswith("reflected"):
            assert PAYLOAD in text, f"{name}: the payload is not shown as text"
            assert driver.find_element(By.ID, "q").get_attribute("value") == PAYLOAD
        elif name == "webhooks":
            assert PAYLOAD[:100] in text, f"{name}: the payload is not shown as text:\n{text}"
        elif name in FIELDS:
            for field in FIELDS[name]:
                value = driver.find_element(By.ID, field).get_attribute("value")
                assert value == PAYLOAD, f"{name}: the payload is not the text of {field}: {value!r}"
        elif name == "members":
            assert user in driver.find_element(By.ID, "members").text, "the user name is not shown as text"
        else:
            assert PAYLOAD in text, f"{name}: the payload is not shown as text:\n{text}"
        assert driver.execute_script("return typeof window.__pwned") == "undefined", f"{name}: a payload ran"
        assert not has(driver, "a[href^='javascript:']"), f"{name}: a javascript: link"
        assert not has(driver, "main img, main script"), f"{name}: markup from the payload"
        errors = console_errors(driver)
        assert not errors, f"{name}: {errors}"
        step(f"hostile {name} rendered as text")
    step("hostile done")


def wait_for(driver, path, done, what, timeout=60):
    """Reloads `path` until `done(driver)` holds (a job finishing)."""
    deadline = time.time() + timeout
    while True:
        go(driver, path)
        if done(driver):
            return
        if time.time() > deadline:
            raise AssertionError(f"{what}: not done after {timeout} s:\n{body_text(driver)}")
        time.sleep(0.5)


def operations(driver):
    """Tag retention, garbage collection, the audit log purge, webhook and
    robot editing, in the browser."""
    project = "ops-" + suffix()
    api_ok("POST", "/projects", {"project_name": project, "metadata": {"public": "false"}})
    pid = project_id(project)
    for tag in ["v1", "v2", "v3"]:
        push_distinct(project, "app", tag)
    sign_in(driver, "admin", ADMIN_PASSWORD)

    # Retention: add a rule, edit it, dry-run it, read the run's task and log.
    go(driver, f"/harbor/projects/{pid}/tag-strategy")
    assert "No retention rules" in body_text(driver)
    driver.find_element(By.ID, "rule_count").clear()
    driver.find_element(By.ID, "rule_count").send_keys("5")
    pattern = driver.find_element(By.ID, "rule_tag_pattern")
    pattern.clear()
    pattern.send_keys("v*")
    click(driver, button(driver, "Add retention rule"))
    assert "The retention rule was added." in body_text(driver), body_text(driver)
    assert "most recently pushed 5 artifacts" in driver.find_element(By.ID, "retention").text
    click(driver, driver.find_element(By.CSS_SELECTOR, "a[aria-label='Edit retention rule 1']"))
    count = driver.find_element(By.ID, "rule_count")
    assert count.get_attribute("value") == "5", count.get_attribute("value")
    count.clear()
    count.send_keys("1")
    shot(driver, "retention-edit")
    click(driver, button(driver, "Save retention rule"))
    assert "The retention rule was saved." in body_text(driver), body_text(driver)
    rules = driver.find_element(By.ID, "retention").text
    assert "most recently pushed 1 artifacts" in rules and "tags matching v*" in rules, rules
    policy_id = api_ok("GET", f"/projects/{pid}")[0]["metadata"]["retention_id"]
    rule = api_ok("GET", f"/retentions/{policy_id}")[0]["rules"][0]
    assert rule["template"] == "latestPushedK" and rule["params"]["latestPushedK"] == 1, rule
    step("retention rule added and edited")
    click(driver, button(driver, "Dry run"))
    assert "The dry run was started." in body_text(driver)
    wait_for(driver, f"/harbor/projects/{pid}/tag-strategy",
             lambda d: "Success" in d.find_element(By.ID, "retention-runs").text, "the dry run")
    runs = driver.find_element(By.ID, "retention-runs").text
    assert "Yes" in runs, runs  # a dry run
    shot(driver, "retention-runs")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#retention-runs tbody a"))
    tasks = driver.find_element(By.ID, "retention-tasks").text
    assert f"{project}/app" in tasks, tasks
    cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#retention-tasks tbody td")]
    assert cells[2:4] == ["3", "1"], cells  # 3 artifacts, 1 retained
    shot(driver, "retention-tasks")
    click(driver, driver.find_element(By.CSS_SELECTOR, f"a[aria-label='Log of {project}/app']"))
    log = driver.find_element(By.ID, "task-log").text
    marks = sorted([c.strip() for c in line.split("|") if c.strip()][-1]
                   for line in log.splitlines() if "sha256:" in line)
    assert marks == ["DEL", "DEL", "RETAIN"], log
    shot(driver, "retention-log")
    out, _ = api_ok("GET", f"/projects/{project}/repositories/app/artifacts")
    assert len(out) == 3, "a dry run deletes nothing"
    step("retention dry run read in the browser")
    go(driver, f"/harbor/projects/{pid}/tag-strategy")
    cron = driver.find_element(By.ID, "retention_cron")
    cron.send_keys("0 0 4 * * *")
    click(driver, button(driver, "Save schedule"))
    assert "The schedule was saved." in body_text(driver), body_text(driver)
    assert api_ok("GET", f"/retentions/{policy_id}")[0]["trigger"]["settings"]["cron"] == "0 0 4 * * *"
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete retention rule 1']"), alert=True)
    assert "The retention rule was deleted." in body_text(driver)
    assert "No retention rules" in body_text(driver)
    step("retention schedule saved and rule deleted")

    # Garbage collection: a dry run now, its log; a schedule.
    go(driver, "/harbor/clearing-job/gc")
    driver.find_element(By.NAME, "dry_run").click()
    click(driver, button(driver, "Run garbage collection now"))
    assert "Garbage collection was started." in body_text(driver), body_text(driver)
    wait_for(driver, "/harbor/clearing-job/gc",
             lambda d: "Success" in d.find_element(By.ID, "history").text, "garbage collection")
    shot(driver, "gc")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#history tbody a"))
    log = driver.find_element(By.ID, "job-log").text
    assert "eligible for deletion" in log, log
    shot(driver, "gc-log")
    go(driver, "/harbor/clearing-job/gc")
    Select(driver.find_element(By.ID, "job_kind")).select_by_value("Custom")
    driver.find_element(By.ID, "job_cron").send_keys("0 0 3 * * 6")
    click(driver, button(driver, "Save schedule"))
    assert "The schedule was saved." in body_text(driver), body_text(driver)
    sched, _ = api_ok("GET", "/system/gc/schedule")
    assert sched["schedule"]["type"] == "Custom" and sched["schedule"]["cron"] == "0 0 3 * * 6", sched
    step("garbage collection run, log read and scheduled")

    go(driver, "/harbor/clearing-job/audit-log-purge")
    driver.find_element(By.NAME, "dry_run").click()
    click(driver, button(driver, "Run audit log purge now"))
    assert "The audit log purge was started." in body_text(driver), body_text(driver)
    wait_for(driver, "/harbor/clearing-job/audit-log-purge",
             lambda d: "Success" in d.find_element(By.ID, "history").text, "the purge")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#history tbody a"))
    assert driver.find_element(By.ID, "job-log").text.strip(), "an empty purge log"
    shot(driver, "purge-log")
    step("audit log purge run and log read")

    # Webhooks: edit the target and events, disable, read the deliveries.
    go(driver, f"/harbor/projects/{pid}/webhook")
    driver.find_element(By.ID, "hook_name").send_keys("ci")
    driver.find_element(By.ID, "hook_address").send_keys("http://127.0.0.1:9/hook")
    click(driver, button(driver, "Create webhook"))
    assert "The webhook was created." in body_text(driver)
    push_distinct(project, "app", "v4")
    click(driver, driver.find_element(By.LINK_TEXT, "ci"))
    wait_for(driver, driver.current_url.removeprefix(URL).split("?")[0],
             lambda d: len(d.find_elements(By.CSS_SELECTOR, "#webhook-runs tbody a")) > 0, "a delivery")
    hook_url = driver.current_url.removeprefix(URL).split("?")[0]
    assert "PUSH_ARTIFACT" in driver.find_element(By.ID, "webhook-runs").text
    click(driver, driver.find_element(By.CSS_SELECTOR, "#webhook-runs tbody a"))
    delivery = driver.current_url.removeprefix(URL)
    wait_for(driver, delivery, lambda d: has(d, "#webhook-tasks tbody a"), "a delivery task")
    shot(driver, "webhook-delivery")
    task_log = driver.find_element(By.CSS_SELECTOR, "#webhook-tasks tbody a").get_attribute("href").removeprefix(URL)
    # The endpoint refuses the connection: the attempt is logged.
    wait_for(driver, task_log, lambda d: d.find_element(By.ID, "task-log").text.strip() != "", "the delivery log")
    go(driver, hook_url)
    address = driver.find_element(By.ID, "hook_address")
    address.clear()
    address.send_keys("http://127.0.0.1:9/other")
    for box in driver.find_elements(By.CSS_SELECTOR, "input[name=event]"):
        if box.get_attribute("value") != "DELETE_ARTIFACT" and box.is_selected():
            box.click()
    click(driver, button(driver, "Save webhook"))
    assert "The webhook was saved." in body_text(driver), body_text(driver)
    click(driver, button(driver, "Disable webhook"))
    assert "The webhook was disabled." in body_text(driver), body_text(driver)
    hooks, _ = api_ok("GET", f"/projects/{pid}/webhook/policies")
    assert hooks[0]["targets"][0]["address"] == "http://127.0.0.1:9/other", hooks
    assert hooks[0]["event_types"] == ["DELETE_ARTIFACT"] and hooks[0]["enabled"] is False, hooks
    shot(driver, "webhook-edited")
    go(driver, f"/harbor/projects/{pid}/webhook")
    assert driver.find_element(By.CSS_SELECTOR, "#webhooks td.wide-only").text != "—", "no last trigger"
    step("webhook edited, disabled, deliveries read")

    # Robots: edit (description, permissions, disable), refresh the secret.
    go(driver, f"/harbor/projects/{pid}/robot-account")
    driver.find_element(By.ID, "robot_name").send_keys("puller")
    click(driver, button(driver, "Create robot account"))
    robot_name = driver.find_element(By.CSS_SELECTOR, "div.secret strong").text.removeprefix("Robot ").removesuffix(
        " was created.")
    click(driver, driver.find_element(By.LINK_TEXT, robot_name))
    description = driver.find_element(By.ID, "robot_description")
    description.send_keys("edited")
    driver.find_element(By.CSS_SELECTOR, "input[value='repository:push']").click()
    click(driver, button(driver, "Save robot account"))
    assert "The robot account was saved." in body_text(driver), body_text(driver)
    assert driver.find_element(By.CSS_SELECTOR, "input[value='repository:push']").is_selected()
    click(driver, button(driver, "Refresh secret"), alert=True)
    secret = driver.find_element(By.ID, "robot-secret").text
    assert secret, "no new secret shown"
    shot(driver, "robot-refreshed")
    with tempfile.TemporaryDirectory() as tmp:
        skopeo("copy", "--src-creds", f"{robot_name}:{secret}", "--src-tls-verify=false",
               f"docker://{HOST}/{project}/app:v4", f"oci:{tmp}/out:v4")
    driver.find_element(By.NAME, "disable").click()
    click(driver, button(driver, "Save robot account"))
    robots, _ = api_ok("GET", f"/robots?q=Level=project,ProjectID={pid}")
    robot = next(r for r in robots if r["name"] == robot_name)
    assert robot["disable"] is True and robot["description"] == "edited", robot
    step("robot edited and its secret refreshed")

    # Error pages keep the user's menu.
    for path in ["/harbor/no-such-page", "/harbor/projects/999999/repositories"]:
        go(driver, path)
        assert "Not found" in body_text(driver), body_text(driver)
        assert has(driver, "details.user summary"), f"{path}: no user menu"
    shot(driver, "not-found")
    console_errors(driver)  # the two 404s
    step("error pages keep the user menu")

    # Read-only mode: every page says so; project pages offer no writes.
    api_ok("PUT", "/configurations", {"read_only": True})
    try:
        go(driver, f"/harbor/projects/{pid}/tag-strategy")
        assert "read-only mode" in body_text(driver), body_text(driver)
        assert not has(driver, "main form[method=post]"), "a write offered in read-only mode"
        go(driver, artifact_page(project, pid))
        assert not has(driver, "#tag_name") and not has(driver, "main button.danger")
        shot(driver, "read-only")
    finally:
        api_ok("PUT", "/configurations", {"read_only": False})
    step("read-only mode offers no writes")

    errors = console_errors(driver)
    assert not errors, errors
    step("operations done")


def replication(driver):
    """A registry endpoint pointing at this berth itself (type harbor, the
    admin's credentials), a push rule copying one project's repository into
    another project, run in the browser: the execution succeeds, its task
    and log are read, the copy is found in the portal; the rule edited,
    then deleted."""
    source, target = "rsrc-" + suffix(), "rdst-" + suffix()
    for name in [source, target]:
        api_ok("POST", "/projects", {"project_name": name, "metadata": {"public": "false"}})
    push(source, "app", "v1")
    sign_in(driver, "admin", ADMIN_PASSWORD)

    go(driver, "/harbor/registries")
    Select(driver.find_element(By.ID, "reg_type")).select_by_value("harbor")
    driver.find_element(By.ID, "reg_name").send_keys("self")
    driver.find_element(By.ID, "reg_url").send_keys(URL)
    driver.find_element(By.ID, "reg_key").send_keys("admin")
    driver.find_element(By.ID, "reg_secret").send_keys(ADMIN_PASSWORD)
    click(driver, button(driver, "Create registry endpoint"))
    assert "The registry endpoint was created." in body_text(driver), body_text(driver)
    step("endpoint to this berth created")

    go(driver, "/harbor/replications")
    assert "No replication rules." in body_text(driver)
    click(driver, driver.find_element(By.LINK_TEXT, "New replication rule"))
    shot(driver, "replication-new")
    driver.find_element(By.ID, "rule_name").send_keys("copy-app")
    driver.find_element(By.ID, "rule_description").send_keys("into the other project")
    driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=push]").click()
    Select(driver.find_element(By.ID, "rule_registry")).select_by_visible_text(f"self ({URL})")
    driver.find_element(By.ID, "rule_name_filter").send_keys(f"{source}/**")
    driver.find_element(By.ID, "rule_tag_filter").send_keys("v*")
    Select(driver.find_element(By.ID, "rule_resource")).select_by_value("image")
    driver.find_element(By.ID, "rule_namespace").send_keys(target)
    Select(driver.find_element(By.ID, "rule_flattening")).select_by_value("1")
    Select(driver.find_element(By.ID, "rule_trigger")).select_by_value("manual")
    click(driver, button(driver, "Create replication rule"))
    assert "The replication rule was created." in body_text(driver), body_text(driver)
    rule_url = driver.current_url.removeprefix(URL).split("?")[0]
    rules, _ = api_ok("GET", "/replication/policies")
    rule = next(r for r in rules if r["name"] == "copy-app")
    assert rule["src_registry"]["id"] == 0 and rule["dest_registry"]["name"] == "self", rule
    assert rule["dest_namespace"] == target and rule["dest_namespace_replace_count"] == 1, rule
    kinds = sorted((f["type"], f["value"], f.get("decoration") or "") for f in rule["filters"])
    assert kinds == [("name", f"{source}/**", "matches"), ("resource", "image", ""), ("tag", "v*", "matches")], kinds
    go(driver, "/harbor/replications")
    listed = driver.find_element(By.ID, "replications").text
    assert "copy-app" in listed and "Push" in listed and "Local" in listed and target in listed, listed
    shot(driver, "replication-rules")
    step("replication rule created")

    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Replicate copy-app']"))
    assert "The replication was started." in body_text(driver), body_text(driver)
    def run_cells(d):
        return [c.text for c in d.find_elements(By.CSS_SELECTOR, "#replication-runs tbody tr:first-child td")]

    # The status cell (the header "Succeeded" holds "Succeed" too).
    wait_for(driver, rule_url, lambda d: run_cells(d)[1:2] in [["Succeed"], ["Failed"], ["Stopped"]],
             "the replication")
    cells = run_cells(driver)
    assert cells[1] == "Succeed" and cells[5:9] == ["1", "1", "0", "0"], cells  # total, succeeded, failed, stopped
    shot(driver, "replication-runs")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#replication-runs tbody a"))
    tasks = driver.find_element(By.ID, "replication-tasks").text
    assert f"{source}/app" in tasks and f"{target}/app" in tasks and "Succeed" in tasks, tasks
    shot(driver, "replication-tasks")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#replication-tasks tbody a"))
    log = driver.find_element(By.ID, "task-log").text
    assert log.strip(), "an empty task log"
    shot(driver, "replication-log")
    step("replication run, task and log read")

    go(driver, f"/harbor/projects/{project_id(target)}/repositories")
    assert f"{target}/app" in driver.find_element(By.ID, "repositories").text, body_text(driver)
    click(driver, driver.find_element(By.LINK_TEXT, f"{target}/app"))
    assert "v1" in body_text(driver), body_text(driver)
    shot(driver, "replication-copy")
    step("replicated image found in the other project")

    go(driver, rule_url)
    assert driver.find_element(By.ID, "rule_namespace").get_attribute("value") == target
    description = driver.find_element(By.ID, "rule_description")
    description.clear()
    description.send_keys("edited")
    Select(driver.find_element(By.ID, "rule_flattening")).select_by_value("-1")
    Select(driver.find_element(By.ID, "rule_tag_decoration")).select_by_value("excludes")
    Select(driver.find_element(By.ID, "rule_trigger")).select_by_value("scheduled")
    driver.find_element(By.ID, "rule_cron").send_keys("0 0 5 * * *")
    speed = driver.find_element(By.ID, "rule_speed")
    speed.clear()
    speed.send_keys("1024")
    driver.find_element(By.NAME, "enabled").click()
    click(driver, button(driver, "Save replication rule"))
    assert "The replication rule was saved." in body_text(driver), body_text(driver)
    rule, _ = api_ok("GET", f"/replication/policies/{rule['id']}")
    assert rule["description"] == "edited" and rule["dest_namespace_replace_count"] == -1, rule
    assert rule["trigger"]["type"] == "scheduled" and rule["trigger"]["trigger_settings"]["cron"] == "0 0 5 * * *", rule
    assert rule["speed"] == 1024 and rule["enabled"] is False, rule
    assert any(f["type"] == "tag" and f["decoration"] == "excludes" for f in rule["filters"]), rule
    assert Select(driver.find_element(By.ID, "rule_flattening")).first_selected_option.get_attribute("value") == "-1"
    shot(driver, "replication-edited")
    # A bad cron is the API's refusal, shown on the page.
    cron = driver.find_element(By.ID, "rule_cron")
    cron.clear()
    cron.send_keys("not a cron")
    click(driver, button(driver, "Save replication rule"))
    assert has(driver, "p.error"), body_text(driver)
    step("replication rule edited")

    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete copy-app']"), alert=True)
    assert "The replication rule was deleted." in body_text(driver), body_text(driver)
    assert "No replication rules." in body_text(driver)
    errors = console_errors(driver)
    assert not errors, errors
    step("replication done")


def preheat(driver):
    """A Dragonfly instance (its endpoint answers nothing: the test shows
    the failure), edited; a project's preheat policy created, listed,
    edited and deleted; the instance deleted."""
    project = "p2p-" + suffix()
    api_ok("POST", "/projects", {"project_name": project, "metadata": {"public": "false"}})
    pid = project_id(project)
    sign_in(driver, "admin", ADMIN_PASSWORD)

    go(driver, "/harbor/distribution/instances")
    assert "No preheat provider instances." in body_text(driver)
    Select(driver.find_element(By.ID, "inst_vendor")).select_by_value("dragonfly")
    driver.find_element(By.ID, "inst_name").send_keys("df")
    driver.find_element(By.ID, "inst_description").send_keys("the cluster's dragonfly")
    driver.find_element(By.ID, "inst_endpoint").send_keys("http://127.0.0.1:9")
    Select(driver.find_element(By.ID, "inst_auth")).select_by_value("BASIC")
    driver.find_element(By.ID, "inst_username").send_keys("df-user")
    driver.find_element(By.ID, "inst_password").send_keys("df-secret")
    click(driver, button(driver, "Create instance"))
    assert "The instance was created." in body_text(driver), body_text(driver)
    listed = driver.find_element(By.ID, "instances").text
    assert "df" in listed and "http://127.0.0.1:9" in listed and "dragonfly" in listed and "BASIC" in listed, listed
    shot(driver, "preheat-instances")
    step("preheat instance created")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Test connection to df']"))
    error = driver.find_element(By.CSS_SELECTOR, "p.error").text
    assert "The connection failed" in error and "not healthy" in error, error
    shot(driver, "preheat-ping-failed")
    step("preheat instance ping failure shown")
    click(driver, driver.find_element(By.LINK_TEXT, "df"))
    description = driver.find_element(By.ID, "inst_description")
    description.clear()
    description.send_keys("edited")
    driver.find_element(By.NAME, "default").click()
    click(driver, button(driver, "Save instance"))
    assert "The instance was saved." in body_text(driver), body_text(driver)
    inst, _ = api_ok("GET", "/p2p/preheat/instances/df")
    assert inst["description"] == "edited" and inst["default"] is True, inst
    assert inst["auth_mode"] == "BASIC" and inst["auth_info"]["username"] == "df-user", inst
    step("preheat instance edited, its secret kept")

    go(driver, f"/harbor/projects/{pid}/p2p-provider")
    assert "No preheat policies." in body_text(driver)
    driver.find_element(By.ID, "policy_name").send_keys("warm")
    driver.find_element(By.ID, "policy_description").send_keys("warm the nodes")
    provider = Select(driver.find_element(By.ID, "policy_provider"))
    assert provider.first_selected_option.get_attribute("value") == str(inst["id"]), "the default instance not chosen"
    provider.select_by_value(str(inst["id"]))
    repos = driver.find_element(By.ID, "policy_repos")
    repos.clear()
    repos.send_keys("app/**")
    tags = driver.find_element(By.ID, "policy_tags")
    tags.clear()
    tags.send_keys("v*")
    driver.find_element(By.ID, "policy_labels").send_keys("hot")
    Select(driver.find_element(By.ID, "policy_severity")).select_by_value("4")
    Select(driver.find_element(By.ID, "policy_trigger")).select_by_value("event_based")
    click(driver, button(driver, "Create preheat policy"))
    assert "The preheat policy was created." in body_text(driver), body_text(driver)
    listed = driver.find_element(By.ID, "preheat-policies").text
    assert "warm" in listed and "df" in listed and "On push" in listed and "app/**" in listed, listed
    shot(driver, "preheat-policies")
    policy, _ = api_ok("GET", f"/projects/{project}/preheat/policies/warm")
    filters = {f["type"]: f["value"] for f in json.loads(policy["filters"])}
    assert filters == {"repository": "app/**", "tag": "v*", "label": "hot", "vulnerability": 4}, filters
    assert json.loads(policy["trigger"])["type"] == "event_based", policy
    step("preheat policy created and listed")

    # Run it: the instance answers nothing, so the run fails; its task and
    # log say why.
    push(project, "app", "v1")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Execute warm']"))
    assert "The preheat was started." in body_text(driver), body_text(driver)
    policy_url = driver.current_url.removeprefix(URL).split("?")[0]

    def run_status(d):
        cells = [c.text for c in d.find_elements(By.CSS_SELECTOR, "#preheat-runs tbody tr:first-child td")]
        return cells[1] if len(cells) > 1 else ""

    wait_for(driver, policy_url, lambda d: run_status(d) in ["Success", "Error", "Stopped"], "the preheat", 120)
    assert run_status(driver) == "Error", body_text(driver)
    shot(driver, "preheat-runs")
    click(driver, driver.find_element(By.CSS_SELECTOR, "#preheat-runs tbody a"))
    tasks = driver.find_element(By.ID, "preheat-tasks").text
    assert "Error" in tasks and "not healthy" in tasks, tasks
    click(driver, driver.find_element(By.CSS_SELECTOR, "#preheat-tasks tbody a"))
    # The job writes no log line when the health check fails (the reason is
    # the task's message, above): the page says the log is empty.
    assert has(driver, "#task-log") and "Log of task" in body_text(driver), body_text(driver)
    assert "The log is empty." in body_text(driver), body_text(driver)
    shot(driver, "preheat-task-log")
    step("preheat run, its task and log read")
    go(driver, f"/harbor/projects/{pid}/p2p-provider")

    click(driver, driver.find_element(By.LINK_TEXT, "warm"))
    assert driver.find_element(By.ID, "policy_repos").get_attribute("value") == "app/**"
    Select(driver.find_element(By.ID, "policy_trigger")).select_by_value("scheduled")
    driver.find_element(By.ID, "policy_cron").send_keys("0 0 2 * * *")
    Select(driver.find_element(By.ID, "policy_severity")).select_by_value("0")
    driver.find_element(By.ID, "policy_labels").clear()
    click(driver, button(driver, "Save preheat policy"))
    assert "The preheat policy was saved." in body_text(driver), body_text(driver)
    policy, _ = api_ok("GET", f"/projects/{project}/preheat/policies/warm")
    trigger = json.loads(policy["trigger"])
    assert trigger["type"] == "scheduled" and trigger["trigger_setting"]["cron"] == "0 0 2 * * *", policy
    assert {f["type"] for f in json.loads(policy["filters"])} == {"repository", "tag"}, policy
    shot(driver, "preheat-policy-edited")
    step("preheat policy edited")

    # The instance a policy uses is not deleted: the API's refusal shows.
    go(driver, "/harbor/distribution/instances")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete df']"), alert=True)
    assert has(driver, "p.error"), body_text(driver)
    go(driver, f"/harbor/projects/{pid}/p2p-provider")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete warm']"), alert=True)
    assert "The preheat policy was deleted." in body_text(driver), body_text(driver)
    assert "No preheat policies." in body_text(driver)
    go(driver, "/harbor/distribution/instances")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Delete df']"), alert=True)
    assert "The instance was deleted." in body_text(driver), body_text(driver)
    assert "No preheat provider instances." in body_text(driver)
    step("preheat policy and instance deleted")
    errors = console_errors(driver)
    assert not errors, errors
    step("preheat done")


def administration(driver):
    """A system robot edited, its secret refreshed and used, then disabled;
    registry endpoints created, tested (working and failing), edited and
    deleted; a configuration value changed and kept; a scan of everything
    run."""
    project = "adm-" + suffix()
    api_ok("POST", "/projects", {"project_name": project, "metadata": {"public": "false"}})
    push(project, "app", "v1")
    sign_in(driver, "admin", ADMIN_PASSWORD)

    # A system robot: edit, refresh its secret, pull with it, disable it.
    go(driver, "/harbor/robot-accounts")
    driver.find_element(By.ID, "robot_name").send_keys("fleet")
    click(driver, button(driver, "Create robot account"))
    robot_name = driver.find_element(By.CSS_SELECTOR, "div.secret strong").text.removeprefix("Robot ").removesuffix(
        " was created.")
    click(driver, driver.find_element(By.LINK_TEXT, robot_name))
    assert driver.find_element(By.NAME, "pull").is_selected() and not driver.find_element(By.NAME, "push").is_selected()
    driver.find_element(By.ID, "robot_description").send_keys("the fleet's puller")
    days = driver.find_element(By.ID, "robot_days")
    days.clear()
    days.send_keys("-1")
    driver.find_element(By.NAME, "push").click()
    click(driver, button(driver, "Save robot account"))
    assert "The robot account was saved." in body_text(driver), body_text(driver)
    assert driver.find_element(By.NAME, "push").is_selected()
    assert "repository:push" in driver.find_element(By.ID, "robot-permissions").text
    robots, _ = api_ok("GET", "/robots?q=Level=system")
    robot = next(r for r in robots if r["name"] == robot_name)
    actions = sorted(a["action"] for p in robot["permissions"] if p["namespace"] == "*" for a in p["access"])
    assert robot["description"] == "the fleet's puller" and robot["duration"] == -1 and actions == ["pull", "push"], robot
    click(driver, button(driver, "Refresh secret"), alert=True)
    secret = driver.find_element(By.ID, "robot-secret").text
    assert secret, "no new secret shown"
    shot(driver, "system-robot-refreshed")
    with tempfile.TemporaryDirectory() as tmp:
        skopeo("copy", "--src-creds", f"{robot_name}:{secret}", "--src-tls-verify=false",
               f"docker://{HOST}/{project}/app:v1", f"oci:{tmp}/out:v1")
    driver.find_element(By.NAME, "disable").click()
    click(driver, button(driver, "Save robot account"))
    assert "Enabled: No" in body_text(driver), body_text(driver)
    robot = next(r for r in api_ok("GET", "/robots?q=Level=system")[0] if r["name"] == robot_name)
    assert robot["disable"] is True, robot
    step("system robot edited, its secret refreshed and used")

    # Registry endpoints: one that works (this berth), one that does not.
    go(driver, "/harbor/registries")
    assert "No registry endpoints." in body_text(driver)
    for name, kind, url in [("here", "harbor", URL), ("nowhere", "docker-registry", "http://127.0.0.1:9")]:
        Select(driver.find_element(By.ID, "reg_type")).select_by_value(kind)
        driver.find_element(By.ID, "reg_name").send_keys(name)
        driver.find_element(By.ID, "reg_url").send_keys(url)
        driver.find_element(By.ID, "reg_key").send_keys("admin")
        driver.find_element(By.ID, "reg_secret").send_keys(ADMIN_PASSWORD)
        click(driver, button(driver, "Create registry endpoint"))
        assert "The registry endpoint was created." in body_text(driver), body_text(driver)
    listed = driver.find_element(By.ID, "registries").text
    assert "here" in listed and "nowhere" in listed and "docker-registry" in listed, listed
    shot(driver, "registries")
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Test connection to here']"))
    assert "the connection works" in body_text(driver), body_text(driver)
    click(driver, driver.find_element(By.CSS_SELECTOR, "button[aria-label='Test connection to nowhere']"))
    error = driver.find_element(By.CSS_SELECTOR, "p.error").text
    assert "The connection failed" in error, error
    shot(driver, "registry-test-failed")
    click(driver, driver.find_element(By.LINK_TEXT, "here"))
    assert driver.find_element(By.ID, "reg_key").get_attribute("value") == "admin"
    description = driver.find_element(By.ID, "reg_description")
    description.send_keys("this very berth")
    click(driver, button(driver, "Save registry endpoint"))
    assert "The registry endpoint was saved." in body_text(driver), body_text(driver)
    assert driver.find_element(By.ID, "reg_description").get_attribute("value") == "this very berth"
    # The secret left empty was kept: the connection still works.
    click(driver, button(driver, "Test connection"))
    assert "the connection works" in body_text(driver), body_text(driver)
    for name in ["here", "nowhere"]:
        click(driver, driver.find_element(By.CSS_SELECTOR, f"button[aria-label='Delete {name}']"), alert=True)
        assert "The registry endpoint was deleted." in body_text(driver), body_text(driver)
    assert "No registry endpoints." in body_text(driver)
    step("registry endpoints created, tested, edited and deleted")

    # Configuration: a value changed is kept.
    go(driver, "/harbor/configs")
    lifetime = driver.find_element(By.ID, "cfg_token_expiration")
    assert lifetime.get_attribute("value") != "45"
    lifetime.clear()
    lifetime.send_keys("45")
    click(driver, button(driver, "Save configuration"))
    assert "The configuration was saved." in body_text(driver), body_text(driver)
    go(driver, "/harbor/configs")
    assert driver.find_element(By.ID, "cfg_token_expiration").get_attribute("value") == "45"
    assert api_ok("GET", "/configurations")[0]["token_expiration"]["value"] == 45
    click(driver, button(driver, "Save configuration"))
    assert "Nothing was changed." in body_text(driver), body_text(driver)
    lifetime = driver.find_element(By.ID, "cfg_token_expiration")
    lifetime.clear()
    lifetime.send_keys("soon")
    # The browser refuses text in a number field; the server too, without it.
    driver.execute_script("arguments[0].type = 'text'", lifetime)
    lifetime.clear()
    lifetime.send_keys("soon")
    click(driver, button(driver, "Save configuration"))
    assert "must be a whole number" in driver.find_element(By.CSS_SELECTOR, "p.error").text, body_text(driver)
    shot(driver, "configuration")
    step("configuration value changed and kept")

    # Scan all: run now and see the run's counts.
    go(driver, "/harbor/interrogation-services/vulnerability")
    assert "No scan of everything yet." in body_text(driver)
    click(driver, button(driver, "Scan all now"))
    assert "The scan of all artifacts was started." in body_text(driver), body_text(driver)
    wait_for(driver, "/harbor/interrogation-services/vulnerability",
             lambda d: "1 of 1 done" in d.find_element(By.ID, "scan-all-metrics").text, "the scan of everything")
    metrics = driver.find_element(By.ID, "scan-all-metrics").text
    assert "Manual" in metrics, metrics
    shot(driver, "scan-all")
    step("scan all run")
    errors = console_errors(driver)
    assert not errors, errors
    step("administration done")


def artifact_page(project, pid):
    arts, _ = api_ok("GET", f"/projects/{project}/repositories/app/artifacts")
    return f"/harbor/projects/{pid}/repositories/app/artifacts-tab/artifacts/{arts[0]['digest']}"


def oidc(driver):
    """Signs in through the OIDC provider (BERTH_TEST_OIDC_URL) in the
    browser: its button, its form, onboarding, the CLI secret."""
    provider = os.environ["BERTH_TEST_OIDC_URL"]
    go(driver, "/harbor/projects")
    assert "/account/sign-in" in driver.current_url, driver.current_url
    link = driver.find_element(By.PARTIAL_LINK_TEXT, "Sign in via mock")
    shot(driver, "oidc-sign-in")
    step("oidc button offered")
    click(driver, link)
    assert driver.current_url.startswith(provider), driver.current_url
    driver.find_element(By.NAME, "sub").send_keys("carol-sub")
    shot(driver, "oidc-provider")
    click(driver, driver.find_element(By.XPATH, "//button[text()='Authorize']"))
    # The mock provider's page asks a CDN for its stylesheet (no network
    # here): that is its noise, not berth's.
    noise = [e for e in console_errors(driver) if "cdn.jsdelivr.net" not in e["message"]]
    assert not noise, noise
    step("provider form completed")
    assert "/oidc-onboard" in driver.current_url, driver.current_url
    name = driver.find_element(By.ID, "username")
    assert name.get_attribute("value") == "carol", name.get_attribute("value")
    name.clear()
    name.send_keys("carol-o")
    shot(driver, "oidc-onboard")
    click(driver, button(driver, "Continue"))
    step("onboarded")
    assert driver.current_url.endswith("/harbor/projects"), driver.current_url
    assert driver.find_element(By.CSS_SELECTOR, "details.user summary").text.startswith("carol-o")
    shot(driver, "oidc-signed-in")
    step("oidc signed in")
    driver.find_element(By.CSS_SELECTOR, "details.user summary").click()
    click(driver, driver.find_element(By.LINK_TEXT, "CLI secret"))
    secret = driver.find_element(By.ID, "cli-secret").text
    assert len(secret) >= 8, secret
    # The secret is the user's password for registry clients (the API
    # takes it for listings, not for account changes).
    status, _, _ = api("GET", "/projects", user="carol-o", password=secret)
    assert status == 200, status
    status, _, _ = api("GET", "/projects", user="carol-o", password=secret + "x")
    assert status == 401, status
    shot(driver, "oidc-cli-secret")
    step("cli secret shown")
    errors = console_errors(driver)
    assert not errors, errors
    step("oidc done")


# What each role's project pages offer: the tabs and the actions.
ROLE_TABS = {
    "projectAdmin": {"repositories", "members", "labels", "p2p-provider", "tag-strategy", "robot-account", "webhook", "logs",
                     "configs"},
    "maintainer": {"repositories", "members", "labels", "tag-strategy", "robot-account", "webhook", "configs"},
    "developer": {"repositories", "members", "labels", "tag-strategy", "robot-account", "configs"},
    "guest": {"repositories", "members", "labels", "robot-account", "configs"},
    "limitedGuest": {"repositories", "configs"},
}
ROLE_ACTIONS = {
    "projectAdmin": {"add-member", "change-role", "remove-member", "create-robot", "delete-robot",
                     "delete-repository", "add-tag", "remove-tag", "delete-artifact", "save-configs",
                     "create-label", "delete-label", "add-artifact-label", "remove-artifact-label",
                     "create-immutable", "delete-immutable", "create-webhook", "delete-webhook", "delete-project",
                     "scan", "generate-sbom", "create-preheat-policy"},
    "maintainer": {"delete-repository", "add-tag", "remove-tag", "delete-artifact", "create-label", "delete-label",
                   "add-artifact-label", "remove-artifact-label", "create-immutable", "delete-immutable", "scan",
                   "generate-sbom"},
    "developer": {"add-tag", "add-artifact-label", "remove-artifact-label"},
    "guest": set(),
    "limitedGuest": set(),
}
ROLE_IDS = {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limitedGuest": 5}


def offered(driver, pid, artifact_path):
    """The tabs and the actions the project pages offer the signed-in user."""
    go(driver, f"/harbor/projects/{pid}/repositories")
    tabs = {a.get_attribute("href").rsplit("/", 1)[1] for a in driver.find_elements(By.CSS_SELECTOR, "ul.tabs a")}
    actions = set()
    if has(driver, "#repositories button[aria-label^='Delete']"):
        actions.add("delete-repository")
    go(driver, artifact_path)
    if has(driver, "#tag_name"):
        actions.add("add-tag")
    if has(driver, "button[aria-label^='Remove tag']"):
        actions.add("remove-tag")
    if has(driver, "form[action$='/delete'] button.danger") and has(driver, "input[name=confirm]"):
        actions.add("delete-artifact")
    if has(driver, "#label_id"):
        actions.add("add-artifact-label")
    for text, action in [("Scan now", "scan"), ("Generate SBOM", "generate-sbom")]:
        if driver.find_elements(By.XPATH, f"//button[text()='{text}']"):
            actions.add(action)
    if has(driver, "button[aria-label^='Remove label']"):
        actions.add("remove-artifact-label")
    for tab, checks in [
        ("members", [("#member_name", "add-member"), ("select[name=role_id]:not(#member_role)", "change-role"),
                     ("button[aria-label^='Remove']", "remove-member")]),
        ("robot-account", [("#robot_name", "create-robot"), ("#robots button[aria-label^='Delete']", "delete-robot")]),
        ("labels", [("#label_name", "create-label"), ("#labels button[aria-label^='Delete']", "delete-label")]),
        ("tag-strategy", [("#repo_pattern", "create-immutable"),
                          ("#immutability button[aria-label^='Delete']", "delete-immutable")]),
        ("p2p-provider", [("#policy_name", "create-preheat-policy")]),
        ("webhook", [("#hook_name", "create-webhook"), ("#webhooks button[aria-label^='Delete']", "delete-webhook")]),
        ("configs", [("form[action$='/configs'] button[type=submit]", "save-configs"),
                     ("form[action$='/delete'] button.danger", "delete-project")]),
    ]:
        go(driver, f"/harbor/projects/{pid}/{tab}")
        if tab not in tabs:
            # A tab not offered is refused when asked for by its address.
            assert "Not allowed" in body_text(driver) or not any(has(driver, c) for c, _ in checks), tab
            continue
        for css, action in checks:
            if has(driver, css):
                actions.add(action)
    return tabs, actions


def roles(driver):
    project = "roles-" + suffix()
    api_ok("POST", "/projects", {"project_name": project, "metadata": {"public": "false"}})
    pid = project_id(project)
    push(project, "app", "v1")
    arts, _ = api_ok("GET", f"/projects/{project}/repositories/app/artifacts")
    digest = arts[0]["digest"]
    api_ok("POST", "/robots", {"name": "r" + suffix(), "description": "", "duration": -1, "level": "project",
                               "permissions": [{"kind": "project", "namespace": project,
                                                "access": [{"resource": "repository", "action": "pull"}]}]})
    _, headers = api_ok("POST", "/labels", {"name": "reviewed", "color": "#000000", "scope": "p", "project_id": pid})
    label_id = int(headers["Location"].rsplit("/", 1)[1])
    api_ok("POST", f"/projects/{project}/repositories/app/artifacts/{digest}/labels", {"id": label_id})
    api_ok("POST", f"/projects/{pid}/immutabletagrules", {
        "action": "immutable", "template": "immutable_template",
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "release-*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "none/**"}]}})
    api_ok("POST", f"/projects/{pid}/webhook/policies", {
        "name": "hook", "enabled": False, "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook"}]})
    artifact_path = f"/harbor/projects/{pid}/repositories/app/artifacts-tab/artifacts/{digest}"
    users = {}
    for role, rid in ROLE_IDS.items():
        name = f"{role.lower()}-{suffix()}"
        users[role] = (name, create_user(name))
        api_ok("POST", f"/projects/{pid}/members", {"role_id": rid, "member_user": {"username": name}})
    for role in ["projectAdmin", "maintainer", "developer", "guest", "limitedGuest"]:
        name, password = users[role]
        sign_in(driver, name, password)
        tabs, actions = offered(driver, pid, artifact_path)
        go(driver, f"/harbor/projects/{pid}/repositories")
        shot(driver, f"role-{role}")
        assert tabs == ROLE_TABS[role], f"{role}: tabs {sorted(tabs)}, expected {sorted(ROLE_TABS[role])}"
        assert actions == ROLE_ACTIONS[role], f"{role}: actions {sorted(actions)}, expected {sorted(ROLE_ACTIONS[role])}"
        step(f"role {role} offered exactly its actions")
        sign_out(driver)
    step("roles done")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    for old in os.listdir(SHOTS):
        if old.startswith(SCENARIO + "-"):
            os.remove(os.path.join(SHOTS, old))
    driver = browser()
    try:
        {"journey": journey, "hostile": hostile, "roles": roles, "operations": operations,
         "oidc": oidc, "replication": replication,
         "preheat": preheat, "administration": administration}[SCENARIO](driver)
    except Exception:
        try:
            shot(driver, "failure")
            step(f"failed at {driver.current_url}")
        except Exception:
            pass
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
