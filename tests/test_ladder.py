"Tests of the Ladder networks end to end: a short run, predict on a file, export to a fresh process, interpretation, the bench methods, bad input"
import subprocess, sys, textwrap
import numpy as np, pytest, torch
from PIL import Image
from fastcore.test import test_eq as eq, test_close as close, test_fail as fails
from fastai.interpret import ClassificationInterpretation
from fastai_ae.data import mnist
from fastai_ae.loaders import TensorDS, cls_dls
from fastai_ae.transfer import few_labels
from fastai_ae.ssvae import ssvae_dls
from fastai_ae.ladder import *
from fastai_ae.bench.methods import methods, make_task

SMALL = dict(sizes=(64,32,10), lam=[1.,1.,.1,.1])

@pytest.fixture(scope='module')
def ds(): return mnist()

@pytest.fixture(scope='module')
def dls(ds):
    return ssvae_dls(ds, few_labels(ds, 100, seed=0), pool=range(1000), bs=100, bs_lab=100, device='cpu',
                     valid=TensorDS(ds.x_test[:500], ds.y_test[:500]))

@pytest.fixture(scope='module')
def learn(dls):
    torch.manual_seed(0)
    l = ladder_learner(dls, **SMALL)
    with l.no_bar(), l.no_logging(): l.fit_flat_lin(2)
    return l

def test_short_run_learns_and_reports_every_cost(learn):
    names = learn.recorder.metric_names[1:-1]
    eq(names, ['train_loss', 'valid_loss', 'accuracy', 'ce', 'den0', 'den1', 'den2', 'den3'])
    v = dict(zip(names, learn.recorder.values[-1]))
    assert v['accuracy'] > 0.3, v    # 2 epochs of 10 steps on 100 labels
    close(v['train_loss'], v['ce'] + v['den0'] + v['den1'] + .1*v['den2'] + .1*v['den3'], eps=0.5)   # smoothed loss vs the last batch's terms

def test_interpretation_counts_every_image(learn):
    p,t = learn.get_preds()
    cm = ClassificationInterpretation.from_learner(learn).confusion_matrix()
    eq((cm.shape, int(cm.sum())), ((10,10), 500))
    close(np.trace(cm)/500, float((p.argmax(1)==t).float().mean()), eps=1e-6)

def test_predict_on_a_png_and_in_a_fresh_process_after_export(learn, ds, tmp_path):
    fn = tmp_path/'digit.png'
    Image.fromarray(ds.x_test[0,0].numpy()).save(fn)
    cls,i,p = learn.predict(fn)
    eq((cls, p.shape), (learn.predict(ds.x_test[0])[0], (10,)))
    learn.path = tmp_path
    learn.export('ladder.pkl')
    ref = learn.predict_proba(ds.x_test[:20])
    torch.save(ref, tmp_path/'ref.pt')
    code = textwrap.dedent(f"""
        import torch
        from fastai.learner import load_learner
        l = load_learner({str(tmp_path/'ladder.pkl')!r})
        ref = torch.load({str(tmp_path/'ref.pt')!r})
        x = torch.load({str(tmp_path/'x.pt')!r})
        assert torch.allclose(l.predict_proba(x), ref, atol=1e-5)
        print(l.predict({str(fn)!r})[0])""")
    torch.save(ds.x_test[:20].clone(), tmp_path/'x.pt')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode==0, r.stderr[-2000:]
    eq(r.stdout.strip().splitlines()[-1], cls)

def test_a_nan_loss_stops_the_fit(dls):
    l = ladder_learner(dls, **SMALL)
    with pytest.raises(FloatingPointError):
        with l.no_bar(), l.no_logging(): l.fit(1, lr=1e9)

@pytest.mark.parametrize('nm', ['ladder', 'ladder_gamma', 'ladder_conv', 'ladder_noise'])
def test_bench_methods_run_one_epoch_on_a_small_pool(ds, nm):
    from fastai_ae.data import ImageData
    small = ImageData(ds.x[:300], ds.y[:300], ds.x_test[:200], ds.y_test[:200], ds.classes, 'mnist300')
    r = methods[nm](make_task(small, 'kingma', 20, seed=0, device='cpu', epochs=dict(ladder=1)))
    assert 0 <= r['acc'] <= 1 and '1 ep flat-lin' in r['note'], r

def test_bad_input(ds, dls, learn):
    fails(lambda: ladder_learner(cls_dls(ds, idxs=range(100), device='cpu')), contains='ssvae_dls')
    fails(lambda: ladder_learner(dls, sizes=(64,10), lam=[1., float('nan'), 0.]), contains='`lam` must be finite and >= 0')
    fails(lambda: ladder_learner(dls, sizes=(64,10), lam=[1.,1.,1.], noise=[.3,.3]), contains='one value per layer from the input to the top (3)')
    fails(lambda: learn.predict_proba(torch.rand(4, 1, 27, 28)), contains='28')
    fails(lambda: learn.plot_denoised(n=0), contains='`n` must be >= 1')
    fails(lambda: learn.fit_flat_lin(1, pct_start=1.5), contains='`pct_start` must be in [0,1]')
    fails(lambda: Combinator(4)(torch.zeros(2,4), torch.zeros(2,3)), contains='the same shape (bs,4)')

def test_freeze_trains_the_ladder_above_a_conv_body(dls):
    l = ladder_learner(dls, lam='gamma', body='conv')
    l.freeze()
    bn = {id(p) for m in l.model.body.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
    # fastai keeps BatchNorm trainable when it freezes (`train_bn=True`); every other body weight is frozen
    assert all(not p.requires_grad for p in l.model.body.parameters() if id(p) not in bn)
    assert all(p.requires_grad for n,p in l.model.named_parameters() if not n.startswith('body.'))
    l.unfreeze()
    assert all(p.requires_grad for p in l.model.parameters())
