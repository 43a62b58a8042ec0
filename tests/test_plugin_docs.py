"""docs/plugins.md carries the hook reference and the contracts generated from the code,
and fails here as soon as a hook, a docstring or a contract changes without `kassa plugin docs`."""
import dataclasses
import re

import pytest
from click.testing import CliRunner

from kassa import contracts, hookspecs, plugin_docs
from kassa.cli import main

GUIDE = plugin_docs.DOCS_PATH


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_every_hook_is_in_the_reference(guide):
    block = plugin_docs.current_block()
    missing = [name for name in hookspecs.all_hook_names() if f"#### `{name}(" not in block]
    assert not missing, f"hooks missing from docs/plugins.md (run `kassa plugin docs`): {missing}"


def test_every_contract_is_in_the_reference(guide):
    block = plugin_docs.current_block()
    classes = [c.__name__ for c in plugin_docs.contract_classes() + plugin_docs.contract_exceptions()]
    dataclasses_in_module = {c.__name__ for c in vars(contracts).values() if isinstance(c, type)
                             and dataclasses.is_dataclass(c) and c.__module__ == contracts.__name__}
    assert dataclasses_in_module and dataclasses_in_module <= set(classes)
    missing = [name for name in classes if f"`{name}`" not in block]
    assert not missing, f"contracts missing from docs/plugins.md (run `kassa plugin docs`): {missing}"


def test_the_generated_block_is_what_the_code_says_now():
    assert plugin_docs.current_block() == plugin_docs.render_reference(), \
        "docs/plugins.md is out of date: run `kassa plugin docs`"


def test_a_changed_docstring_or_a_new_hook_makes_the_guide_stale(monkeypatch):
    assert plugin_docs.is_current()
    monkeypatch.setattr(hookspecs.GatewayHooks.kassa_gateway_charge, "__doc__", "Charge, differently.")
    assert not plugin_docs.is_current()
    monkeypatch.undo()

    class NewHooks:
        """New."""

        @hookspecs.hookspec
        def kassa_brand_new(self, thing):
            """A hook nobody documented."""

    monkeypatch.setattr(hookspecs, "SPEC_CLASSES", hookspecs.SPEC_CLASSES + (NewHooks,))
    assert "#### `kassa_brand_new(thing)`" in plugin_docs.render_reference()
    assert not plugin_docs.is_current()


def test_the_reference_says_what_each_hook_is():
    text = plugin_docs.render_hooks()
    charge = text[text.index("#### `kassa_gateway_charge(gateway, settings, charge)`"):]
    charge = charge[:charge.index("<a id=")]
    assert "**firstresult**" in charge and "[`ChargeRequest`](#contract-chargerequest)" in charge
    gateways = text[text.index("#### `kassa_gateways()`"):]
    assert gateways[:gateways.index("<a id=")].count("every enabled plugin") == 1
    contracts_md = plugin_docs.render_contracts()
    assert "| `redirect_url` | `str` | `''` | where the buyer approves (hosted gateways) |" in contracts_md
    assert "| `status` | `str` | required | one of CHARGE_STATUSES |" in contracts_md


def test_links_in_the_guide_point_at_anchors_that_exist(guide):
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', guide))
    for heading in re.findall(r"^#+ (.+)$", guide, re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-"))
    broken = sorted({target for target in re.findall(r"\]\(#([^)]+)\)", guide) if target not in anchors})
    assert not broken, broken


def test_cli_check_and_rewrite(tmp_path):
    stale = tmp_path / "plugins.md"
    head, block, tail = GUIDE.read_text(encoding="utf-8").partition(plugin_docs.current_block())
    stale.write_text(head + plugin_docs.BEGIN + "\nold\n" + plugin_docs.END + tail, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["plugin", "docs", "--check", "--file", str(stale)])
    assert result.exit_code == 1 and "out of date" in result.output
    result = runner.invoke(main, ["plugin", "docs", "--file", str(stale)])
    assert result.exit_code == 0 and "Updated" in result.output
    assert stale.read_text(encoding="utf-8") == GUIDE.read_text(encoding="utf-8")
    assert runner.invoke(main, ["plugin", "docs", "--check", "--file", str(stale)]).exit_code == 0
    stale.write_text("# no markers\n", encoding="utf-8")
    result = runner.invoke(main, ["plugin", "docs", "--file", str(stale)])
    assert result.exit_code != 0 and "markers" in result.output


def test_the_readme_links_the_guide():
    readme = (GUIDE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/plugins.md" in readme
