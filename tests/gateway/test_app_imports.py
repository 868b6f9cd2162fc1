"""A view module that cannot be imported stops the gateway from starting: it used to be swallowed,
and every view then answered as a proxied 404 (issue 13)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BROKEN_VIEW = textwrap.dedent("""
    import sys

    class Broken:
        # Any import failure inside the views package, as a typo or a missing dependency would be.
        def find_spec(self, name, path=None, target=None):
            if name == "gateway.views.balance":
                raise ImportError("gateway.views.balance is broken")
            return None

    sys.meta_path.insert(0, Broken())
    from gateway.app import create_app
    from services.common.settings import Settings

    create_app(Settings(env="test", database_url="postgresql://unused/spp"))
    print("started")
""")


def test_a_broken_view_import_fails_loudly():
    result = subprocess.run([sys.executable, "-c", BROKEN_VIEW], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "started" not in result.stdout
    assert result.stderr.rstrip().splitlines()[-1] == "ImportError: gateway.views.balance is broken"
