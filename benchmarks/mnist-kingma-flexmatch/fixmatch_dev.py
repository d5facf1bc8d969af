"Development runs of FixMatch/FlexMatch on a validation split of 10,000 TRAINING images (never the test set), logged along the way"
import os, time, sys, torch, argparse
from fastai_ae.all import *
from fastai_ae.bench.methods import make_task, _lbl_dls, SkipValid
from fastai_ae.augment import weak_tfms
from fastai_ae.fixmatch import FixMatch
p = argparse.ArgumentParser(); p.add_argument('--steps', type=int, default=2000); p.add_argument('--nfs', default='32,64')
p.add_argument('--seed', type=int, default=0); p.add_argument('--lr', type=float, default=3e-3); p.add_argument('--ds', default='mnist')
p.add_argument('--n', type=int, default=100); p.add_argument('--nh', type=int, default=128); p.add_argument("--flex", type=int, default=0); p.add_argument("--mu", type=int, default=7)
p.add_argument('--every', type=int, default=1000); p.add_argument('--thresh', type=float, default=0.95); p.add_argument('--proto', default='kingma')
a = p.parse_args()
ds = load_dataset(a.ds, os.environ.get('FASTAI_AE_DATA'))
t = make_task(ds, a.proto, a.n, a.seed, device='cpu')
cand = torch.tensor(sorted(set(t.pool.tolist())-set(t.lbl.tolist())))   # pool images without a label
# kingma: 10,000 of them drawn with seed 100; tiny: all of them (their labels are used for development only)
val = cand[torch.randperm(len(cand), generator=torch.Generator().manual_seed(100))[:10000]] if a.proto=='kingma' else cand
vx,vy = ds.x[val], ds.y[val]
set_seed(a.seed)
dls = _lbl_dls(t, bs=32, tfms=weak_tfms(28))
dls.valid = dls.valid.new(TensorDS(vx, vy))
fm = FixMatch(t.pool_data().x, flex=bool(a.flex), mu=a.mu, thresh=a.thresh)
class Log(Callback):
    order = 100
    def after_step(self):
        self.n = getattr(self, 'n', 0)+1
        if self.n % a.every: return
        fm.ema.before_validate(); self.model.eval()
        with torch.no_grad(): acc = torch.cat([(self.model(x).argmax(1)==y) for x,y in dls.valid]).float().mean()
        fm.ema.after_validate(); self.model.train()
        print(f"step {self.n} val {acc:.4f} mask {fm.sums['mask']/max(fm.steps,1):.3f} t {time.time()-t0:.0f}", flush=True)
learn = simple_cnn_learner(dls, nfs=tuple(int(o) for o in a.nfs.split(',')), nh=a.nh, cbs=[fm, Log()])
n = max(1, round(a.steps/len(dls.train)))
t0 = time.time()
with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(n, a.lr, cbs=SkipValid())
with learn.no_bar(): pr,tg = learn.get_preds(ds_idx=1)
print(vars(a), 'VAL acc', float((pr.argmax(1)==tg).float().mean()), 'steps', n*len(dls.train), 'sec', round(time.time()-t0), flush=True)
