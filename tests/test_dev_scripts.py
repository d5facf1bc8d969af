"The development scripts beside the benchmark pages still run against the library (a few steps each)"
import os, subprocess, sys, json
from pathlib import Path
import pytest
from fastcore.test import test_eq as eq

ROOT = Path(__file__).parents[1]
needs_data = pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
# every script under benchmarks/, with arguments for a run of a few steps
SCRIPTS = {'mnist-kingma-flexmatch/fixmatch_dev.py': ['--steps', '10', '--every', '5'],
           'mnist-kingma-flexmatch-cnn3/network_dev.py': ['deep_nodrop', '10'],
           'cifar10-kingma-simclr-head-dev/head_dev.py': ['--smoke']}

def test_every_script_is_listed():
    eq(sorted(str(p.relative_to(ROOT/'benchmarks')) for p in (ROOT/'benchmarks').glob('*/*.py')), sorted(SCRIPTS))

@needs_data
@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_script_runs(script):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/script), *SCRIPTS[script]], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode==0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert ('VAL acc' in last) or 'dev_acc' in json.loads(last), last
