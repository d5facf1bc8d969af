"End-to-end runs of the `fastai-ae` command and its answers to bad input"
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from fastcore.test import test_eq as eq
from fastai_ae.cli import main

def run(*args):
    "Run `python -m fastai_ae` with `args`, return the completed process"
    return subprocess.run([sys.executable, '-m', 'fastai_ae', *args], capture_output=True, text=True, timeout=600)

def test_help():
    r = run('--help')
    eq(r.returncode, 0)
    assert 'train' in r.stdout
    r = run('train', '--help')
    eq(r.returncode, 0)
    for o in ('--enc', '--bottleneck', '--dec', '--nz', '--kl-warmup', '--denoise', '--epochs', '--lr', '--out'): assert o in r.stdout

def test_no_command():
    eq(run().returncode, 2)

@pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
def test_train_end_to_end(tmp_path):
    "A small VAE run saves a learner that loads back and encodes, the figures and the history"
    r = run('train', '--subset', '3000', '--epochs', '2', '--device', 'cpu', '--out', str(tmp_path), '--kl-warmup', '0.5')
    assert r.returncode == 0, r.stderr
    for f in ('learner.pkl', 'rec.png', 'rec_steps.png', 'history.csv', 'summary.json'): assert (tmp_path/f).exists(), f
    s = json.loads((tmp_path/'summary.json').read_text())
    assert s['valid_loss'] < 250, s    # an untrained model is at ~540 nats per image
    from fastai.learner import load_learner
    import torch
    l = load_learner(tmp_path/'learner.pkl')
    eq(l.encode(torch.zeros(2,1,28,28, dtype=torch.uint8)).shape, (2,16))

@pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
def test_train_denoise_ae(tmp_path):
    eq(main(['train', '--subset', '600', '--epochs', '1', '--device', 'cpu', '--out', str(tmp_path), '--bottleneck', 'ae',
             '--denoise', 'gauss', '--enc', 'mlp', '--dec', 'mlp']), 0)

@pytest.mark.parametrize('args,msg', [
    (['--dataset', 'imagenet'], "unknown dataset 'imagenet'"),
    (['--enc', 'vgg'], "Unknown encoder 'vgg'"),
    (['--bottleneck', 'flow'], "Unknown bottleneck 'flow'"),
    (['--dec', 'pixelcnn'], "Unknown decoder 'pixelcnn'"),
    (['--lik', 'l1'], "unknown likelihood 'l1'"),
    (['--dataset', '/nonexistent/folder'], "unknown dataset"),
    (['--epochs', '0'], "--epochs must be at least 1"),
    (['--device', 'cuda:7' if torch.cuda.is_available() else 'cuda'], "CUDA is not available" if not torch.cuda.is_available() else "cuda"),
    (['--device', 'tpu'], "unknown --device 'tpu'"),
    (['--lr', '1e6', '--subset', '2000'], "the training loss became"),
    (['--denoise', 'mask', '--noise', '1.5'], "`p` (share of pixels masked) must be in [0,1], got 1.5"),
    (['--denoise', 'gauss', '--noise', '-1'], "`std` (of the Gaussian noise) must be >= 0, got -1.0"),
])
def test_bad_args(args, msg, tmp_path, capsys):
    if 'imagenet' not in args and not os.environ.get('FASTAI_AE_DATA'): pytest.skip('needs FASTAI_AE_DATA')
    eq(main(['train', '--device', 'cpu', '--subset', '256', '--epochs', '1', '--out', str(tmp_path), *args]), 1)
    assert msg in capsys.readouterr().err

def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path/'f.txt'; f.write_text('x')
    eq(main(['train', '--device', 'cpu', '--subset', '256', '--epochs', '1', '--out', str(f)]), 1)
    assert 'is a file; expected a folder' in capsys.readouterr().err
    eq(f.read_text(), 'x')

def test_out_under_a_file(tmp_path, capsys):
    f = tmp_path/'f.txt'; f.write_text('x')
    eq(main(['train', '--device', 'cpu', '--subset', '256', '--epochs', '1', '--out', str(f/'run')]), 1)
    assert 'f.txt is a file; expected a folder for the learner' in capsys.readouterr().err

def test_bad_lr(capsys):
    with pytest.raises(SystemExit, match="--lr must be a number or 'find'"): main(['train', '--lr', 'fast'])

def test_bad_option():
    r = run('train', '--epochs', 'many')
    eq(r.returncode, 2)
    assert 'invalid int value' in r.stderr

def test_quiet_import():
    "Importing the library (and so every command) prints none of fastai's deprecation warnings"
    r = subprocess.run([sys.executable, '-W', 'default', '-c', 'import fastai_ae.all'], capture_output=True, text=True, timeout=300)
    eq(r.returncode, 0)
    assert 'jit.script' not in r.stderr and 'chained_assignment' not in r.stderr, r.stderr

def test_help_lists_commands_quickly():
    "`fastai-ae --help` imports neither torch nor the benchmark"
    r = subprocess.run([sys.executable, '-c', 'import sys; from fastai_ae.cli import main\ntry: main(["--help"])\nexcept SystemExit: pass\n'
                        'print(sorted(m for m in ("torch", "fastai_ae.bench.run") if m in sys.modules))'], capture_output=True, text=True, timeout=300)
    assert 'bench' in r.stdout and 'perf' in r.stdout and r.stdout.strip().endswith('[]'), r.stdout + r.stderr
