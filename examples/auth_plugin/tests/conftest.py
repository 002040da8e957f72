"""The example is not pip-installed: its package goes on sys.path for its tests."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
