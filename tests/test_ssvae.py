"Tests of the semi-supervised VAE (M2, M1+M2): exact enumeration, the loss formula, a short run, bad input"
import math, os, pytest, torch, torch.nn.functional as F
from torch import nn
from fastcore.test import test_eq as eq, test_close as close, test_fail as fails
from fastai_ae.data import mnist
import kornia.augmentation as K
from fastai_ae.loaders import TensorDS, cls_dls, ae_dls
from fastai_ae.layers import gauss_kl
from fastai_ae.learner import ae_learner
from fastai_ae.transfer import few_labels
from fastai_ae.ssvae import *
from fastai_ae.callbacks import *
from fastai_ae.bench.methods import *



@pytest.fixture(scope='module')
def ds(): return mnist()

@pytest.fixture(scope='module')
def dls(ds):
    return ssvae_dls(ds, few_labels(ds, 100, seed=0), pool=range(2000), bs=50, bs_lab=20, device='cpu',
                     valid=TensorDS(ds.x_test[:1000], ds.y_test[:1000]))

def _ref_nelbo(m, x):
    "-L(x,y) for every class by one separate forward pass per class (eval mode: z is the posterior mean)"
    res = []
    for k in range(m.c):
        y = torch.full((len(x),), k)
        mu,lv = m.bn.stats(F.relu(m.hx(m.enc(x)) + m.hy(y)))
        out = m.dec(torch.cat([mu, F.one_hot(y, m.c).float()], 1))
        nll = F.binary_cross_entropy_with_logits(out, x, reduction='none').flatten(1).sum(1) if m.lik=='bernoulli' else \
              0.5*((x-out[:,:x.shape[1]]).pow(2)/out[:,x.shape[1]:].clamp(-10,10).exp() + out[:,x.shape[1]:].clamp(-10,10) + math.log(2*math.pi)).flatten(1).sum(1)
        res.append(nll + gauss_kl(mu, lv) + math.log(m.c))
    return torch.stack(res, 1)

@pytest.mark.parametrize('lik,shape,clf', [('bernoulli', (1,28,28), 'mlp'), ('bernoulli', (1,28,28), 'conv'), ('gauss', (16,1,1), 'mlp')])
def test_unlabelled_bound_is_exact_sum_over_classes(lik, shape, clf):
    torch.manual_seed(0)
    m = M2(shape, 10, nz=8, nh=64, clf=clf, lik=lik).eval()
    x = torch.rand(6, *shape) if lik=='bernoulli' else torch.randn(6, *shape)
    with torch.no_grad():
        lg,ne,kl = m(x)
        ref = _ref_nelbo(m, x)
    close(ne, ref, eps=1e-3)
    q = F.softmax(lg, 1)
    slow = torch.stack([sum(q[i,k]*(ref[i,k] + q[i,k].log()) for k in range(10)) for i in range(6)])
    close(unlab_bound(lg, ne), slow, eps=1e-3)

def test_labelled_path_matches_enumeration():
    torch.manual_seed(0)
    m = M2((1,28,28), 10, nz=8, nh=64).eval()
    x,y = torch.rand(5,1,28,28), torch.tensor([3,1,4,1,5])
    with torch.no_grad(): close(m.elbo_terms(x, y)[0], _ref_nelbo(m, x).gather(1, y[:,None])[:,0], eps=1e-3)

def test_labelled_loss_formula():
    "loss = mean(-L(x,y)) + mean(U(x)) + alpha/n_lab * mean(CE) on a hand-made batch"
    lf = SSVAELoss(alpha=6000., n_lab=100)
    eq(lf.w, 60.)
    lg_l = torch.tensor([[2., 0., 0.], [0., 1., 0.]])
    y = torch.tensor([0, 2])
    ne_l,kl_l = torch.tensor([80., 90.]),torch.tensor([4., 6.])
    lg_u,ne_u = torch.tensor([[0., math.log(3.), 0.]]),torch.tensor([[100., 95., 110.]])
    q = torch.tensor([0.2, 0.6, 0.2])
    u = float((q*(ne_u[0] + q.log())).sum())
    ce = (-math.log(math.e**2/(math.e**2+2)) - math.log(1/(2+math.e)))/2
    loss = lf((lg_u, ne_u, lg_l, ne_l, kl_l), y)
    close(loss, 85 + u + 60*ce, eps=1e-4)
    close(lf.lab, 85.); close(lf.unlab, u, eps=1e-4); close(lf.clf, ce, eps=1e-5); close(lf.kl, 5.)

