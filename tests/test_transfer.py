"Few-label splits, tasks and `encoder_learner`: reproducibility and bad input with clear errors."
import pytest, torch
from torch import nn
from fastcore.test import test_eq as eq
from fastai_ae.data import ImageData
from fastai_ae.loaders import cls_dls
from fastai_ae.learner import ae_learner
from fastai_ae.loaders import ae_dls
from fastai_ae.transfer import *
from fastai_ae.bench.methods import *

torch.set_num_threads(1)

def _ds(n=1200, nt=100, c=10, seed=0):
    "Synthetic labelled `ImageData`: random 8x8 grey images, labels cycling over `c` classes"
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n,1,8,8), generator=g, dtype=torch.uint8)
    xt = torch.randint(0, 256, (nt,1,8,8), generator=g, dtype=torch.uint8)
    return ImageData(x, torch.arange(n)%c, xt, torch.arange(nt)%c, [f'c{i}' for i in range(c)], 'synth')

@pytest.fixture(scope='module')
def ds(): return _ds()

def test_few_labels_reproducible(ds):
    a = few_labels(ds, 100, seed=5)
    torch.manual_seed(1); b = few_labels(ds, 100, seed=5)
    torch.manual_seed(2); c = few_labels(ds, 100, seed=5)
    eq(a, b); eq(a, c)
    eq(a.dtype, torch.long)
    assert not torch.equal(a, few_labels(ds, 100, seed=6))
    eq(torch.bincount(ds.y[few_labels(ds, 23, seed=0)], minlength=10).tolist(), [3]*3+[2]*7)

def test_few_labels_pool_and_uniform(ds):
    pool = torch.arange(300, 700)
    i = few_labels(ds, 40, seed=0, pool=pool)
    assert i.min() >= 300 and i.max() < 700
    u = few_labels(ds, 33, seed=0, per_class=False, pool=pool)
    eq(len(u.unique()), 33)
    eq(few_labels(ds, 33, seed=0, per_class=False, pool=pool.flip(0)), u)   # pool order does not matter

@pytest.mark.parametrize('kw,msg', [
    (dict(n=0), 'at least 1'),
    (dict(n=5), 'n >= the number of classes (10)'),
    (dict(n=2000), 'pool holds only 1200'),
    (dict(n=50, pool=torch.arange(30)), 'pool holds only 30'),
    (dict(n=20, pool=torch.tensor([i for i in range(60) if i%10!=9])), "class 'c9' has only 0 images in the pool"),
    (dict(n=10, pool=torch.tensor([0, 5000])), 'indices into the 1200'),
])
def test_few_labels_errors(ds, kw, msg):
    with pytest.raises(ValueError) as e: few_labels(ds, **kw)
    assert msg in str(e.value), str(e.value)

def test_few_labels_bad_dataset(ds):
    with pytest.raises(ValueError, match='no labels'): few_labels(ImageData(ds.x), 10)
    with pytest.raises(TypeError, match='ImageData'): few_labels(ds.x, 10)

def test_make_task(ds):
    t = make_task(ds, 'tiny', 128, seed=1, device='cpu', epochs=dict(ae=1))
    eq(len(t.pool), 512); eq(len(t.lbl), 128); eq(len(t.test_x), 1200-512)
    assert set(t.lbl.tolist()) <= set(t.pool.tolist())
    eq(t.epochs['ae'], 1); eq(tuple(t.epochs), stage_names())   # one entry per stage the methods declare
    eq(make_task(ds, 'tiny', 256, seed=1).pool, t.pool)
    k = make_task(ds, 'kingma', 100, device='cpu')
    eq(len(k.pool), 1200); eq(k.test_y, ds.y_test)
    eq(len(k.lbl_data()), 100); eq(len(k.pool_data()), 1200); eq(len(k.test_ds), 100)

def test_make_task_errors(ds):
    with pytest.raises(KeyError, match="Unknown protocol 'nope'.*'kingma'"): make_task(ds, 'nope', 100)
    with pytest.raises(ValueError, match='at most the 512'): make_task(ds, 'tiny', 600)
    with pytest.raises(ValueError, match='unknown `epochs`'): make_task(ds, 'kingma', 100, epochs=dict(pretrain=1))
    with pytest.raises(ValueError, match='test split'): make_task(ImageData(ds.x, ds.y, classes=ds.classes), 'kingma', 100)
    with pytest.raises(ValueError, match='more than 512'): make_task(_ds(n=500), 'tiny', 100)

def test_methods_registry():
    assert {'ae','vae','m1','cnn','resnet18','pca_svm'} <= set(methods)
    with pytest.raises(KeyError, match="Unknown method 'm9'"): methods['m9']

@pytest.fixture(scope='module')
def ae(ds):
    return ae_learner(ae_dls(ds, bs=64, idxs=range(256), device='cpu'), enc='mlp', dec='mlp', bottleneck='vae', nz=4)

def test_encoder_learner_bad_input(ds, ae):
    dls = cls_dls(ds, bs=32, idxs=range(100), device='cpu')
    for bad in (nn.Linear(3,3), ae.model.enc, 'vae'):
        with pytest.raises(TypeError, match='expected a trained autoencoder'): encoder_learner(dls, bad)
    with pytest.raises(ValueError, match=r'norm=ae.dls.norm'):
        encoder_learner(cls_dls(ds, bs=32, idxs=range(100), device='cpu', norm=True), ae)

def test_encoder_learner_frozen(ds, ae):
    learn = encoder_learner(cls_dls(ds, bs=32, idxs=range(100), device='cpu'), ae)
    body,head = learn.model
    eq(len(learn.opt.param_groups), 2)
    assert not any(p.requires_grad for p in body.parameters())
    eq(head[-1].out_features, 10)
    learn.unfreeze()
    assert all(p.requires_grad for p in body.parameters())
    # accepts the AutoEncoder module and its (encoder, bottleneck) too
    eq(encoder_learner(learn.dls, ae.model).model[0][1].bn.nz, 4)
    eq(encoder_learner(learn.dls, (ae.model.enc, ae.model.bn), n_out=3).model[1][-1].out_features, 3)

def test_resnet18_weights_missing():
    with pytest.raises(FileNotFoundError, match='not found'): resnet18_weights('/nonexistent/resnet18.pth')
