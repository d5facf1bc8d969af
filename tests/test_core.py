"Bad input to the core: loaders, losses, callbacks and the learner answer with errors that say what was expected"
import math, pytest, torch
from fastcore.test import test_eq as eq, test_close as close
from fastai_ae.data import ImageData
from fastai_ae.loaders import TensorDS, ae_dls, cls_dls, tensor_dls
from fastai_ae.losses import AELoss
from fastai_ae.callbacks import KLWarmup, Denoise
from fastai_ae.learner import ae_learner

@pytest.fixture(scope='module')
def ds():
    "A small synthetic dataset: 256 noisy blobs in 2 classes, 28x28 grey"
    g = torch.Generator().manual_seed(0)
    y = torch.arange(256) % 2
    yy,xx = torch.meshgrid(torch.arange(28.), torch.arange(28.), indexing='ij')
    c = torch.where(y[:,None,None]==0, 9., 19.)
    img = torch.exp(-((xx-c)**2+(yy-14)**2)/30)[:,None]
    x = ((img + 0.1*torch.rand(256,1,28,28, generator=g)).clamp(0,1)*255).to(torch.uint8)
    return ImageData(x[:200], y[:200], x[200:], y[200:], ['left','right'], 'blobs')

def test_loader_bad_input(ds):
    with pytest.raises(ValueError, match=r'\(N,C,H,W\)'): TensorDS(torch.zeros(4,28,28, dtype=torch.uint8))
    with pytest.raises(TypeError, match='uint8'): TensorDS(torch.zeros(4,1,28,28))
    with pytest.raises(ValueError, match=r'shape \(4,\)'): TensorDS(torch.zeros(4,1,28,28, dtype=torch.uint8), torch.zeros(3))
    with pytest.raises(TypeError, match='ImageData'): ae_dls(ds.x)
    with pytest.raises(ValueError, match='between 0 and 1'): ae_dls(ds, valid_pct=0)
    with pytest.raises(ValueError, match='positive batch size'): ae_dls(ds, bs=-1)
    with pytest.raises(ValueError, match='non-empty indices'): ae_dls(ds, idxs=[500])
    with pytest.raises(ValueError, match='one mean and std per channel'): ae_dls(ds, norm=([0.1,0.2],[1,1]))
    unl = ImageData(ds.x, name='unlabelled')
    with pytest.raises(ValueError, match='has no labels'): cls_dls(unl)
    with pytest.raises(ValueError, match="'x' \\(autoencoder\\) or 'y'"): tensor_dls(TensorDS(ds.x), TensorDS(ds.x), target='z')

def test_test_dl(ds):
    dls = ae_dls(ds, bs=32, device='cpu')
    eq(dls.test_dl(ds.x_test[0]).one_batch()[0].shape, (1,1,28,28))
    with pytest.raises(ValueError, match=r'expected images of shape \(N,1,28,28\)'): dls.test_dl(torch.zeros(2,3,32,32))

def test_loss_bad_input():
    with pytest.raises(ValueError, match='expected one of'): AELoss('huber')
    with pytest.raises(ValueError, match='>= 0'): AELoss(beta=-1)

def test_callback_bad_input():
    with pytest.raises(ValueError, match="'lin' or 'cos'"): KLWarmup(sched='exp')
    with pytest.raises(ValueError, match='add up to at most 1'): KLWarmup(pct=0.8, hold=0.5)
    with pytest.raises(ValueError, match="'gauss' or 'mask'"): Denoise('salt')

def test_learner_bad_input(ds):
    dls = ae_dls(ds, bs=32, device='cpu')
    with pytest.raises(KeyError, match="Unknown encoder 'vgg'"): ae_learner(dls, enc='vgg')
    with pytest.raises(KeyError, match="Unknown bottleneck"): ae_learner(dls, bottleneck='flow')
    with pytest.raises(ValueError, match=r'\(x, x\)'): ae_learner(cls_dls(ds, bs=32, device='cpu'))
    learn = ae_learner(dls, nz=4)
    with pytest.raises(ValueError, match=r'\(N,4\)'): learn.decode(torch.zeros(2,8))
    with pytest.raises(ValueError, match=r'expected images of shape \(N,1,28,28\)'): learn.encode(torch.zeros(2,3,28,28, dtype=torch.uint8))
    with pytest.raises(TypeError, match='tensor of images'): learn.encode([1,2,3])