def test_nelbo_formula_on_labelled_batch():
    "-L(x,y) = -log p(x|y,z) + log c + KL, z the posterior mean in eval mode"
    torch.manual_seed(0)
    m = M2((1,8,8), 4, nz=3, nh=16).eval()
    x,y = torch.rand(2,1,8,8), torch.tensor([0,3])
    with torch.no_grad():
        mu,lv = m.bn.stats(F.relu(m.hx(m.enc(x)) + m.hy(y)))
        p = torch.sigmoid(m.dec(torch.cat([mu, F.one_hot(y, 4).float()], 1)))
        nll = -(x*p.log() + (1-x)*(1-p).log()).sum((1,2,3))
        kl = 0.5*(mu.pow(2) + lv.exp() - 1 - lv).sum(1)
        ne,k = m.elbo_terms(x, y)
    close(ne, nll + math.log(4) + kl, eps=1e-3)
    close(k, kl, eps=1e-5)

def test_loaders(ds, dls):
    xu,xl,yl = dls.one_batch()
    eq(xu.shape, (50,1,28,28)); eq(xl.shape, (20,1,28,28)); eq(yl.dtype, torch.long)
    eq(len(dls.train), 40)
    ys = torch.cat([b[2] for b in dls.train])
    eq(torch.bincount(ys, minlength=10), torch.full((10,), 80))   # labelled images cycle evenly
    eq([o.shape for o in dls.valid.one_batch()], [(500,1,28,28), (500,)])

def test_short_run_learns(ds, dls):
    torch.manual_seed(0)
    learn = ssvae_learner(dls, nh=128, nz=16)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 2e-3)
    probs,targs = learn.get_preds()
    eq(probs.shape, (1000,10))
    close(probs.sum(1), torch.ones(1000), eps=1e-4)
    acc = float((probs.argmax(1)==targs).float().mean())
    assert acc > 0.5, acc
    cls,i,p = learn.predict(ds.x_test[0])
    eq(cls, ds.classes[int(i)])
    eq([n for n in learn.recorder.metric_names[1:-1]], ['train_loss','valid_loss','accuracy','lab','unlab','clf','kl'])
    fig = learn.plot_cond_samples(n=2)
    eq(len(fig.axes), 20)

@pytest.fixture(scope='module')
def m1(ds):
    torch.manual_seed(0)
    m1 = ae_learner(ae_dls(ds, bs=50, idxs=range(2000), device='cpu'), enc='mlp', bottleneck='vae', dec='mlp', nz=16)
    with m1.no_bar(), m1.no_logging(): m1.fit_one_cycle(3, 3e-3)
    return m1

@pytest.mark.parametrize('clf', ['z', 'conv'])
def test_m1m2_short_run(ds, dls, m1, clf):
    torch.manual_seed(0)
    w0 = m1.model.enc[1].weight.clone()
    learn = m1m2_learner(dls, m1, clf=clf, clf_tfms=[K.RandomCrop((28,28), padding=2)] if clf!='z' else None, nh=128, nz=16)
    # q(y|z1) on M1's codes (the paper) or q(y|x) on the images, never both
    eq(learn.model.clf is None, clf=='z'); eq(learn.model.m2.clf is None, clf!='z')
    eq(learn.loss_func.w, 0.5 if clf=='z' else 5)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 2e-3)
    eq(learn.model.m1.enc[1].weight, w0)            # M1 stays frozen
    acc = accuracy_on(learn, ds.x_test[:1000], ds.y_test[:1000])
    assert acc > 0.4, acc
    eq(learn.plot_cond_samples(n=1).axes[0].images[0].get_array().shape, (28,28))
    fails(lambda: m1m2_learner(dls, m1, thresh=1e3), contains='no active latent unit')

