"""Identifiers every service validates the same way, and the request-model base they share.

One definition, so a district code or school code accepted by one service is accepted by all.
Codes are keys that travel in URL paths (`/schools/{code}`, a `Location` header), so they are
URL-safe identifiers (design.md §5): ASCII letters, digits, `-` and `_`. A code such as `a/b?c#d`
could be stored but never read back, and a non-ASCII one cannot be put in a header at all. The
same rules are CHECK constraints in the migrations (`ck_schools_code_url_safe`, …).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, StringConstraints

# GB/T 2260 district codes begin with the province group digit 1–8.
DistrictCode = Annotated[str, StringConstraints(pattern=r"^[1-8][0-9]{5}$")]
# The database's CHECK constraints spell the same patterns; keep them in step.
CODE_PATTERN = r"^[A-Za-z0-9_-]+$"
CODE_MAX_LENGTH = 64
SchoolCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CODE_MAX_LENGTH,
                                              pattern=CODE_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# In paths and filters: six digits (an unknown code is then a 404 or an empty list, not a 422).
DistrictCodePath = Annotated[str, Path(pattern=r"^[0-9]{6}$", examples=["110105"])]
DistrictFilter = Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="GB/T 2260 district code")]


class Strict(BaseModel):
    """Request bodies refuse fields they do not know, so a misspelt field is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


def location(*segments: object, **query: object) -> str:
    """The public path of a resource for a `Location` header, every segment percent-encoded.

    Codes are URL-safe already; encoding anyway means no value can ever break the header or point
    somewhere else (`quote(..., safe="")` also encodes `/`)."""
    path = "/api/v1/" + "/".join(quote(str(segment), safe="") for segment in segments)
    return f"{path}?{urlencode(query)}" if query else path
