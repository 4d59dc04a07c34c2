"""docs/reference.md is generated from the registries (`composer list --markdown`), so it cannot
drift: this test fails when an entry, an argument or a doc line changed and the page was not
regenerated with `python -m composer list --markdown > docs/reference.md`."""
from composer import registry
from composer import api
from conftest import ROOT


def test_reference_page_is_current():
    page = (ROOT / "docs" / "reference.md").read_text()
    assert api.reference(plugins=False) + "\n" == page, \
        "docs/reference.md is stale: python -m composer list --markdown > docs/reference.md"


def test_every_built_in_entry_has_a_doc_line():
    missing = [f"{kind}.{e['name']}" for kind in registry.KINDS for e in registry.get(kind).describe()
               if e["origin"] == "composer" and not e["doc"]]
    assert not missing, missing
