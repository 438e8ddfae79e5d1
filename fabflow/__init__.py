"""fabflow: order flows for made-to-order, 3D-customized products."""

from __future__ import annotations

__version__ = "0.1.0"
