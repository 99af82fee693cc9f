"""The Verilog module prifence_top has exactly the pinned interface of DESIGN.md §1."""

import re

import pytest

from prifence.formats import PageRequest, PrgResponse
from rtl.top import generate_verilog


def _top_ports(text):
    body = text[text.index("module prifence_top("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for direction, width, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M):
        ports[name] = (direction, int(width) + 1 if width else 1)
    return ports


def _expected(data_width=64, addr_width=56):
    ports = {"clk": ("input", 1), "rst": ("input", 1)}
    axil = {"awaddr": 12, "awprot": 3, "awvalid": 1, "wdata": 32, "wstrb": 4, "wvalid": 1,
            "bready": 1, "araddr": 12, "arprot": 3, "arvalid": 1, "rready": 1}
    axil_out = {"awready": 1, "wready": 1, "bresp": 2, "bvalid": 1, "arready": 1, "rdata": 32,
                "rresp": 2, "rvalid": 1}
    ports.update({f"s_axil_{n}": ("input", w) for n, w in axil.items()})
    ports.update({f"s_axil_{n}": ("output", w) for n, w in axil_out.items()})
    for ch in ("aw", "ar"):
        ports.update({f"m_axi_{ch}{n}": ("output", w) for n, w in {
            "id": 4, "addr": addr_width, "len": 8, "size": 3, "burst": 2, "lock": 1, "cache": 4,
            "prot": 3, "qos": 4, "valid": 1}.items()})
        ports[f"m_axi_{ch}ready"] = ("input", 1)
    ports.update({"m_axi_wdata": ("output", data_width), "m_axi_wstrb": ("output", data_width // 8),
                  "m_axi_wlast": ("output", 1), "m_axi_wvalid": ("output", 1),
                  "m_axi_wready": ("input", 1), "m_axi_bid": ("input", 4), "m_axi_bresp": ("input", 2),
                  "m_axi_bvalid": ("input", 1), "m_axi_bready": ("output", 1),
                  "m_axi_rid": ("input", 4), "m_axi_rdata": ("input", data_width),
                  "m_axi_rresp": ("input", 2), "m_axi_rlast": ("input", 1),
                  "m_axi_rvalid": ("input", 1), "m_axi_rready": ("output", 1)})
    ports.update({"page_req_valid": ("input", 1), "page_req_ready": ("output", 1),
                  "prg_resp_valid": ("output", 1), "prg_resp_ready": ("input", 1)})
    ports.update({f"page_req_{n}": ("input", f.width) for n, f in PageRequest.as_shape()})
    ports.update({f"prg_resp_{n}": ("output", f.width) for n, f in PrgResponse.as_shape()})
    ports.update({f"irq_{q}": ("output", 1) for q in ("cq", "fq", "pq")})
    return ports


@pytest.mark.parametrize("data_width", [64, 128])
def test_pinned_interface(data_width):
    ports = _top_ports(generate_verilog(data_width=data_width))
    assert ports == _expected(data_width)


def test_stream_field_widths_match_design():
    """DESIGN §1: did 24, pid 20, prgi 9, code 4, addr 52, every other field 1."""
    widths = {n: f.width for n, f in PageRequest.as_shape()}
    assert widths == {"did": 24, "pv": 1, "pid": 20, "priv": 1, "exec": 1, "r": 1, "w": 1, "l": 1,
                      "prgi": 9, "addr": 52}
    assert {n: f.width for n, f in PrgResponse.as_shape()} == {"did": 24, "pv": 1, "pid": 20,
                                                              "prgi": 9, "code": 4}