def test_m1m2_image_classifier_terms(ds, dls, m1):
    "With `clf` on the images, the bounds are M2's on M1's codes and the logits are `clf`'s; `clf_tfms` only in training"
    torch.manual_seed(0)
    learn = m1m2_learner(dls, m1, clf='conv', clf_tfms=[K.RandomCrop((28,28), padding=2)], nh=64, nz=8)
    m = learn.model.eval()
    xu,xl,yl = dls.one_batch()
    with torch.no_grad():
        lg,ne,kl = m(xu)
        close(lg, m.clf(xu)); close(m.classify(xu), m.clf(xu))
        ref_ne,ref_kl = m.m2.elbo_terms(m.feats(xu))
        close(ne, ref_ne, eps=1e-4); close(kl, ref_kl, eps=1e-4)
        lg_u,ne_u,lg_l,ne_l,kl_l = m(xu, xl, yl)
        close(ne_l, m.m2.elbo_terms(m.feats(xl), yl)[0], eps=1e-4)
        close(ne_l, m(xl)[1].gather(1, yl[:,None])[:,0], eps=1e-4)
        m.train()
        assert not torch.allclose(m.classify(xu), m.clf(xu))   # shifted in training (both with BatchNorm in training mode)
    m.eval()

def test_m1m2_classifier_kw(dls, m1):
    "`clf_kw` reaches the image classifier: the bench's three-layer conv q(y|x)"
    learn = m1m2_learner(dls, m1, clf='conv', clf_kw=dict(nfs=(8,16,32), nh=24), nh=32, nz=4)
    eq([l.out_channels for l in learn.model.clf.modules() if isinstance(l, nn.Conv2d)], [8,16,32])
    eq(learn.model.clf[-1].in_features, 24)

def test_methods_registered():
    assert {'m2', 'm1m2', 'm1m2_cons', 'm1m2_z'} <= set(methods)

def test_consistency_on_pixel_m2(ds, dls):
    "M2 on pixels takes its second view from the callback's `tfms`; the `cons` column lives for one fit"
    torch.manual_seed(0)
    cb = Consistency(3., tfms=[K.RandomCrop((28,28), padding=2)])
    learn = ssvae_learner(dls, clf='conv', nh=32, nz=4, cbs=cb)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    eq(learn.recorder.metric_names[-2], 'cons')
    assert 0 < learn.recorder.values[-1][-1] < math.log(10)
    eq(cb.count, len(dls.train))
    eq(len(learn.metrics), 5)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    eq(learn.recorder.metric_names.filter(lambda o: o=='cons'), ['cons'])     # one column, not one per fit
    # the term and its reference: KL of torch.distributions
    from torch.distributions import Categorical, kl_divergence
    a,b = torch.randn(5,10),torch.randn(5,10)
    close(cons_kl(a, b), kl_divergence(Categorical(logits=a), Categorical(logits=b)).mean())

def test_consistency_bad_input(dls):
    for w in (-1, float('nan')): fails(lambda: Consistency(w), contains='must be >= 0')
    from fastai.learner import Learner
    learn = Learner(dls, nn.Linear(2,2), loss_func=F.mse_loss, cbs=Consistency())
    fails(lambda: learn.fit(1), contains='needs a model with `classify`')

@pytest.mark.skipif(not os.environ.get('FASTAI_AE_DATA'), reason='needs FASTAI_AE_DATA')
def test_m1m2_cons_bench_smoke(ds, tmp_path):
    "`m1m2_cons` runs as a bench method end to end (smoke budget: 1 epoch of M1 and of M2 on 1,000 images)"
    from fastai_ae.bench.run import run_bench, read_results
    run_bench(ds, 'kingma', labels=[100], methods='m1m2_cons', out=tmp_path, budget='smoke', device='cpu')
    r, = read_results(tmp_path/'results.csv')
    eq(r['method'], 'm1m2_cons'); assert 'consistency weight 1' in r['note'], r['note']
    assert 0.1 < float(r['acc']) <= 1
    assert '*M1+M2*' in (tmp_path/'results.md').read_text()

