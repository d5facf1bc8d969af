"fastai's standard features on every learner of the library: exports without data, show_results, tta, plot_top_losses, mixed precision on the CPU, resuming `fastai-ae train`"
import os, subprocess, sys, json
from pathlib import Path
import pytest, torch
from fastcore.test import test_eq as eq
import matplotlib; matplotlib.use('Agg')
from fastai_ae.data import mnist, ImageData
from fastai_ae.loaders import ae_dls, cls_dls, ToRGB
from fastai_ae.learner import ae_learner
from fastai_ae.transfer import encoder_learner, simple_cnn_learner, few_labels, RGBNorm
from fastai_ae.ssvae import ssvae_dls, ssvae_learner
import fastai_ae.vis
from fastai.interpret import Interpretation, ClassificationInterpretation
from fastai.callback.mixup import MixUp, CutMix

pytestmark = pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
torch.set_num_threads(1)

@pytest.fixture(scope='module')
def ds(): return mnist()

def _small(ds, n=600):
    return ImageData(ds.x[:n], ds.y[:n], ds.x_test[:300], ds.y_test[:300], ds.classes, 'mnist-small')

def learners(ds):
    "One learner of each kind, on small data"
    s = _small(ds)
    adls = ae_dls(s, bs=64, device='cpu')
    ae = ae_learner(adls)
    cdls = cls_dls(s, bs=32, idxs=range(100), device='cpu')
    lbl = few_labels(s, 100)
    return dict(ae=ae, enc=encoder_learner(cdls, ae), cnn=simple_cnn_learner(cdls),
                ssvae=ssvae_learner(ssvae_dls(s, lbl, bs=100, bs_lab=20, device='cpu')))

@pytest.mark.parametrize('kind', ['ae', 'enc', 'cnn', 'ssvae'])
def test_show_results_tta_top_losses(ds, kind):
    learn = learners(ds)[kind]
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    learn.show_results(max_n=4)
    interp = (Interpretation if kind=='ae' else ClassificationInterpretation).from_learner(learn)
    interp.plot_top_losses(3)
    if kind!='ae':
        p,t = learn.tta(n=2)
        eq(p.shape, (300, 10)); eq(t.shape, (300,))

def test_export_has_no_data(ds, tmp_path):
    "The default VAE exports to at most 5 MB; a learner on 1,000 images does not carry the 10,000 test images, nor the SSVAE its labelled ones"
    dls = ae_dls(ds, bs=128, idxs=range(1000), device='cpu')
    learn = ae_learner(dls, enc_kw=dict(nh=128), dec_kw=dict(nh=128))
    learn.path = tmp_path; learn.export('ae.pkl')
    params = sum(p.numel() for p in learn.model.parameters())*4
    size = (tmp_path/'ae.pkl').stat().st_size
    assert size < 5e6 and size < params + 1e6, (size, params)
    s = ssvae_learner(ssvae_dls(ds, few_labels(ds, 100), bs=100, device='cpu'))
    s.path = tmp_path; s.export('s.pkl')
    assert (tmp_path/'s.pkl').stat().st_size < sum(p.numel() for p in s.model.parameters())*4 + 1e6

def test_load_learner_in_fresh_process(ds, tmp_path):
    "An export loads in a new process and predicts, encodes and decodes a new image file"
    from PIL import Image
    dls = ae_dls(ds, bs=128, idxs=range(500), device='cpu')
    learn = ae_learner(dls, enc_kw=dict(nh=64), dec_kw=dict(nh=64))
    learn.path = tmp_path; learn.export('ae.pkl')
    Image.fromarray(ds.x_test[0,0].numpy()).save(tmp_path/'img.png')
    code = f"""
import torch
from fastai_ae.all import *
learn = load_learner({str(tmp_path/'ae.pkl')!r})
rec,_,_ = learn.predict({str(tmp_path/'img.png')!r})
x = learn.dls.test_dl({str(tmp_path/'img.png')!r}).x
z = learn.encode(x); y = learn.decode(z)
print(tuple(rec.shape), tuple(z.shape), tuple(y.shape), len(learn.dls.train.x), learn.dls.vocab[3])
"""
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode==0, r.stderr
    eq(r.stdout.split('\n')[-2], '(1, 28, 28) (1, 16) (1, 1, 28, 28) 0 3')

def test_freeze_counts(ds):
    "`freeze` leaves only the last parameter group trainable on the learners that have a body and a head"
    for kind,learn in learners(ds).items():
        if kind=='cnn': continue    # one parameter group: a model trained from scratch has nothing to freeze
        learn.freeze()
        n = sum(p.requires_grad for p in learn.model.parameters())
        last = len([p for p in learn.opt.param_lists[-1]])
        assert 0 < n < len(list(learn.model.parameters())), kind
        assert n >= last, kind

