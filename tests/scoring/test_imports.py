import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scoring_never_imports_flask_or_spiffworkflow():
    code = ("import sys, scoring, scoring.service, scoring.cli, scoring.train, scoring.report, scoring.registry; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'SpiffWorkflow', 'spiff')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_package_init_is_light():
    code = "import sys, scoring; assert 'sklearn' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
