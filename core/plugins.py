"""The plugin host: one pluggy PluginManager per app, plus per-provider enabling.

Built-in features are registered like any plugin (``trylast`` implementations),
third-party plugins load from the entry-point group ``kassa``. A plugin that
fails to import or declares a hook that does not exist is recorded as broken and
left out; the app still starts. Two plugins declaring the same gateway (tax
engine, renderer, dunning phase) id stop start-up with a message naming both.
Which plugins run for a provider is a database row, read on every call, so
enabling takes effect without a restart.
"""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points, version as dist_version

import pluggy
from flask import current_app

from . import hookspecs

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "kassa"

#: built-in plugins: (name, module, required). Required ones cannot be disabled.
BUILTINS = (
    ("builtin.offline", "kassa.builtin.offline", True),
    ("builtin.maintenance", "kassa.builtin.maintenance", True),
    ("builtin.tax_rules", "kassa.builtin.tax_rules", False),
    ("builtin.billing", "kassa.builtin.billing", True),
    ("builtin.payments", "kassa.builtin.payments", True),
    ("builtin.pdf", "kassa.builtin.pdf_renderer", False),
    ("builtin.csv", "kassa.builtin.csv_renderer", False),
    ("builtin.email", "kassa.builtin.email", False),
)


class PluginConflictError(RuntimeError):
    """Two plugins claim the same id; Kassa refuses to start."""


@dataclass
class PluginRecord:
    name: str
    distribution: str
    version: str
    builtin: bool
    required: bool = False
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def broken(self) -> bool:
        return self.error is not None


class PluginHost:
    def __init__(self):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        for spec in hookspecs.SPEC_CLASSES:
            self.pm.add_hookspecs(spec)
        self.records: dict[str, PluginRecord] = {}

    # ------------------------------------------------------------ loading

    def register(self, plugin, name: str, *, builtin: bool, distribution: str = "kassa",
                 version: str = "", required: bool = False) -> PluginRecord:
        record = PluginRecord(name=name, distribution=distribution, version=version, builtin=builtin,
                              required=required, description=_first_line(getattr(plugin, "__doc__", "")))
        self.records[name] = record
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validation: wrong argument names and the like
            record.error = f"{type(exc).__name__}: {exc}"
            log.error("plugin %s refused: %s", name, record.error)
            return record
        unknown = [c.name for c in self.pm.get_hookcallers(plugin) or () if not c.has_spec()]
        if unknown:
            self.pm.unregister(plugin)
            record.error = "Implements hooks that do not exist (misspelt?): " + ", ".join(sorted(unknown))
            if builtin:
                raise PluginConflictError(f"Built-in plugin {name}: {record.error}")
            log.error("plugin %s refused: %s", name, record.error)
            return record
        record.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or ())
        return record

    def load_builtins(self) -> None:
        version = _dist_version("kassa")
        for name, module, required in BUILTINS:
            self.register(import_module(module), name, builtin=True, version=version, required=required)

    def load_entrypoints(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self.records:
                continue
            dist = ep.dist.name if ep.dist else ep.value
            ver = ep.dist.version if ep.dist else ""
            try:
                plugin = ep.load()
            except Exception as exc:
                self.records[ep.name] = PluginRecord(
                    name=ep.name, distribution=dist, version=ver, builtin=False,
                    error=f"Import failed: {type(exc).__name__}: {exc}",
                )
                log.error("plugin %s failed to import:\n%s", ep.name, traceback.format_exc())
                continue
            self.register(plugin, ep.name, builtin=False, distribution=dist, version=ver)

    def finish(self) -> None:
        """Final start-up checks: no hook without a spec, no duplicate ids."""
        self.pm.check_pending()
        for hook_name, (label, attr) in hookspecs.LISTING_HOOKS.items():
            owners: dict[str, str] = {}
            for plugin_name, items in self.call_each(hook_name):
                for item in items or ():
                    key = getattr(item, attr)
                    if key in owners and owners[key] != plugin_name:
                        raise PluginConflictError(
                            f"The {label} id {key!r} is declared by both plugin "
                            f"{owners[key]!r} and plugin {plugin_name!r}; uninstall or rename one."
                        )
                    owners[key] = plugin_name

    # ------------------------------------------------------------ calling

    def plugin_object(self, name: str):
        return self.pm.get_plugin(name)

    def call_each(self, hook_name: str, names: set[str] | None = None, **kwargs):
        """Call one hook on each plugin separately: [(plugin name, result)]."""
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if names is not None and impl.plugin_name not in names:
                continue
            results.append((impl.plugin_name, impl.function(**kwargs)))
        return results

    def hooks(self, provider_id: int | None):
        """The hook relay for a provider: disabled plugins are left out of every call."""
        if provider_id is None:
            return self.pm.hook
        from .services.cache import memo

        def relay():
            enabled = self.enabled_names(provider_id)
            remove = [self.pm.get_plugin(n) for n in self.records if n not in enabled and self.pm.get_plugin(n)]
            return _Relay(self.pm, remove)

        return memo(("plugins", "relay", provider_id), relay)

    def enabled_names(self, provider_id: int) -> set[str]:
        from .services.cache import memo
        from .services.plugin_settings import enabled_plugin_names

        return memo(("plugins", provider_id), lambda: enabled_plugin_names(provider_id, self))

    def forget_cache(self) -> None:
        from .services.cache import forget

        forget("plugins", "context")

    def owner(self, hook_name: str, item_id: str) -> str | None:
        attr = hookspecs.LISTING_HOOKS[hook_name][1]
        for plugin_name, items in self.call_each(hook_name):
            if any(getattr(i, attr) == item_id for i in items or ()):
                return plugin_name
        return None

    def listing(self, hook_name: str, provider_id: int | None = None):
        names = self.enabled_names(provider_id) if provider_id is not None else None
        return [item for _, items in self.call_each(hook_name, names) for item in items or ()]


class _Relay:
    """The hooks of one provider: each hook caller leaves out the disabled plugins."""

    def __init__(self, pm: pluggy.PluginManager, remove: list):
        self._pm = pm
        self._remove = remove
        self._callers: dict = {}

    def __getattr__(self, name: str):
        if not self._remove:
            return getattr(self._pm.hook, name)
        if name not in self._callers:
            self._callers[name] = self._pm.subset_hook_caller(name, remove_plugins=self._remove)
        return self._callers[name]


def _dist_version(name: str) -> str:
    try:
        return dist_version(name)
    except Exception:
        return ""


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def build_host(app) -> PluginHost:
    host = PluginHost()
    host.load_builtins()
    for plugin, name in app.config.get("KASSA_EXTRA_PLUGINS", ()):
        host.register(plugin, name, builtin=False, distribution="(test)", version="")
    if app.config.get("KASSA_LOAD_ENTRYPOINTS", True):
        host.load_entrypoints()
    host.finish()
    return host


def host() -> PluginHost:
    return current_app.extensions["kassa_plugins"]
