"RotNet and SimCLR learners end to end: every registry encoder, transfer through `encoder_learner` and `FixMatch`, export to a fresh process, bad input"
import os, subprocess, sys
import pytest, torch
from fastcore.test import test_eq as eq, test_fail as fails
from fastai.torch_core import set_seed
from fastai_ae.data import load_dataset
from fastai_ae.layers import encoders
from fastai_ae.loaders import TensorDS, ae_dls, cls_dls
from fastai_ae.transfer import few_labels, encoder_learner
from fastai_ae.augment import weak_tfms
from fastai_ae.fixmatch import FixMatch
from fastai_ae.pretext import rotnet_learner, simclr_learner, nt_xent, NTXent, rotate_batch, KNNAccuracy, knn_predict

needs_data = pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
LEARNERS = dict(rotnet=rotnet_learner, simclr=simclr_learner)

@pytest.fixture(scope='module')
def ds(): return load_dataset('mnist')

@pytest.fixture(scope='module')
def dls(ds): return ae_dls(ds, bs=32, idxs=range(256), device='cpu', valid=TensorDS(ds.x_test[:64]))

@needs_data
@pytest.mark.parametrize('enc', list(encoders))
@pytest.mark.parametrize('kind', list(LEARNERS))
def test_every_encoder_trains(dls, kind, enc):
    "Each learner on each encoder of the registry: one epoch with its loss columns, then a representation of `nz` per image"
    set_seed(0)
    learn = LEARNERS[kind](dls, enc=enc, nz=16)
    with learn.no_bar(): learn.fit(1, 1e-3)
    eq(learn.recorder.metric_names[3], 'rot_acc' if kind=='rotnet' else 'pos')
    assert all(torch.isfinite(torch.tensor(learn.recorder.values[-1][:2])))
    xb,_ = dls.valid.one_batch()
    eq(learn.encode(xb).shape, (len(xb), 16))

@needs_data
@pytest.mark.parametrize('kind', list(LEARNERS))
def test_transfer_and_export(ds, dls, kind, tmp_path):
    "The encoder goes into `encoder_learner` (frozen: only the head trains) and into `FixMatch`; the learner exports without data and loads in a fresh process"
    set_seed(0)
    learn = LEARNERS[kind](dls, nz=16)
    with learn.no_bar(): learn.fit(1, 1e-3)
    lbl = few_labels(ds, 20)
    clf = encoder_learner(cls_dls(ds, bs=10, idxs=lbl, device='cpu'), learn)
    body = list(clf.model[0].parameters())
    before = [p.detach().clone() for p in body]
    with clf.no_bar(): clf.fit(1, 1e-2)
    assert all(torch.equal(a, p) for a,p in zip(before, body))     # frozen body
    eq(clf.model[0][1].bn.nz, 16)
    fm = encoder_learner(cls_dls(ds, bs=10, idxs=lbl, device='cpu', tfms=weak_tfms(28)), learn, freeze=False,
                         cbs=FixMatch(ds.x[:500], mu=2))
    with fm.no_bar(): fm.fit(1, 1e-3)
    eq(fm.recorder.metric_names[-4:-1], ['sup', 'unsup', 'mask'])
    fn = tmp_path/f'{kind}.pkl'
    learn.export(fn)
    assert fn.stat().st_size < sum(p.numel()*4 for p in learn.model.parameters()) + 1_000_000   # the weights, not the images
    torch.save(ds.x_test[:4], tmp_path/'x.pt')
    code = (f"import torch; from fastai.learner import load_learner; l = load_learner({str(fn)!r}); "
            f"print(tuple(l.encode(torch.load({str(tmp_path/'x.pt')!r})).shape))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode==0, out.stderr
    eq(out.stdout.strip(), '(4, 16)')

def test_bad_input():
    "Clear errors: wrong shapes, temperatures, kNN settings, loaders that are not image batches, and a decoder that is not there"
    fails(lambda: rotate_batch(torch.zeros(2,1,28,20)), contains='square')
    fails(lambda: rotate_batch(torch.zeros(1,28,28)), contains='(B,C,H,H)')
    fails(lambda: nt_xent(torch.randn(4,3), torch.randn(5,3)), contains='same shape')
    fails(lambda: nt_xent(torch.randn(4,3), torch.randn(4,3), tau=0), contains='must be > 0')
    fails(lambda: NTXent(tau=-1.), contains='must be > 0')
    fails(lambda: knn_predict(torch.randn(5,3), torch.zeros(5).long(), torch.randn(2,3), k=6), contains='between 1 and the 5')
    xm,xq = torch.zeros(5,1,8,8, dtype=torch.uint8),torch.zeros(2,1,8,8, dtype=torch.uint8)
    ym,yq = torch.zeros(5).long(),torch.zeros(2).long()
    fails(lambda: KNNAccuracy(xm, ym[:4], xq, yq), contains='one label each')
    fails(lambda: KNNAccuracy(xm, ym, xq, yq, k=9), contains='an int between 1 and the 5 memory images, got 9')
    fails(lambda: KNNAccuracy(xm, ym, xq, yq, k=0), contains='between 1 and the 5 memory images, got 0')
    fails(lambda: KNNAccuracy(xm.float(), ym, xq, yq), contains='`x_mem` must be uint8')
    fails(lambda: KNNAccuracy(xm, ym, xq[0], yq), contains='`x_q` must have shape (N,C,H,W)')
    fails(lambda: KNNAccuracy(xm, ym, xq, yq.float()), contains='`y_q` must be a 1-d long tensor')
    fails(lambda: KNNAccuracy(xm, ym-1, xq, yq), contains='classes must be >= 0')

@needs_data
def test_bad_loaders(ds, dls):
    "Pretext learners need image batches, and have no decoder; an unknown encoder name lists the registry's"
    from fastai.data.core import DataLoaders
    from torch.utils.data import TensorDataset
    xf = ds.x[:32].flatten(1).float()/255
    flat = DataLoaders.from_dsets(TensorDataset(xf, xf), TensorDataset(xf[:8], xf[:8]), bs=8, device="cpu")
    for f in LEARNERS.values(): fails(lambda: f(flat), contains='image batches')
    learn = rotnet_learner(dls, nz=8)
    fails(lambda: learn.decode(torch.zeros(1, 8)), contains='no decoder')
    fails(lambda: rotnet_learner(dls, enc='vit'), contains="Unknown encoder 'vit'")
