"""The plugin host: one pluggy PluginManager per app, plus per-provider enabling.

Built-in features are registered like any plugin (``trylast`` implementations),
third-party plugins load from the entry-point group ``kassa``. A plugin that
fails to import or declares a hook that does not exist is recorded as broken and
left out; the app still starts. Two plugins declaring the same gateway (tax
engine, renderer, dunning phase) id stop start-up with a message naming both.
Which plugins run for a provider is a database row, read on every call, so
enabling takes effect without a restart.

Isolation: every hook implementation of an installed (non built-in) plugin runs
inside a guard. An exception that is not part of the contract
(:data:`CONTRACT_EXCEPTIONS`) is logged with the plugin's name, recorded for the
Plugins page (:mod:`kassa.services.plugin_health`), and then either skipped
(collecting and notification hooks: the other plugins still run) or re-raised
as :class:`PluginFailure` (``firstresult`` action hooks: the action fails
cleanly). A plugin whose listing hook raises at start-up is marked broken.
"""
from __future__ import annotations

import functools
import logging
import traceback
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points, version as dist_version

import pluggy
from flask import current_app

from . import contracts, hookspecs
from .contracts import (ContractError, GatewayDeclined, GatewayUnavailable, ProviderContext, UnknownCountryError,
                        WebhookSignatureError)

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


#: Exceptions a plugin raises on purpose, as the hook specifications document: they
#: pass through the guard untouched and are not plugin failures (see :func:`is_contract_exception`).
CONTRACT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    GatewayDeclined, GatewayUnavailable, WebhookSignatureError, UnknownCountryError,
)
#: Gateway and tax hooks may also refuse a request with a ValueError saying what to fix
#: (an unknown card token: "refused before any money moved"; a state that is not one of
#: the country's: the invoice cannot be taxed): the core shows it as the request's error.
DATA_REFUSALS: tuple[type[BaseException], ...] = (ValueError,)
REFUSING_HOOKS = ("kassa_gateway_", "kassa_tax_")


def is_contract_exception(exc: BaseException, hook: str) -> bool:
    """Whether ``exc``, raised by a plugin's ``hook``, is part of the contract.

    A ``ContractError`` the plugin raises itself refuses a request it cannot serve
    (an amount finer than the currency); one raised while the plugin built a
    contract dataclass (inside :mod:`kassa.contracts`) is a malformed result, a failure.
    """
    if isinstance(exc, CONTRACT_EXCEPTIONS):
        return True
    if isinstance(exc, ContractError):
        return not _raised_in(exc, contracts.__name__)
    return hook.startswith(REFUSING_HOOKS) and isinstance(exc, DATA_REFUSALS)


def _raised_in(exc: BaseException, module: str) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__") == module


#: The provider a hook is being called for (set by the per-provider relay), so a
#: failure of a hook without a ``ctx`` argument is still shown to the right provider.
_calling_provider: ContextVar[int | None] = ContextVar("kassa_calling_provider", default=None)


class PluginConflictError(RuntimeError):
    """Two plugins claim the same id; Kassa refuses to start."""


