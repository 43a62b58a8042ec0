"""Build the ProviderContext that hooks receive."""
from __future__ import annotations

from ..clock import now
from ..contracts import Party, ProviderContext
from . import plugin_settings, settings


def provider_context(provider_id: int) -> ProviderContext:
    bs = settings.billing_settings(provider_id)
    return ProviderContext(
        provider_id=provider_id, currency=bs.currency, precision=bs.precision, now=now(),
        settings=plugin_settings.public_settings_by_plugin(provider_id),
    )


def party(org) -> Party:
    return Party(
        org_id=org.id, kind=org.kind, name=org.name, country=org.country, state=org.state,
        city=org.city, address_line1=org.address_line1, address_line2=org.address_line2,
        postal_code=org.postal_code, email=org.email, tax_id=org.tax_id,
    )
