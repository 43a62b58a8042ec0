"""Per-provider plugin state: enabled or not, and settings (secrets encrypted)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from ..clock import utcnow_naive
from ..crypto import decrypt, encrypt, mask
from ..extensions import db
from ..models import PluginState
from . import audit
from .cache import invalidate
from .errors import Conflict, NotFound, ValidationError
from .uow import atomic

ENC = "$enc"


def _host():
    from ..plugins import host

    return host()


def _state(provider_id: int, name: str) -> PluginState | None:
    return db.session.scalar(select(PluginState).filter_by(provider_id=provider_id, plugin=name))


def enabled_plugin_names(provider_id: int, host) -> set[str]:
    rows = dict(db.session.execute(
        select(PluginState.plugin, PluginState.enabled).where(PluginState.provider_id == provider_id)).all())
    names = set()
    for name, record in host.records.items():
        if record.broken:
            continue
        if record.required or rows.get(name, record.builtin):
            names.add(name)
    return names


def is_enabled(provider_id: int, name: str) -> bool:
    return name in _host().enabled_names(provider_id)


def set_enabled(actor, name: str, enabled: bool) -> PluginState:
    host = _host()
    record = host.records.get(name)
    if record is None:
        raise NotFound("No such plugin")
    if record.broken and enabled:
        raise Conflict(f"Plugin {name} is broken and cannot be enabled: {record.error}")
    if record.required and not enabled:
        raise Conflict(f"Plugin {name} is part of the core and cannot be disabled.")
    provider_id = actor.org.provider_id
    with atomic():
        state = _state(provider_id, name) or PluginState(provider_id=provider_id, plugin=name, settings={})
        state.enabled = bool(enabled)
        state.updated_at = utcnow_naive()
        db.session.add(state)
        audit.record(actor, "plugin.enable" if enabled else "plugin.disable", state, summary=name)
    host.forget_cache()
    return state


def form_class(name: str):
    host = _host()
    if name not in host.records or host.records[name].broken:
        return None
    for _, form in host.call_each("kassa_settings_form", {name}):
        return form
    return None


def secret_fields(form) -> set[str]:
    return {f.name for f in form if getattr(f, "secret", False)}


def _jsonable(value):
    if isinstance(value, (Decimal, date)):
        return str(value)
    return value


def settings_for(provider_id: int, name: str, *, secrets: bool = False) -> dict:
    """The plugin's settings: form defaults overlaid with stored values. Secrets are
    decrypted only when asked (for the gateway call), otherwise left out."""
    cls = form_class(name)
    values = {}
    secret_names: set[str] = set()
    if cls is not None:
        form = cls()
        secret_names = secret_fields(form)
        values = {f.name: _jsonable(f.data) for f in form if f.name not in secret_names}
    state = _state(provider_id, name)
    for key, value in ((state.settings if state else None) or {}).items():
        if isinstance(value, dict) and ENC in value:
            if secrets:
                values[key] = decrypt(value[ENC])
        else:
            values[key] = value
    return values


def public_settings_by_plugin(provider_id: int) -> dict[str, dict]:
    return {name: settings_for(provider_id, name) for name in sorted(_host().enabled_names(provider_id))}


def masked_secrets(provider_id: int, name: str) -> dict[str, str]:
    state = _state(provider_id, name)
    return {key: mask(decrypt(value[ENC])) for key, value in ((state.settings if state else None) or {}).items()
            if isinstance(value, dict) and ENC in value}


def bind_form(provider_id: int, name: str, formdata=None):
    """The plugin's form filled with stored values (secrets never filled in)."""
    cls = form_class(name)
    if cls is None:
        return None
    if formdata is not None:
        return cls(formdata=formdata)
    data = settings_for(provider_id, name)
    return cls(formdata=None, data=data)


def save_settings(actor, name: str, formdata) -> dict:
    """Validate and store a plugin's settings. An empty secret keeps the stored one."""
    provider_id = actor.org.provider_id
    if not isinstance(formdata, MultiDict):
        formdata = MultiDict({k: v for k, v in (formdata or {}).items()})
    form = bind_form(provider_id, name, formdata)
    if form is None:
        raise NotFound("This plugin has no settings")
    if not form.validate():
        raise ValidationError("Please correct the highlighted fields.",
                              {k: "; ".join(v) for k, v in form.errors.items()})
    secret_names = secret_fields(form)
    with atomic():
        record = _host().records.get(name)
        state = _state(provider_id, name) or PluginState(  # saving settings keeps the plugin's default state
            provider_id=provider_id, plugin=name, enabled=bool(record and (record.builtin or record.required)))
        stored = dict(state.settings or {})
        changed = []
        for field in form:
            if field.name in secret_names:
                if field.data:
                    stored[field.name] = {ENC: encrypt(field.data)}
                    changed.append(field.name)
            else:
                value = _jsonable(field.data)
                if stored.get(field.name) != value:
                    changed.append(field.name)
                stored[field.name] = value
        state.settings = stored
        state.updated_at = utcnow_naive()
        db.session.add(state)
        invalidate("context")
        audit.record(actor, "plugin.settings", state, summary=f"{name}: {', '.join(changed) or 'no change'}",
                     details={"changed": changed})
    return settings_for(provider_id, name)