class PluginFailure(RuntimeError):
    """A plugin raised something its hook does not allow; the action it served failed.

    ``str()`` names the plugin, the hook and the original error; the original is
    also ``__cause__``. Error pages show :attr:`public_message`, which does not
    repeat the plugin's exception text (it may carry secrets or internals).
    """

    def __init__(self, plugin: str, hook: str, original: BaseException):
        self.plugin, self.hook, self.original = plugin, hook, original
        super().__init__(f"Plugin {plugin!r} failed in {hook}: {type(original).__name__}: {original}")

    @property
    def error(self) -> str:
        return f"{type(self.original).__name__}: {self.original}"

    @property
    def public_message(self) -> str:
        return f"The plugin {self.plugin} failed; the administrator can see the error on the Plugins page."


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
        self._startup_failures: list[PluginFailure] | None = None

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
        if not builtin:
            self._guard(plugin)
        return record

    def _guard(self, plugin) -> None:
        """Put every hook implementation of ``plugin`` behind :func:`_guarded`.

        pluggy keeps the callable in ``HookImpl.function`` (a plain slot; its
        argument names were read at registration) and calls it positionally in
        the spec's order; :func:`functools.wraps` keeps ``__wrapped__`` for any
        later introspection. Built-ins are not guarded: they are core code, may
        raise the core's own errors (``ServiceError``) on purpose, and being
        ``trylast`` they run after every installed plugin anyway.
        """
        for caller in self.pm.get_hookcallers(plugin) or ():
            action = bool(caller.spec and caller.spec.opts.get("firstresult"))
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    impl.function = _guarded(self, impl.function, impl.plugin_name, caller.name, action)

    def failed(self, failure: PluginFailure, provider_id: int | None) -> None:
        """Record a failure: collected during :meth:`finish`, else kept for the Plugins page."""
        if self._startup_failures is not None:
            self._startup_failures.append(failure)
        from .services import plugin_health

        plugin_health.note(failure, provider_id)

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
        """Final start-up checks: no hook without a spec, no duplicate ids. A plugin
        whose listing hook raises is marked broken and left out; the app starts."""
        self.pm.check_pending()
        self._startup_failures = []
        try:
            listed = {hook_name: self.call_each(hook_name) for hook_name in hookspecs.LISTING_HOOKS}
        finally:
            failures, self._startup_failures = self._startup_failures, None
        for failure in failures:
            record = self.records.get(failure.plugin)
            if record is not None and not record.broken:
                record.error = f"Failed at start-up in {failure.hook}: {failure.error}"
            plugin = self.pm.get_plugin(failure.plugin)
            if plugin is not None:
                self.pm.unregister(plugin)
        broken = {f.plugin for f in failures}
        for hook_name, (label, attr) in hookspecs.LISTING_HOOKS.items():
            owners: dict[str, str] = {}
            for plugin_name, items in listed[hook_name]:
                if plugin_name in broken:
                    continue
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
            return _Relay(self.pm, remove, provider_id)

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
        token = _calling_provider.set(provider_id)
        try:
            return [item for _, items in self.call_each(hook_name, names) for item in items or ()]
        finally:
            _calling_provider.reset(token)


def _guarded(host: PluginHost, function, plugin: str, hook: str, action: bool):
    """``function`` (one plugin's implementation of ``hook``) with failures contained:
    logged and recorded, then re-raised as :class:`PluginFailure` for an ``action``
    hook or answered with ``None`` (skipped) for a collecting or notification hook."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if is_contract_exception(exc, hook):
                raise
            log.exception("plugin %s failed in %s", plugin, hook)
            failure = PluginFailure(plugin, hook, exc)
            ctx = next((a for a in (*args, *kwargs.values()) if isinstance(a, ProviderContext)), None)
            provider_id = ctx.provider_id if ctx is not None else _calling_provider.get()
            try:
                host.failed(failure, provider_id)
            except Exception:  # recording must never replace the plugin's error
                log.exception("could not record the failure of plugin %s", plugin)
            if action:
                raise failure from exc
            return None

    return guarded


class _Relay:
    """The hooks of one provider: each hook caller leaves out the disabled plugins."""

    def __init__(self, pm: pluggy.PluginManager, remove: list, provider_id: int | None = None):
        self._pm = pm
        self._remove = remove
        self._provider_id = provider_id
        self._callers: dict = {}

    def __getattr__(self, name: str):
        if name not in self._callers:
            caller = (self._pm.subset_hook_caller(name, remove_plugins=self._remove) if self._remove
                      else getattr(self._pm.hook, name))
            self._callers[name] = _ProviderCall(caller, self._provider_id)
        return self._callers[name]


class _ProviderCall:
    """A hook caller that notes which provider it is called for (see :data:`_calling_provider`)."""

    __slots__ = ("_caller", "_provider_id")

    def __init__(self, caller, provider_id: int | None):
        self._caller, self._provider_id = caller, provider_id

    def __call__(self, **kwargs):
        token = _calling_provider.set(self._provider_id)
        try:
            return self._caller(**kwargs)
        finally:
            _calling_provider.reset(token)

    def __getattr__(self, name: str):
        return getattr(self._caller, name)


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
