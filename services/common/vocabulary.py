"""Identifiers every service validates the same way, and the request-model base they share.

One definition, so a district code or school code accepted by one service is accepted by all.
Codes are keys that travel in URL paths (`/schools/{code}`, a `Location` header), so they are
URL-safe identifiers (design.md §5): ASCII letters, digits, `-` and `_`. A code such as `a/b?c#d`
could be stored but never read back, and a non-ASCII one cannot be put in a header at all. The
same rules are CHECK constraints in the migrations (`ck_schools_code_url_safe`, …).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
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


# Dates as Chinese office spreadsheets write them: 2015-09-01, 2015/9/1, 2015.9.1, 2015年9月1日, 20150901.
_OFFICE_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def office_date(value: Any) -> Any:
    """A date in a common office form, rewritten to ISO; anything else unchanged (the model then
    reports it). Impossible dates (2015-02-30) stay impossible. The one parser every import uses."""
    if not isinstance(value, str):
        return value
    match = _OFFICE_DATE.match(value.strip()) or _COMPACT_DATE.match(value.strip())
    if match is None:
        return value
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"
