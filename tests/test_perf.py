"Tests of `fastai-ae perf`: a tiny CPU run writes its table; bad arguments give clear errors"
import os, subprocess, sys
import pytest, torch
from fastcore.test import test_eq as eq
from fastai_ae.cli import main
from fastai_ae.bench.perf import run_perf, parse_rows, parse_bss

needs_data = pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')

def run(*args):
    "Run `python -m fastai_ae` with `args` on one thread, return the completed process"
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-m', 'fastai_ae', *args], capture_output=True, text=True, timeout=600, env=env)

def test_help():
    r = run('perf', '--help')
    eq(r.returncode, 0)
    for o in ('--device', '--bs', '--steps', '--rows', '--out'): assert o in r.stdout

@needs_data
def test_cpu_run_writes_table(tmp_path):
    "The command line on the CPU, bs 128, a few steps: prints the table and writes it with the device and the command"
    out = tmp_path/'sub'/'throughput.md'
    r = run('perf', '--device', 'cpu', '--bs', '128', '--steps', '4', '--out', str(out))
    assert r.returncode == 0, r.stderr
    md = out.read_text()
    for s in ('device: CPU', f'torch {torch.__version__}', 'fastai-ae perf --device cpu --bs 128 --steps 4', '## bs 128',
              '| torch | ', '| torch-fused | ', '| fit | '): assert s in md, s
    assert '| loop | img/s | x reference | peak mem MiB | final loss | steps |' in md
    assert '| torch | ' in r.stdout and 'wrote' in r.stdout
    # the reference row is the reference
    ref = [l for l in md.splitlines() if l.startswith('| torch | ')][0].split('|')
    eq(ref[3].strip(), '1.0')

@pytest.mark.parametrize('args,msg', [
    (['--bs', '0'], '--bs must be positive integers'),
    (['--bs', 'big'], '--bs must be positive integers'),
    (['--rows', 'fit,turbo'], 'unknown --rows turbo'),
    (['--rows', 'graph'], 'need a CUDA device'),
    (['--steps', '0'], '--steps must be at least 1'),
    (['--repeat', '0'], '--repeat must be at least 1'),
    (['--device', 'tpu'], 'unknown --device'),
])
def test_bad_arguments(args, msg, capsys):
    "Bad arguments fail before anything trains, with a message naming what was expected"
    eq(main(['perf', '--device', 'cpu', *args]), 1)
    assert msg in capsys.readouterr().err

def test_out_under_a_file(tmp_path, capsys):
    "An --out that cannot be written fails before the timing, not after it"
    f = tmp_path/'f.txt'; f.write_text('x')
    eq(main(['perf', '--device', 'cpu', '--bs', '128', '--steps', '4', '--out', str(f/'t.md')]), 1)
    assert 'f.txt is a file; expected a folder for t.md' in capsys.readouterr().err

def test_missing_data_makes_nothing(tmp_path, capsys):
    "A missing dataset fails before --out's folder is made"
    eq(main(['perf', '--device', 'cpu', '--bs', '128', '--steps', '4', '--data', str(tmp_path/'nodata'), '--out', str(tmp_path/'new'/'t.md')]), 1)
    assert 'nodata' in capsys.readouterr().err
    assert not (tmp_path/'new').exists()

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the answer on a machine without CUDA')
def test_cuda_without_cuda(capsys):
    eq(main(['perf', '--device', 'cuda']), 1)
    assert 'CUDA is not available' in capsys.readouterr().err

def test_parsers():
    eq(parse_bss([128, 512]), [128, 512])
    eq(parse_rows('fit,torch,fit', torch.device('cpu')), ['fit', 'torch'])
