import sys
from pathlib import Path

# tests import their helper module `reference` from this folder
sys.path.insert(0, str(Path(__file__).parent))
