"""Build the ProviderContext that hooks receive."""
from __future__ import annotations

from ..clock import now
from ..contracts import Party, ProviderContext
from . import plugin_settings, settings
from .cache import memo


def provider_context(provider_id: int) -> ProviderContext:
    """Settings are read once per request or job; ``now`` is the clock's now."""
    config = settings.config(provider_id)
    public = memo(("context", provider_id), lambda: plugin_settings.public_settings_by_plugin(provider_id))
    return ProviderContext(provider_id=provider_id, currency=config.currency, precision=config.precision, now=now(),
                           settings=public)


def party(org) -> Party:
    return Party(
        org_id=org.id, kind=org.kind, name=org.name, country=org.country, state=org.state,
        city=org.city, address_line1=org.address_line1, address_line2=org.address_line2,
        postal_code=org.postal_code, email=org.email, tax_id=org.tax_id,
    )
