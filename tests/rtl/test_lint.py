"""The Verilog of prifence_top lints clean under ``verilator --lint-only -Wall``
with the waivers of rtl/lint.vlt (Amaranth code-generation idioms only)."""

import re

import pytest

from rtl.top import LINT_WAIVERS, REAL_WARNINGS, generate_verilog, lint_verilog

PARAMS = [{}, {"data_width": 128}, {"ingress_depth": 4, "dc_cache_entries": 1}]
IDS = ["default", "dw128", "small"]
#: Instances of the page-request path, the memory master and the top level.
PAGE_REQUEST_PATH = ("prifence_top", "prifence_top.core", "prifence_top.core.axi",
                     "prifence_top.core.pq", "prifence_top.core.fq")


@pytest.fixture(scope="module", params=PARAMS, ids=IDS)
def report(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("lint") / "prifence_top.v"
    path.write_text(generate_verilog(**request.param))
    return lint_verilog(path)


def _instance(message):
    match = re.search(r"\[in ([^\]]+)\]$", message)
    return match.group(1) if match else "prifence_top"


def test_lint_clean_page_request_path(report):
    """No warning at all in the instances of the page-request path and the top."""
    def ours(inst):
        return inst in PAGE_REQUEST_PATH or any(inst.startswith(p + ".") for p in PAGE_REQUEST_PATH[2:])
    mine = [m for msgs in report.warnings.values() for m in msgs if ours(_instance(m))]
    assert not mine, "\n".join(mine)


def test_lint_clean(report):
    """The whole design lints clean."""
    assert report.ok, report.summary()


def test_waivers_never_cover_a_real_category_whole():
    """A category that signals real problems may only be waived for a named
    message pattern, never for every message (CASEINCOMPLETE excepted: see lint.vlt)."""
    for line in LINT_WAIVERS.read_text().splitlines():
        match = re.match(r'\s*lint_off\s+-rule\s+(\w+)(.*)', line)
        if match and match.group(1) in REAL_WARNINGS and match.group(1) != "CASEINCOMPLETE":
            assert "-match" in match.group(2), line


def test_lint_catches_a_real_warning(tmp_path):
    """The lint run is not vacuous: a width bug outside the waived idioms is reported."""
    path = tmp_path / "prifence_top.v"
    path.write_text("module prifence_top(input [7:0] a, output [3:0] y);\n"
                    "  wire [7:0] t = a + a;\n  assign y = t;\nendmodule\n")
    report = lint_verilog(path)
    assert not report.ok and "WIDTHTRUNC" in report.warnings, report.summary()
