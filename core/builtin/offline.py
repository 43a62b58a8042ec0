"""Offline payments: cheques, bank transfers and other payments recorded by an admin."""
from ..contracts import GatewayInfo
from ..hookspecs import hookimpl

OFFLINE = "offline"


@hookimpl(trylast=True)
def kassa_gateways():
    return [GatewayInfo(id=OFFLINE, name="Offline payment (cheque, bank transfer)", saves_cards=False)]
