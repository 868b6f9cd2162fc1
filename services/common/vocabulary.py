"""Identifiers every service validates the same way, and the request-model base they share.

One definition, so a district code or school code accepted by one service is accepted by all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, StringConstraints

# GB/T 2260 district codes begin with the province group digit 1–8.
DistrictCode = Annotated[str, StringConstraints(pattern=r"^[1-8][0-9]{5}$")]
SchoolCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# In paths and filters: six digits (an unknown code is then a 404 or an empty list, not a 422).
DistrictCodePath = Annotated[str, Path(pattern=r"^[0-9]{6}$", examples=["110105"])]
DistrictFilter = Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="GB/T 2260 district code")]


class Strict(BaseModel):
    """Request bodies refuse fields they do not know, so a misspelt field is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")
