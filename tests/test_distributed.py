"Two CPU processes (torchrun, gloo): each rank trains on its own shard, the weights stay identical, metrics are gathered"
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from fastcore.test import test_eq as eq

def torchrun(*args, timeout=600):
    "Run `torchrun --nproc_per_node 2` with `args`, one thread per process"
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', *args],
                          capture_output=True, text=True, timeout=timeout, env=env)

@pytest.mark.parametrize('kind', ['ae', 'encoder'])
def test_two_ranks(tmp_path, kind):
    r = torchrun(str(Path(__file__).parent/'ddp_fit.py'), kind, str(tmp_path))
    assert r.returncode==0, r.stderr[-3000:]
    w0,w1 = [torch.load(tmp_path/f'weights{i}.pth') for i in (0,1)]
    eq(list(w0), list(w1))
    for k in w0: assert torch.equal(w0[k], w1[k]), f"{k} differs between the ranks"
    r0,r1 = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in (0,1)]
    eq(r0['world'], 2)
    # between them the ranks saw every one of the 256 training images exactly once, half each
    eq(len(r0['seen']), 128); eq(len(r1['seen']), 128)
    eq(sorted(r0['seen']+r1['seen']), list(range(256)))
    # the table's losses and metrics are gathered over both ranks: the same numbers on each
    eq(r0['values'], r1['values'])
    # the weights moved (training happened) and stayed finite
    init = torch.load(tmp_path/'init.pth')
    assert any(not torch.equal(init[k], w0[k]) for k in w0 if w0[k].is_floating_point())
    assert all(torch.isfinite(v).all() for v in w0.values() if v.is_floating_point())

@pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
def test_train_under_torchrun(tmp_path):
    "`fastai-ae train` under torchrun: one table, rank 0 alone writes the learner, which loads back"
    r = torchrun('-m', 'fastai_ae', 'train', '--subset', '2000', '--epochs', '1', '--device', 'cpu', '--enc', 'mlp', '--dec', 'mlp',
                 '--out', str(tmp_path))
    assert r.returncode==0, r.stderr[-3000:]
    assert '2 processes' in r.stdout, r.stdout
    eq(r.stdout.count('trained in'), 1)
    for f in ('learner.pkl', 'checkpoint.pth', 'history.csv', 'summary.json'): assert (tmp_path/f).exists(), f
    from fastai.learner import load_learner
    learn = load_learner(tmp_path/'learner.pkl')
    assert not any(k.startswith('module.') for k in torch.load(tmp_path/'checkpoint.pth', weights_only=False)['model'])
    eq(learn.encode(torch.zeros(2,1,28,28, dtype=torch.uint8)).shape[0], 2)

def test_lr_find_refused(tmp_path):
    r = torchrun('-m', 'fastai_ae', 'train', '--lr', 'find', '--epochs', '1', '--device', 'cpu', '--dataset', 'mnist', '--out', str(tmp_path))
    assert r.returncode!=0
    assert 'give --lr a number' in r.stdout+r.stderr, r.stderr[-2000:]
