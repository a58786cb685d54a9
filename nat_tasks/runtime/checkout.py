"""Where the source checkout is: nat_tasks is installed editable (``pip install -e``) from it, and
the demos, the sweep driver and the reports find ``configs/``, ``tools/`` and git there."""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
