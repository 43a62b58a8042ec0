"""India GST: the seed's KYC ID is a GSTIN, validated with python-stdnum."""
from kassa.contracts import TaxEngineInfo, TaxIdCheck
from kassa.hookspecs import hookimpl
from stdnum.exceptions import ValidationError
from stdnum.in_ import gstin

ENGINE_ID = "india_gst"


@hookimpl
def kassa_tax_engines():
    return [TaxEngineInfo(id=ENGINE_ID, name="India GST (CGST + SGST / IGST)", countries=("IN",))]


@hookimpl
def kassa_tax_id_check(country, tax_id):
    if country != "IN":
        return None
    try:
        number = gstin.validate(tax_id)
    except ValidationError as exc:
        return TaxIdCheck(valid=False, normalized=gstin.compact(tax_id or ""),
                          message=f"Not a valid GSTIN: {exc.message}")
    info = gstin.info(number)
    return TaxIdCheck(valid=True, normalized=number, message="Valid GSTIN",
                      details={"state": info["state"] or "", "pan": info["pan"]})
