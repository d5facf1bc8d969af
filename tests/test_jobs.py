"`fastai-ae bench --jobs N`: cells in N worker processes, one shared resumable store, the same page as a sequential run"
import os, subprocess, sys, time
from pathlib import Path
import pytest
from fastcore.test import test_eq as eq
from fastai_ae.bench.run import read_results, run_bench, KEY

needs_data = pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
ARGS = ['--labels', '100', '--methods', 'ae,vae,cnn,pca_svm', '--seeds', '2', '--budget', 'smoke', '--device', 'cpu']

def bench(out, *args):
    "`fastai-ae bench` with `args` into `out`, one thread per process so that both runs compute alike"
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-m', 'fastai_ae', 'bench', *ARGS, '--out', str(out), *args],
                          capture_output=True, text=True, timeout=900, env=env)

def _cells(out): return {tuple(r[k] for k in KEY):r['acc'] for r in read_results(Path(out)/'results.csv')}

def _page(out):
    "results.md without what differs between runs: the seconds, the dates and the folder"
    ls = (Path(out)/'results.md').read_text().replace(str(out), 'OUT').splitlines()
    return [l.rsplit('|', 2)[0] if l.startswith('| ') else l for l in ls if not l.startswith(('- finished', '- cells'))]

@needs_data
def test_jobs_2_same_cells_as_sequential(tmp_path):
    a,b = tmp_path/'seq',tmp_path/'par'
    r = bench(a)
    assert r.returncode==0, r.stderr[-3000:]
    r = bench(b, '--jobs', '2')
    assert r.returncode==0, r.stderr[-3000:]
    assert '2 workers' in r.stdout and '(worker 1)' in r.stdout, r.stdout
    eq(len(_cells(b)), 8)
    eq(_cells(a), _cells(b))                 # the same cells, to the last digit of the accuracy
    eq(_page(a), _page(b))
    # the autoencoders were trained once per (kind, seed): 2 kinds x 2 seeds
    eq(len(list((b/'cache').glob('*.pth'))), 4)
    # and a rerun with --jobs finds everything done
    r = bench(b, '--jobs', '2')
    assert '8 already in' in r.stdout, r.stdout

@pytest.mark.parametrize('jobs,msg', [(0, '--jobs must be a positive integer'), (1.5, '--jobs must be a positive integer'),
                                      ('two', '--jobs must be a positive integer')])
def test_bad_jobs(tmp_path, jobs, msg):
    with pytest.raises(ValueError, match=msg): run_bench('mnist', methods='cnn', out=tmp_path/'o', jobs=jobs)
    assert not (tmp_path/'o').exists()

def test_session_methods_refused(tmp_path):
    "A method defined in `__main__` (a notebook, a script) cannot be imported by the workers: a clear error before anything runs"
    scr = tmp_path/'s.py'
    scr.write_text("from fastai_ae.bench.methods import register_method\nfrom fastai_ae.bench.run import run_bench\n"
                   "@register_method('here_only')\ndef here_only(task): return dict(acc=0.5)\n"
                   f"run_bench('mnist', methods='here_only', out={str(tmp_path/'o')!r}, jobs=2)\n")
    r = subprocess.run([sys.executable, str(scr)], capture_output=True, text=True, timeout=300)
    assert r.returncode!=0
    assert "cannot see ['here_only'], defined in this session only" in r.stderr, r.stderr[-2000:]

def _stat(pid):
    "The fields of /proc/`pid`/stat after the command name (state first, then the parent's PID), or None once it is gone"
    try: return (Path('/proc')/str(pid)/'stat').read_text().rsplit(')', 1)[1].split()
    except OSError: return None

def _children(pid):
    "PIDs of the live processes whose parent is `pid` (from /proc)"
    return [int(p.name) for p in Path('/proc').iterdir() if p.name.isdigit() and (st := _stat(p.name)) and int(st[1])==pid]

def _alive(pid): return (st := _stat(pid)) is not None and st[0] not in 'ZX'

@needs_data
@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='reads processes from /proc')
def test_killed_bench_takes_its_workers(tmp_path):
    "A `fastai-ae bench --jobs 2` killed outright (SIGKILL, out of memory) leaves no worker training on"
    env = dict(os.environ, OMP_NUM_THREADS='1')
    args = ['--labels', '100', '--methods', 'flexmatch_cnn3', '--seeds', '4', '--budget', 'smoke', '--device', 'cpu', '--jobs', '2']
    p = subprocess.Popen([sys.executable, '-m', 'fastai_ae', 'bench', *args, '--out', str(tmp_path/'o')],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ws = []
    try:
        t = time.time()
        while time.time()-t < 120 and len(ws := [c for c in _children(p.pid) if b'spawn_main' in Path(f'/proc/{c}/cmdline').read_bytes()]) < 2:
            time.sleep(0.5)
        eq(len(ws), 2)
        time.sleep(3)                          # the workers are importing, loading MNIST or training
        p.kill(); p.wait()
        t = time.time()
        while time.time()-t < 30 and any(map(_alive, ws)): time.sleep(0.5)
        eq([w for w in ws if _alive(w)], [])   # each worker saw its parent go and ended
    finally:
        if p.poll() is None: p.kill()
        for w in [w for w in ws if _alive(w)]: os.kill(w, 9)   # no orphan outlives a failed test

@needs_data
def test_jobs_2_holdout(tmp_path):
    "Workers hold out the same training images as the parent: `--holdout` with `--jobs 2` gives the sequential run's cells"
    a,b = tmp_path/'seq',tmp_path/'par'
    for o,j in ((a,'1'),(b,'2')):
        r = bench(o, '--methods', 'cnn,pca_svm', '--holdout', '1000', '--jobs', j)
        assert r.returncode==0, r.stderr[-3000:]
    eq(len(_cells(b)), 4)
    eq(_cells(a), _cells(b))
    assert all('held-out' in k[0] for k in _cells(b))
