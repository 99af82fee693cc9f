"""prifence: co-simulation of IOMMU PCIe PRI queue logic (RTL, driver and device models)."""

__version__ = "0.1.0"