def test_bad_input(ds, dls):
    learn = ssvae_learner(dls, nh=32, nz=4)
    xu,xl,yl = dls.one_batch()
    fails(lambda: ssvae_learner(cls_dls(ds, idxs=range(100), device='cpu')), contains='ssvae_dls')
    fails(lambda: ssvae_learner(dls, n_out=5), contains='does not match the 10 classes')
    fails(lambda: learn.model(xu, xl, yl+10), contains='labels must be in [0,10)')
    fails(lambda: learn.model(xu, xl, yl[:3]), contains='expected 20 labels')
    fails(lambda: learn.model(xu, xl), contains='need their labels')
    fails(lambda: learn.model(xu[:,:,:20]), contains='(bs,1,28,28)')
    fails(lambda: learn.loss_func(learn.model.eval()(xu[:4]), torch.tensor([0,1,2,12])), contains='[0,10)')
    fails(lambda: SSDL(TensorDS(ds.x[:100]), lab=TensorDS(ds.x[:10], ds.y[:10]), c=5), contains='labels must be in [0,5)')
    fails(lambda: SSDL(TensorDS(ds.x[:100]), lab=TensorDS(ds.x[:10])), contains='labelled `TensorDS`')
    fails(lambda: ssvae_dls(ds, [70000]), contains='indices into the 60000')
    fails(lambda: ssvae_dls(ds.x, [0]), contains='ImageData')
    fails(lambda: learn.predict(ds.x_test[:2]), contains='one image')
    fails(lambda: M2((1,28,28), 10, lik='poisson'), contains="expected one of ['bernoulli', 'mse', 'cat256', 'gauss']")
    fails(lambda: M2((1,28,28), 1), contains='at least 2 classes')
    fails(lambda: SSVAELoss(-1., 10), contains='>= 0')
    fails(lambda: m1m2_learner(dls, learn), contains='trained VAE')
    fails(lambda: M2((4,1,1), 10, lik='gauss', clf=None).classify(torch.randn(2,4,1,1)), contains='clf=None')

def test_m1m2_bad_input(ds, dls, m1):
    learn = m1m2_learner(dls, m1, clf='conv', nh=32, nz=4)
    m,(xu,xl,yl) = learn.model,dls.one_batch()
    fails(lambda: M1M2(m1.model, M2((4,1,1), 10, lik='gauss', clf=None), torch.ones(16), 0, 1), contains='needs a classifier')
    fails(lambda: m1m2_learner(dls, m1, clf=None), contains="must be 'z'")
    fails(lambda: m(xu, xl), contains='need their labels')
    fails(lambda: m(xu, xl, yl+10), contains='labels must be in [0,10)')
    fails(lambda: m(xu[:,:,:20]), contains='(bs,c,h,w)')
    fails(lambda: m1m2_learner(dls, m1, clf='nope'), contains='nope')

def test_freeze_trains_the_last_group(ds, dls, m1):
    "`freeze` (and so `fine_tune`'s first phase) leaves only the classifier trainable; M1 never becomes trainable"
    def n_train(learn): return sum(p.numel() for p in learn.model.parameters() if p.requires_grad)
    learn = ssvae_learner(dls, clf='mlp', nh=64, nz=8)
    learn.freeze()
    eq(n_train(learn), sum(p.numel() for p in learn.model.clf.parameters()))
    learn.unfreeze(); eq(n_train(learn), sum(p.numel() for p in learn.model.parameters()))
    l2 = m1m2_learner(dls, m1, clf='z', nh=32, nz=4)
    l2.freeze(); eq(n_train(l2), sum(p.numel() for p in l2.model.m2.clf.parameters()))
    l2.unfreeze(); assert not any(p.requires_grad for p in l2.model.m1.parameters())
