"""The nats-core suite shares tests/py/harness.py (standard library only) with the nats-py suite."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))
