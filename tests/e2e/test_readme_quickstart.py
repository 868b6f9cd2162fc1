"""The README's quick start works as written: its bash block runs against real processes and the
overview it prints has the figures the README promises (issue 11 item 8)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from services.common.auth import mint_token
from tests.conftest import ROOT, TEST_SECRET

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the quick start uses curl")


def quickstart() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- quickstart:[^>]*-->\n```bash\n(.*?)```", readme, re.S)
    assert match, "README.md has no quick start block"
    return match.group(1)


def json_values(text: str) -> list:
    """Every JSON value the script printed, in order (curl prints bodies without newlines)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def test_the_readme_quick_start_runs_as_written(platform):
    script = quickstart()
    assert script.startswith("SPP=http://127.0.0.1:8000/api/v1\nTOKEN=paste-the-token-here\n")
    token = mint_token(TEST_SECRET, sub="readme", role="city_admin", ttl_seconds=600)
    # The reader pastes their own gateway URL and token; nothing else is changed.
    script = script.replace("SPP=http://127.0.0.1:8000/api/v1", f"SPP={platform.url('gateway')}/api/v1", 1)
    script = script.replace("TOKEN=paste-the-token-here", f"TOKEN={token}", 1)
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = json_values(done.stdout)
    # The created pairing's body goes into $PAIRING (its id), so six bodies are printed.
    district, lead, partner, activated, activity, overview = printed
    assert district == {"code": "130102", "name": "长安区"} | {k: district[k] for k in district
                                                              if k not in ("code", "name")}
    assert (lead["code"], partner["code"], partner["locality"]) == ("13010201", "13010202", "rural")
    assert (activated["lead_school_code"], activated["status"]) == ("13010201", "active")
    assert (activity["title"], activity["student_participants"]) == ("送课到校：三年级数学", 120)
    partnership = dict(overview["partnership"])
    by_kind = partnership.pop("by_kind")
    assert by_kind["lesson_delivery"] == {"activities": 1, "teacher_participations": 6, "student_participations": 120}
    assert sum(kind["activities"] for kind in by_kind.values()) == 1
    assert partnership == {"township_rural_schools": 1, "covered_schools": 1, "coverage_rate": 1.0,
                                       "active_pairings": 1, "activities": 1, "teacher_participations": 6,
                                       "student_participations": 120}
    assert overview["degraded"] == []
    # json.tool --no-ensure-ascii: the Chinese is printed as Chinese.
    assert "送课到校" in done.stdout
