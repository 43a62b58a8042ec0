"""The Kassa conformance kit against the dunning phases of seed 000."""
from kassa.testing.conformance import DunningConformance


class TestDunningConformance(DunningConformance):
    plugin_name = "dunning"
