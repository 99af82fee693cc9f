"""Options shared by every test suite of prifence."""

import random

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("prifence")
    group.addoption("--seed", type=int, default=None,
                    help="replay randomized tests with this seed (default: a fresh random seed, printed)")
    group.addoption("--soak", action="store_true", default=False,
                    help="run the long soaks (many more seeds/cycles) instead of the default regression")
    group.addoption("--prifence-shard", default=None, metavar="K/N",
                    help="run only shard K of N of the collected tests (stable split by test id)")


@pytest.fixture
def seed(request):
    """The seed of a randomized test: ``--seed`` if given, else a fresh one.

    It is printed, and attached to the test report, so a failure names it."""
    value = request.config.getoption("--seed")
    if value is None:
        value = random.SystemRandom().randrange(1 << 32)
    print(f"seed={value} (replay with --seed {value})")
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture
def soak(request):
    return request.config.getoption("--soak")


def pytest_runtest_logreport(report):
    if report.failed:
        for key, value in getattr(report, "user_properties", ()):
            if key == "seed":
                report.sections.append(("prifence", f"failing seed: {value} (replay with --seed {value})"))


def pytest_collection_modifyitems(config, items):
    shard = config.getoption("--prifence-shard")
    if not shard:
        return
    k, n = (int(x) for x in shard.split("/"))
    import zlib
    keep = [it for it in items if zlib.crc32(it.nodeid.encode()) % n == k - 1]
    deselected = [it for it in items if it not in keep]
    config.hook.pytest_deselected(items=deselected)
    items[:] = keep
