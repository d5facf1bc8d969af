"FixMatch on the library's learners: the callback with `simple_cnn_learner` and `encoder_learner`, its columns, a short run that the pool helps, bad input"
import os
import pytest, torch
from fastcore.test import test_eq as eq
from fastai.torch_core import set_seed
from fastai.callback.core import Callback
from fastai_ae.data import ImageData, load_dataset
from fastai_ae.loaders import TensorDS, cls_dls, ae_dls
from fastai_ae.learner import ae_learner
from fastai_ae.transfer import few_labels, simple_cnn_learner, encoder_learner
from fastai_ae.augment import weak_tfms, RandAug
from fastai_ae.fixmatch import FixMatch

needs_data = pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')

@pytest.fixture(scope='module')
def ds(): return load_dataset('mnist')

def _dls(ds, lbl, n_test=2000):
    dls = cls_dls(ds, bs=32, idxs=lbl, device='cpu', tfms=weak_tfms(28))
    dls.valid = dls.valid.new(TensorDS(ds.x_test[:n_test], ds.y_test[:n_test]))
    return dls

@needs_data
@pytest.mark.parametrize('kind', ['cnn', 'encoder'])
def test_columns_with_each_learner(ds, kind):
    "The table gains sup, unsup and mask; the loss is their sum; the pool images reach the model (3 x the labelled batch)"
    set_seed(0)
    dls = _dls(ds, few_labels(ds, 100), 500)
    fm = FixMatch(TensorDS(ds.x[:2000]), mu=2, thresh=0.)
    if kind=='cnn': learn = simple_cnn_learner(dls, cbs=fm)
    else:
        ae = ae_learner(ae_dls(ds, bs=64, idxs=range(256), device='cpu'), enc='conv', bottleneck='ae', dec='conv', nz=8)
        learn = encoder_learner(dls, ae, freeze=False, cbs=fm)
    sizes = []
    orig = learn.model.forward
    learn.model.forward = lambda x: (sizes.append(len(x)), orig(x))[1]
    with learn.no_bar(): learn.fit(1, 1e-3)
    eq(learn.recorder.metric_names[1:-1], ['train_loss', 'valid_loss', 'accuracy', 'sup', 'unsup', 'mask'])
    eq(sizes[0], 32*(1+2*2))                  # labelled + weak + strong views of mu*B pool images
    _,_,_,sup,unsup,mask = learn.recorder.values[-1]
    eq(mask, 1.)                              # threshold 0: every pseudo-label counts
    assert unsup > 0 and sup > 0
    eq(learn.metrics.attrgot('name'), ['accuracy'])   # the columns leave with the fit

@needs_data
def test_pool_beats_labels_alone(ds):
    "A short CPU run (300 steps, 100 labels): the unlabelled term raises the test accuracy of the same run without it"
    lbl = few_labels(ds, 100, seed=0)
    acc = {}
    for use in (False, True):
        set_seed(0)
        dls = _dls(ds, lbl)
        learn = simple_cnn_learner(dls, cbs=FixMatch(TensorDS(ds.x)) if use else None)
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(300//len(dls.train), 3e-3)
        acc[use] = learn.recorder.values[-1][2]
    assert acc[True] > acc[False], acc

def test_bad_input():
    x = torch.zeros(10,1,28,28, dtype=torch.uint8)
    with pytest.raises(TypeError, match='uint8'): FixMatch(torch.zeros(10,1,28,28))
    with pytest.raises(ValueError, match='holds no images'): FixMatch(x[:0])
    with pytest.raises(ValueError, match='positive integer'): FixMatch(x, mu=1.5)
    with pytest.raises(ValueError, match=r'in \[0,1\]'): FixMatch(x, thresh=1.2)
    with pytest.raises(ValueError, match='>= 0'): FixMatch(x, lam=-1)

def test_needs_a_classifier_loader():
    x = torch.randint(0, 255, (64,1,28,28), dtype=torch.uint8)
    ds = ImageData(x, torch.arange(64)%2, x, torch.arange(64)%2, classes=['a','b'], name='toy')
    learn = ae_learner(ae_dls(ds, bs=16, device='cpu'), enc='mlp', bottleneck='ae', dec='mlp', nz=4)
    with pytest.raises(TypeError, match="trains a classifier"):
        with learn.no_bar(): learn.fit(1, cbs=FixMatch(x))
    other = torch.zeros(8,1,14,14, dtype=torch.uint8)
    learn = simple_cnn_learner(cls_dls(ds, bs=16, device='cpu'))
    with pytest.raises(ValueError, match='differ in shape'):
        with learn.no_bar(): learn.fit(1, cbs=FixMatch(other))

@needs_data
def test_flex_thresholds_follow_learning(ds):
    "FixMatch(flex=True): every pseudo-label counts at first (all thresholds 0), the status records confident pool images, the mask column stays in [0,1]"
    from fastai_ae.fixmatch import flex_thresh
    set_seed(0)
    dls = _dls(ds, few_labels(ds, 100), 500)
    fm = FixMatch(TensorDS(ds.x[:3000]), mu=2, thresh=0.5, flex=True)   # a low tau: images are learnt within a few dozen steps
    learn = simple_cnn_learner(dls, cbs=fm)
    masks = []
    class Rec(Callback):
        order = 100
        def after_batch(self):
            if self.training: masks.append(fm.sums['mask']/fm.steps)
    with learn.no_bar(), learn.no_logging(): learn.fit(10, 3e-3, cbs=Rec())
    eq(masks[0], 1.)                            # warm-up: nothing learnt yet, so no threshold
    eq(fm.status.shape, (3000,))
    assert (fm.status >= 0).any() and (fm.status < 10).all()
    thr = flex_thresh(fm.status, 10, fm.thresh)
    assert ((thr >= 0) & (thr <= fm.thresh)).all() and thr.max() > 0   # learnt classes have a threshold again
    assert all(0 <= m <= 1 for m in masks)

@needs_data
def test_export_and_memory(ds, tmp_path):
    "A learner fitted with `FixMatch` exports and loads with its callback; on glibc its `ReleaseMemory` watches the run"
    import platform
    from fastai.learner import load_learner
    set_seed(0)
    fm = FixMatch(TensorDS(ds.x[:512]), mu=2)
    fm.mem.every,fm.mem.slack = 1,0                 # look, and trim on any growth, at every step
    learn = simple_cnn_learner(_dls(ds, few_labels(ds, 100), 500), cbs=fm)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    if platform.libc_ver()[0]=='glibc': assert fm.mem.base > 0
    learn.export(tmp_path/'fm.pkl')
    l2 = load_learner(tmp_path/'fm.pkl')
    assert any(isinstance(c, FixMatch) for c in l2.cbs)
    for a,b in zip(learn.model.state_dict().values(), l2.model.state_dict().values()): eq(a, b)
