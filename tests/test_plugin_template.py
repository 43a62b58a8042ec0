"""`kassa plugin new`: every kind makes a plugin that passes its own tests and the
conformance kit as generated, and the guide's path for a new developer works end
to end in a throwaway virtual environment (create, test, install, enable, configure)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kassa.cli import main
from kassa.cli_plugin import KINDS, TEMPLATES, create_plugin

REPO = Path(__file__).resolve().parents[1]


def clean_env(**extra) -> dict:
    """The environment for a child process: none of this run's database, Redis or Kassa settings
    (the generated suite builds its own SQLite schema; it must never drop this run's tables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KASSA_", "PYTEST_", "FLASK_"))}
    env.update(extra)
    return env


def register_without_installing(plugin_dir: Path, name: str, site: Path) -> dict:
    """What ``pip install -e`` does, without pip: the package on the path and a dist-info
    with the ``kassa`` entry point, so Kassa's host loads the plugin like an installed one."""
    info = site / f"kassa_{name}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: kassa-{name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[kassa]\n{name} = kassa_{name}.plugin\n")
    return clean_env(PYTHONPATH=os.pathsep.join([str(site), str(plugin_dir)]))


def run_suite(python: str, plugin_dir: Path, env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-P", "-m", "pytest", "-v", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
                          cwd=plugin_dir, env=env, capture_output=True, text=True, timeout=600)


def passed(output: str) -> list[str]:
    return re.findall(r"^(\S+::\S+) PASSED", output, re.M)


# ---------------------------------------------------------------- the command


@pytest.mark.parametrize("name", ["Acme", "a", "acme-pay", "1pay", "acme__pay", "pay_", "class", "x" * 41])
def test_bad_names_are_refused_and_nothing_is_written(tmp_path, name):
    result = CliRunner().invoke(main, ["plugin", "new", name, "--kind", "gateway", "--directory", str(tmp_path)])
    assert result.exit_code != 0 and "Invalid plugin name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_and_an_unknown_kind_are_refused(tmp_path):
    (tmp_path / "acmepay").mkdir()
    result = CliRunner().invoke(main, ["plugin", "new", "acmepay", "--kind", "gateway", "--directory", str(tmp_path)])
    assert result.exit_code != 0 and "already exists" in result.output
    assert list((tmp_path / "acmepay").iterdir()) == []
    result = CliRunner().invoke(main, ["plugin", "new", "acmetax", "--kind", "vat", "--directory", str(tmp_path)])
    assert result.exit_code != 0 and "'vat' is not one of" in result.output