@pytest.mark.parametrize('kind', ['ae', 'cnn'])
@pytest.mark.parametrize('prec', ['bf16', 'fp16'])
def test_mixed_precision_on_cpu(ds, kind, prec):
    "`to_bf16`/`to_fp16` really autocast on the CPU"
    learn = learners(ds)[kind]
    seen = []
    h = learn.model.register_forward_hook(lambda m,i,o: seen.append((o[0] if isinstance(o, tuple) else o).dtype) if m.training else None)
    (learn.to_bf16 if prec=='bf16' else learn.to_fp16)()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    h.remove()
    eq(set(seen), {torch.bfloat16 if prec=='bf16' else torch.float16})

def test_ssvae_mix_and_predict_path(ds, tmp_path):
    from PIL import Image
    learn = learners(ds)['ssvae']
    for cb in (MixUp(), CutMix()):
        with pytest.raises(ValueError, match='cannot train a semi-supervised VAE'): learn.fit(1, cbs=cb)
    Image.fromarray(ds.x_test[0,0].numpy()).save(tmp_path/'img.png')
    cls,i,p = learn.predict(tmp_path/'img.png')
    eq(cls, ds.classes[int(i)]); eq(p.shape, (10,))

def test_encoder_learner_checks(ds):
    "Loaders normalised otherwise than the autoencoder's are refused, and a diverging fit stops"
    s = _small(ds)
    ae = learners(ds)['ae']
    with pytest.raises(ValueError, match='preprocess'): encoder_learner(cls_dls(s, idxs=range(100), device='cpu', norm=True), ae)
    with pytest.raises(ValueError, match='RGBNorm'): encoder_learner(cls_dls(s, idxs=range(100), device='cpu', tfms=[ToRGB(), RGBNorm()]), ae)
    learn = encoder_learner(cls_dls(s, idxs=range(100), device='cpu'), ae)
    with pytest.raises(FloatingPointError, match='lower learning rate'):
        with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e8)

def _train(*args):
    return subprocess.run([sys.executable, '-m', 'fastai_ae', 'train', '--subset', '600', '--device', 'cpu', '--nh', '32', *args],
                          capture_output=True, text=True, timeout=600)

def test_train_table_and_resume(tmp_path):
    "One aligned line per epoch with its seconds, no carriage returns; a killed run resumes with `--resume`"
    r = _train('--epochs', '2', '--out', str(tmp_path/'a'))
    assert r.returncode==0, r.stderr
    assert '\r' not in r.stdout
    lines = [l for l in r.stdout.splitlines() if l.strip().split(' ')[0] in ('0','1')]
    eq(len(lines), 2)
    head = next(l for l in r.stdout.splitlines() if 'train_loss' in l)
    eq(len(head.split()), len(lines[0].split()))
    assert head.split()[-1]=='seconds'
    ck = torch.load(tmp_path/'a'/'checkpoint.pth', weights_only=False)
    eq((ck['epoch'], len(ck['rows'])), (1, 2))
    # what a run killed after its first epoch leaves: the checkpoint of epoch 0
    ck['epoch'],ck['rows'] = 0,ck['rows'][:1]
    torch.save(ck, tmp_path/'a'/'checkpoint.pth')
    b = tmp_path/'b'; b.mkdir()
    r = _train('--epochs', '2', '--out', str(b), '--resume')
    assert r.returncode==1 and 'no checkpoint to resume from' in r.stderr, r.stderr
    r = _train('--epochs', '3', '--out', str(tmp_path/'a'), '--resume')
    assert r.returncode==1 and 'other settings' in r.stderr, r.stderr
    r = _train('--epochs', '2', '--out', str(tmp_path/'a'), '--resume')
    assert r.returncode==0, r.stderr
    assert 'resuming after epoch 0 of 2' in r.stdout, r.stdout
    eq([l.split()[0] for l in r.stdout.splitlines() if l.strip().startswith(('0 ','1 '))], ['1'])
    eq(json.loads((tmp_path/'a'/'summary.json').read_text())['epoch'], 1)

def test_train_resume_is_exact(tmp_path, monkeypatch):
    "A `train` run killed after its first epoch and resumed (another random state meanwhile) ends with the weights of a run never stopped"
    from fastai.torch_core import set_seed
    from fastai_ae.cli import train_parser, train
    from fastai_ae.callbacks import Checkpoint
    import argparse
    args = lambda out, *a: train_parser(argparse.ArgumentParser()).parse_args(
        ['--subset', '600', '--device', 'cpu', '--nh', '32', '--epochs', '3', '--denoise', 'gauss', '--out', str(out), *a])
    full = train(args(tmp_path/'full')).model.state_dict()
    write = Checkpoint.after_epoch
    def kill(self):
        write(self)
        if self.epoch==0: raise KeyboardInterrupt
    monkeypatch.setattr(Checkpoint, 'after_epoch', kill)
    with pytest.raises(KeyboardInterrupt): train(args(tmp_path/'cut'))
    monkeypatch.setattr(Checkpoint, 'after_epoch', write)
    set_seed(123); torch.rand(10)    # what another process would hold
    res = train(args(tmp_path/'cut', '--resume')).model.state_dict()
    for k,v in full.items(): eq(res[k], v)
