"""The indicators' fixed vocabulary (design.md §3, §4.3–4.4): which backbone levels count as
"county-level and above" (县级以上骨干) and the national bars a district policy starts from.
Defined once; rotation's SQL, its policy defaults and the gateway's views read them here."""

from __future__ import annotations

from decimal import Decimal

# 县级以上骨干: backbone levels district (区级/县级), municipal (市级) and special grade (特级).
COUNTY_AND_ABOVE: frozenset[str] = frozenset({"district", "municipal", "special_grade"})

# The national bars (design.md §4.3, §4.4), the targets of a district without a policy of its own.
DEFAULT_TARGET_RATE = Decimal("0.10")
DEFAULT_TARGET_BACKBONE_SHARE = Decimal("0.20")
