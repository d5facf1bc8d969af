"Bad-input and end-to-end tests for `fastai_ae.latent`: every failure raises one clear error saying what was expected."
import os, sys
from pathlib import Path
import pytest, torch
from torch import nn
from fastcore.test import test_eq as eq
from fastai.learner import Learner
from fastai_ae.data import ImageData
from fastai_ae.loaders import ae_dls, cls_dls
from fastai_ae.learner import AELearner, ae_learner
from fastai_ae.latent import *

SHARED = os.environ.get('FASTAI_AE_DATA')

@pytest.fixture(scope='module', autouse=True)
def threads():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def ds():
    "A small synthetic labelled set of 1x28x28 images (bright squares at a class-dependent place)"
    g = torch.Generator().manual_seed(0)
    def mk(n):
        y = torch.arange(n) % 4
        x = torch.randint(0, 40, (n,1,28,28), generator=g, dtype=torch.uint8)
        for i,c in enumerate(y.tolist()): x[i,0,6*c:6*c+8,6*c:6*c+8] = 255
        return x, y
    (x,y),(xt,yt) = mk(256),mk(64)
    return ImageData(x, y, xt, yt, classes=['a','b','c','d'], name='squares')

@pytest.fixture(scope='module')
def learn(ds): return ae_learner(ae_dls(ds, bs=64, device='cpu'), nz=8)

@pytest.fixture(scope='module')
def clf(ds):
    "An `AELearner` wrapping a classifier by mistake: it has no decoder"
    return AELearner(cls_dls(ds, device='cpu'), nn.Sequential(nn.Flatten(), nn.Linear(784, 4)), loss_func=nn.CrossEntropyLoss())

def test_needs_a_decoder(ds, clf):
    x = ds.x_test[0]
    for f in (lambda: clf.plot_samples(), lambda: clf.plot_latents(), lambda: clf.plot_interp(x, x),
              lambda: clf.plot_traversal(x), lambda: clf.plot_worst(), lambda: clf.anomaly_scores(),
              lambda: anomaly_auc(clf, ds.x_test, ds.x_test), lambda: save_plots(clf, 'unused')):
        with pytest.raises(TypeError, match='needs an autoencoder learner'): f()
    plain = Learner(clf.dls, clf.model, loss_func=nn.CrossEntropyLoss())
    with pytest.raises(TypeError, match='got a Learner'): save_plots(plain, 'unused')

def test_plot_latents_bad_input(learn, monkeypatch):
    with pytest.raises(ValueError, match="`method` must be 'tsne', 'pca' or 'umap', got 'lda'"): learn.plot_latents(method='lda')
    with pytest.raises(ValueError, match='at least 5'): learn.plot_latents(n=3)
    with pytest.raises(ValueError, match=r'\(N,1,28,28\)'): learn.plot_latents(torch.zeros(8,3,28,28, dtype=torch.uint8))
    monkeypatch.setitem(sys.modules, 'umap', None)   # as if umap-learn were not installed
    with pytest.raises(ImportError, match=r"pip install 'fastai_ae\[umap\]'"): learn.plot_latents(method='umap', n=20)

def test_plot_latents(learn, ds):
    fig = learn.plot_latents(method='pca', n=40)
    eq(fig.data.xy.shape, (40,2)); eq(fig.data.z.shape, (40,8)); eq(fig.data.method, 'pca')
    eq([t.get_text() for t in fig.axes[0].get_legend().get_texts()], ['a','b','c','d'])
    eq(learn.plot_latents(method='tsne', n=30, seed=1).data.xy, learn.plot_latents(method='tsne', n=30, seed=1).data.xy)

def test_plot_latents_nz2_direct(ds):
    l2 = ae_learner(ae_dls(ds, bs=64, device='cpu'), nz=2)
    fig = l2.plot_latents(method='tsne')
    eq(fig.data.method, 'latents')
    eq(fig.data.xy.float(), fig.data.z)

def test_interp(learn, ds):
    x1,x2 = ds.x_test[0],ds.x_test[1]
    rec = learn.reconstruct(torch.stack([x1,x2])).cpu()
    for s in (False, True):
        fig = learn.plot_interp(x1, x2, steps=5, slerp=s)
        eq(fig.data.imgs.shape, (5,1,28,28))
        assert torch.allclose(fig.data.imgs[[0,-1]], rec, atol=1e-5)
    with pytest.raises(ValueError, match=r'`x1` must be one image of shape \(1, 28, 28\)'): learn.plot_interp(ds.x_test[:3], x2)
    with pytest.raises(ValueError, match=r'`x2` must be one image of shape \(1, 28, 28\)'): learn.plot_interp(x1, torch.rand(1,32,32))
    with pytest.raises(TypeError, match='`x1` must be one image as a tensor'): learn.plot_interp([0]*784, x2)
    with pytest.raises(ValueError, match='`steps` must be at least 2'): learn.plot_interp(x1, x2, steps=1)

