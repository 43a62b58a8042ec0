"""Which gateway serves a payment, and calling it through the hook contract with
the owning plugin's settings (secrets decrypted only for this call)."""
from __future__ import annotations

from ..contracts import GatewayInfo
from ..plugins import host
from . import plugin_settings
from .errors import ServiceError

OFFLINE = "offline"


def enabled(provider_id: int) -> dict[str, GatewayInfo]:
    return {g.id: g for g in host().listing("kassa_gateways", provider_id) if g.id != OFFLINE}


def _serves(info: GatewayInfo, currency: str, country: str | None = None) -> bool:
    return (not info.currencies or currency in info.currencies) and (
        country is None or not info.countries or country in info.countries)


def card_gateway(provider_id: int, currency: str) -> GatewayInfo | None:
    """The enabled gateway that keeps cards on file for this currency."""
    return next((g for g in enabled(provider_id).values() if g.saves_cards and _serves(g, currency)), None)


def hosted_gateway(provider_id: int, currency: str, country: str) -> GatewayInfo | None:
    """A gateway that takes the buyer to its own page (seed 004: INR from India to the
    Indian gateway, USD from abroad to PayPal); a card gateway serves otherwise."""
    gateways = enabled(provider_id).values()
    return (next((g for g in gateways if g.hosted_redirect and g.countries and _serves(g, currency, country)), None)
            or next((g for g in gateways if g.hosted_redirect and _serves(g, currency, country)), None))


def settings_for(provider_id: int, gateway_id: str) -> dict:
    owner = host().owner("kassa_gateways", gateway_id)
    if owner is None:
        raise ServiceError(f"No installed plugin provides the gateway {gateway_id!r}.")
    return plugin_settings.settings_for(provider_id, owner, secrets=True)


def call(provider_id: int, hook: str, gateway_id: str, *, none_ok: bool = False, **kwargs):
    """Call a gateway hook; a gateway that is not enabled (or answers nothing, unless
    ``none_ok``: a lookup's "no record of it") is an error."""
    if gateway_id not in enabled(provider_id):
        raise ServiceError(f"The payment gateway {gateway_id!r} is not enabled.")
    result = getattr(host().hooks(provider_id), hook)(gateway=gateway_id,
                                                      settings=settings_for(provider_id, gateway_id), **kwargs)
    if result is None and not none_ok:
        raise ServiceError(f"The payment gateway {gateway_id!r} does not support {hook.removeprefix('kassa_gateway_')}.")
    return result