def test_nan_loss(ds):
    "A NaN in the inputs stops training with an error that says what to do"
    x = ds.x.clone()
    dls = ae_dls(ds, bs=32, device='cpu', norm=([0.], [0.]))   # a zero std turns every input into inf/NaN
    learn = ae_learner(dls, nz=4)
    with pytest.raises(FloatingPointError, match='lower learning rate .* check the inputs for NaN'): learn.fit(1, 1e-3)

def test_denoise_and_warmup_train(ds):
    "Denoising VAE with warm-up trains on the synthetic set and the validation loss falls"
    dls = ae_dls(ds, bs=32, device='cpu')
    learn = ae_learner(dls, enc='mlp', dec='mlp', nz=4, cbs=[KLWarmup(pct=0.5), Denoise(std=0.2)])
    before = learn.validate()[0]
    learn.fit_one_cycle(3, 3e-3)
    assert learn.validate()[0] < before
    eq(len(learn.recorder.betas), 3*len(dls.train))
    assert learn.recorder.betas[0] == 0 and math.isclose(learn.recorder.betas[-1], 1.)

def test_inputs_in_any_dtype_or_a_clear_error(tmp_path):
    "0-255 floats are refused rather than saturated; other integer and float dtypes are converted; a corrupt file names itself"
    import pytest
    from fastai_ae.data import mnist
    ds = mnist()
    dls = ae_dls(ds, bs=64, idxs=range(256), device='cpu')
    learn = ae_learner(dls, enc='mlp', dec='mlp', nz=4)
    x = ds.x_test[:4]
    with pytest.raises(ValueError, match=r'float images must be in \[0,1\].*got values from 0 to 255'): dls.test_dl(x.float())
    with pytest.raises(ValueError, match=r'must be in \[0,1\]'): dls.test_dl(x.float()/255 + 0.5)
    z = learn.encode(x)
    close(learn.encode(x.int()), z); close(learn.encode(x.long()), z)
    close(learn.encode(dls.process(x).double()), z)
    with pytest.raises(ValueError, match=r'integer images must be in \[0,255\]'): learn.encode(x.int()*300)
    eq(dls.test_dl(x.float()/255).one_batch()[0].shape, (4,1,28,28))
    bad = tmp_path/'bad.png'; bad.write_bytes(b'\x89PNG\r\n\x1a\n' + b'0'*20)
    with pytest.raises(ValueError, match='bad.png is not a readable image'): dls.test_dl([bad])
    import fastai_ae.latent
    with pytest.raises(ValueError, match='whole latent coordinates'): learn.plot_traversal(x[0], dims=3.7)

def test_whole_numbers_only():
    import pytest
    from fastai_ae.data import mnist
    from fastai_ae.transfer import few_labels
    with pytest.raises(ValueError, match='whole number'): few_labels(mnist(), 12.7)
    eq(len(few_labels(mnist(), 20.0)), 20)

def test_ae_freeze_trains_the_decoder():
    from fastai_ae.data import mnist
    learn = ae_learner(ae_dls(mnist(), bs=64, idxs=range(256), device='cpu'), nz=4)
    n = lambda ps: sum(p.numel() for p in ps if p.requires_grad)
    learn.freeze()
    # fastai keeps BatchNorm layers trainable when it freezes (`train_bn=True`); every other encoder weight is frozen
    import torch.nn as nn
    enc = [p for m in (learn.model.enc, learn.model.bn) for mm in m.modules() if not isinstance(mm, nn.modules.batchnorm._BatchNorm)
           for p in mm.parameters(recurse=False)]
    eq(n(enc), 0)
    eq(n(learn.model.dec.parameters()), sum(p.numel() for p in learn.model.dec.parameters()))
    learn.unfreeze(); eq(n(learn.model.parameters()), sum(p.numel() for p in learn.model.parameters()))