@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_folder_is_an_installable_plugin(tmp_path, kind):
    result = CliRunner().invoke(main, ["plugin", "new", "acme_pay", "--kind", kind, "--directory", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "acme_pay"
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "kassa-acme-pay"
    assert any(dep.startswith("kassa") for dep in project["dependencies"])
    assert project["entry-points"]["kassa"] == {"acme_pay": "kassa_acme_pay.plugin"}
    assert any(dep.startswith("pytest") for dep in project["optional-dependencies"]["test"])
    for path in ("README.md", "kassa_acme_pay/__init__.py", "kassa_acme_pay/plugin.py", "tests/test_conformance.py",
                 "tests/test_acme_pay.py"):
        assert (root / path).is_file(), path
    assert not [p for p in root.rglob("*") if p.is_file() and "[[" in p.read_text()], "unrendered placeholders"
    plugin = (root / "kassa_acme_pay" / "plugin.py").read_text()
    assert "@hookimpl" in plugin
    assert "def kassa_settings_form" in plugin or kind == "renderer"  # a renderer needs no settings
    compile(plugin, "plugin.py", "exec")


def test_the_templates_ship_as_package_data():
    """pyproject's package-data globs (relative to core/) cover every template file, so
    ``pip install kassa`` (not only a checkout) can run ``kassa plugin new``."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["kassa"]
    core = REPO / "core"
    shipped = {p for pattern in patterns for p in core.glob(pattern) if p.is_file()}
    templates = {p for p in TEMPLATES.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert templates and templates <= shipped, sorted(str(p) for p in templates - shipped)


# ---------------------------------------------------------------- the generated suites


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_passes_its_own_tests_and_the_conformance_kit(tmp_path, kind):
    name = f"acme_{kind}"
    plugin_dir = create_plugin(name, kind, tmp_path / "src")
    env = register_without_installing(plugin_dir, name, tmp_path / "site")
    done = run_suite(sys.executable, plugin_dir, env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    ok = passed(done.stdout)
    assert sum("TestConformance::" in t for t in ok) >= 3, ok
    assert any(f"test_{name}.py::" in t for t in ok), ok


def test_the_generated_tests_catch_a_gateway_that_drops_the_idempotency_key(tmp_path):
    plugin_dir = create_plugin("acmepay", "gateway", tmp_path / "src")
    client = plugin_dir / "kassa_acmepay" / "client.py"
    source = client.read_text()
    honest = 'headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}'
    assert honest in source
    client.write_text(source.replace(honest, "headers = {}"))
    done = run_suite(sys.executable, plugin_dir, register_without_installing(plugin_dir, "acmepay", tmp_path / "site"),
                     "tests/test_conformance.py")
    assert done.returncode != 0
    assert "test_the_same_idempotency_key_twice_is_one_charge FAILED" in done.stdout, done.stdout[-3000:]


# ---------------------------------------------------------------- the new developer, end to end

CONSOLE_SCRIPT = r'''
"""Run by the throwaway venv's python: the console as an admin uses it, through the real forms."""
import importlib.util, json, re, sys
from kassa import create_app

plugin_dir, email, password = sys.argv[1:4]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
app = create_app()
client = app.test_client()
seen = {}


def token(page):
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def text(response):
    return response.get_data(as_text=True)


login = client.get("/login")
answer = client.post("/login", data={"email": email, "password": password, "csrf_token": token(text(login))})
assert answer.status_code == 302, text(answer)[:500]

page = text(client.get("/plugins"))
row = re.search(r'<tr id="plugin-acmepay">.*?</tr>', page, re.S).group(0)
seen["listed"] = "kassa-acmepay" in row and "Disabled" in row
answer = client.post("/plugins/acmepay/toggle", data={"enabled": "1", "csrf_token": token(page)})
assert answer.status_code == 302
row = re.search(r'<tr id="plugin-acmepay">.*?</tr>', text(client.get("/plugins")), re.S).group(0)
seen["enabled"] = "Enabled" in row and "/plugins/acmepay/settings" in row

spec = importlib.util.spec_from_file_location("acmepay_fake_api", plugin_dir + "/tests/conftest.py")
fake_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake_module)
with fake_module.FakeAcmepayApi() as api:
    form_page = text(client.get("/plugins/acmepay/settings"))
    seen["secret_inputs"] = sorted(re.findall(r'<input[^>]*type="password"[^>]*name="(\w+)"', form_page)
                                   + re.findall(r'<input[^>]*name="(\w+)"[^>]*type="password"', form_page))
    values = dict(api.settings, csrf_token=token(form_page))
    bad = client.post("/plugins/acmepay/settings", data=dict(values, api_base="not a url"))
    seen["bad_url_status"] = bad.status_code
    answer = client.post("/plugins/acmepay/settings", data=values)
    assert answer.status_code == 302, text(answer)[:2000]
    form_page = text(client.get("/plugins/acmepay/settings"))
    seen["key_shown_in_clear"] = api.settings["api_key"] in form_page

    billing = text(client.get("/billing/configurations"))
    section = billing[billing.index('id="payment-gateways"'):]
    gateway_row = re.search(r"<tr><td><strong>Acmepay</strong>.*?</tr>", section, re.S)
    seen["gateway_offered"] = bool(gateway_row) and "Enabled" in gateway_row.group(0)
    answer = client.post("/billing/gateways/acmepay/verify", data={"csrf_token": token(billing)},
                         follow_redirects=True)
    seen["verify_message"] = re.findall(r"acmepay: [^<]*", text(answer))
    seen["verify_calls"] = [r.path for r in api.server.requests]
print("RESULT " + json.dumps(seen))
'''


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


@pytest.mark.slow
def test_a_new_developer_builds_installs_and_enables_a_gateway(tmp_path):
    """docs/plugins.md's walk-through, step by step, in a fresh virtual environment that
    sees the installed Kassa (like ``pip install kassa`` would) and nothing of this test run."""
    started = time.monotonic()
    steps = {}

    def step(label, args, **kw):
        began = time.monotonic()
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                              env=kw.pop("env", env), cwd=kw.pop("cwd", work), **kw)
        steps[label] = round(time.monotonic() - began, 1)
        assert done.returncode == 0, f"{label} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done

    # 1. A virtual environment with Kassa installed: a new venv that also sees this one's site-packages.
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = _venv_python(venv)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_kassa_parent.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    instance = tmp_path / "instance"
    env = clean_env(KASSA_INSTANCE_PATH=str(instance), KASSA_DATABASE_URL=f"sqlite:///{instance / 'kassa.db'}",
                    KASSA_SECRET_KEY="e2e-secret-key", KASSA_PASSWORD_METHOD="pbkdf2:sha256:1000")

    step("db upgrade", [python, "-m", "kassa.cli", "db", "upgrade"])  # a fresh Kassa database

    # 2. kassa plugin new acmepay --kind gateway
    step("plugin new", [python, "-m", "kassa.cli", "plugin", "new", "acmepay", "--kind", "gateway"])
    plugin_dir = work / "acmepay"

    # 3. pip install it next to Kassa (no network: --no-index, dependencies already there).
    step("pip install", [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                         "--disable-pip-version-check", "--quiet", plugin_dir])
    where = step("installed", [python, "-P", "-c", "import kassa_acmepay, sys; print(kassa_acmepay.__file__)"])
    assert where.stdout.strip().startswith(purelib), where.stdout
    listed = step("plugins list", [python, "-m", "kassa.cli", "plugins", "list"])
    assert re.search(r"^acmepay\s+kassa-acmepay\s+0\.1\.0\s+installed", listed.stdout, re.M), listed.stdout

    # 4. The plugin's own tests and the conformance kit, against the installed copy.
    began = time.monotonic()
    suite = run_suite(str(python), plugin_dir, env)
    steps["plugin tests"] = round(time.monotonic() - began, 1)
    assert suite.returncode == 0, suite.stdout[-4000:] + suite.stderr[-2000:]
    assert sum("TestConformance::" in t for t in passed(suite.stdout)) >= 10, suite.stdout[-3000:]

    # 5. A provider and its first admin.
    made = step("provider", [python, "-c", "from kassa import create_app\nfrom kassa.services import orgs\n"
                             "with create_app().app_context():\n"
                             "    print(orgs.create_provider('Acme Cloud', 'US', email='billing@acme.example').id)"])
    provider_id = made.stdout.strip().splitlines()[-1]
    password = "long-enough-password-1"
    step("users create", [python, "-m", "kassa.cli", "users", "create", "--org-id", provider_id, "--email",
                          "admin@acme.example", "--name", "Ada Admin", "--role", "cloud_admin"],
         input=f"{password}\n{password}\n")

    # 6. The console: sign in, Plugins, enable, settings, the gateway offered and verified.
    script = tmp_path / "console.py"
    script.write_text(CONSOLE_SCRIPT)
    done = step("console", [python, script, plugin_dir, "admin@acme.example", password])
    seen = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert seen["listed"] and seen["enabled"], seen
    assert set(seen["secret_inputs"]) >= {"api_key", "webhook_secret"}, seen
    assert seen["bad_url_status"] == 422 and not seen["key_shown_in_clear"], seen
    assert seen["gateway_offered"], seen
    assert any("Connected to Acmepay" in m for m in seen["verify_message"]), seen
    assert seen["verify_calls"] == ["/v1/account"], seen
    total = round(time.monotonic() - started, 1)
    print(f"\nnew-developer walk-through: {total} s {steps}")
    assert total < 240, f"the walk-through took {total} s: {steps}"
