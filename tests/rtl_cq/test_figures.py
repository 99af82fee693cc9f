"""The measured figures of ``figures.py`` meet issue 4's targets."""

from figures import TARGETS, cq_figures, meets_targets


def test_figures_meet_targets():
    fig = cq_figures()
    print(fig)
    assert set(TARGETS) <= set(fig)
    assert meets_targets(fig) == [], fig
    assert fig["prgr_per_clock_128_lat8"] >= 0.97
    assert fig["drain_fence_after_retire"] <= 4
