"""The built-in tax engine: the provider's tax rules by buyer country (seed 000).

Rounding is line-level: each component of each taxable line is rounded once to
the billing precision, and the invoice's tax is the sum of those, so the total
always equals the sum of what the invoice shows.
"""
from decimal import Decimal

from ..contracts import TaxComponent, TaxEngineInfo, TaxLineQuote, TaxQuote, require_country
from ..hookspecs import hookimpl
from ..money import round_money

ENGINE_ID = "tax_rules"
HUNDRED = Decimal(100)


@hookimpl(trylast=True)
def kassa_tax_engines():
    return [TaxEngineInfo(id=ENGINE_ID, name="Tax rules by country")]


@hookimpl(trylast=True)
def kassa_tax_quote(draft, seller, buyer, ctx):
    from ..services.tax_rules import active_rules

    rules = active_rules(ctx.provider_id, require_country(buyer.country))
    lines = []
    for line in draft.lines:
        components = ()
        if line.taxable and rules:
            components = tuple(TaxComponent(name=r.name, rate=r.rate,
                                            amount=round_money(line.amount * r.rate / HUNDRED, draft.precision))
                               for r in rules)
        lines.append(TaxLineQuote(key=line.key, components=components))
    return TaxQuote(engine=ENGINE_ID, lines=tuple(lines))