def test_interp_codes():
    z1,z2 = torch.tensor([2.,0.]),torch.tensor([0.,2.])
    z,t = interp_codes(z1, z2, 5, slerp=True)
    assert torch.allclose(z.norm(dim=1), torch.full((5,), 2.))        # on the great circle
    assert torch.allclose(z[2], torch.tensor([2**0.5, 2**0.5]))
    z,_ = interp_codes(z1, z2, 5)
    assert torch.allclose(z[2], torch.tensor([1., 1.]))                # on the line
    z,_ = interp_codes(z1, 3*z1, 3, slerp=True)                          # parallel: the line
    assert torch.allclose(z[1], 2*z1)

def test_samples(learn):
    eq(learn.plot_samples(6, seed=0).data.imgs, learn.plot_samples(6, seed=0).data.imgs)
    with pytest.raises(ValueError, match='`n` must be >= 1'): learn.plot_samples(0)

def test_traversal_bad_input(learn, ds):
    x = ds.x_test[0]
    for dims in ([8], [-1], [], [0, 100]):
        with pytest.raises(ValueError, match=r'`dims` must be latent coordinates in 0\.\.7'): learn.plot_traversal(x, dims=dims)
    with pytest.raises(ValueError, match='`span` must be > 0'): learn.plot_traversal(x, span=-1)
    with pytest.raises(ValueError, match='`steps` must be at least 2'): learn.plot_traversal(x, steps=1)
    with pytest.raises(ValueError, match='one image of shape'): learn.plot_traversal(ds.x_test[:2])

def test_traversal(learn, ds):
    fig = learn.plot_traversal(ds.x_test[0], dims=[5, 2], span=2, steps=5)
    eq(fig.data.imgs.shape, (2,5,1,28,28)); eq(fig.data.dims, [5,2])
    z = fig.data.z
    assert torch.allclose(z[0,:,5]-z[0,2,5], torch.linspace(-2,2,5), atol=1e-6)   # VAE: prior std units
    assert torch.allclose(z[0,:,:5], z[0,2,:5].expand(5,-1))                        # the other coordinates stay

def test_worst_and_scores(learn, ds):
    fig = learn.plot_worst(k=3)
    eq(fig.data.err, fig.data.all_err.sort(descending=True)[0][:3])
    with pytest.raises(ValueError, match='`k` must be between 1 and the 64 images'): learn.plot_worst(k=65)
    rec,kl = learn.per_image()
    assert torch.allclose(learn.anomaly_scores(), (rec+kl).cpu())
    eq(learn.anomaly_scores(ds.x_test[:5]).shape, (5,))

def test_anomaly_auc_bad_input(learn, ds):
    with pytest.raises(ValueError, match='`normal` must be a non-empty tensor of images'): anomaly_auc(learn, ds.x_test[:0], ds.x_test)
    with pytest.raises(ValueError, match='`anomalous` must be a non-empty tensor of images'): anomaly_auc(learn, ds.x_test, [1,2])
    with pytest.raises(ValueError, match=r'\(N,1,28,28\)'): anomaly_auc(learn, ds.x_test, torch.zeros(4,1,32,32, dtype=torch.uint8))
    auc = anomaly_auc(learn, ds.x_test[:32], ds.x_test[32:])
    assert 0 <= auc <= 1

def test_save_plots(learn, tmp_path):
    fns = save_plots(learn, tmp_path/'p', method='pca', n=50)
    eq(sorted(o.name for o in (tmp_path/'p').iterdir()), ['interp.png', 'latents.png', 'samples.png', 'traversal.png', 'worst.png'])
    assert all(o.stat().st_size > 1000 for o in fns)

@pytest.mark.skipif(not SHARED, reason='needs MNIST: set FASTAI_AE_DATA')
def test_cli_train_plots(tmp_path):
    from fastai_ae.cli import main
    out = tmp_path/'run'
    eq(main(['train', '--subset', '1000', '--epochs', '1', '--device', 'cpu', '--plots', '--out', str(out)]), 0)
    names = {o.name for o in out.iterdir()}
    assert {'latents.png', 'interp.png', 'samples.png', 'traversal.png', 'worst.png', 'learner.pkl'} <= names, names
    assert all((out/f'{n}.png').stat().st_size > 1000 for n in ('latents','interp','samples','traversal','worst'))
