"""Development runs for `flexmatch_cnn3`: FlexMatch on MNIST with 100 labels, four networks/optimisers, scored on 10,000
held-out TRAINING images (never the test set). Usage: python network_dev.py VARIANT STEPS (VARIANT: base, nodrop, nodrop_sgd,
deep_nodrop). The runs are not seeded: a rerun gives slightly different figures."""
import os, time, torch, sys, json
from fastai_ae.all import *
from fastai_ae.bench.methods import *
from fastai_ae.bench.methods import _lbl_dls
from fastai.optimizer import SGD
from fastai.interpret import ClassificationInterpretation
torch.set_num_threads(1)
var, steps = sys.argv[1], int(sys.argv[2])
ds = load_dataset('mnist', os.environ.get('FASTAI_AE_DATA'))
# 10,000 training images held out of the pool (seed 1234); 100 labels, ten a class, drawn from the other 50,000 (seed 100)
perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1234))
dev, pool = perm[:10000].sort().values, perm[10000:].sort().values
lbl = few_labels(ds, 100, 100, pool=pool)
task = Task(ds, 'kingma', 100, 100, pool, lbl, ds.x[dev], ds.y[dev], device='cpu', epochs=dict(fm=steps/100))
kw = dict(base={}, nodrop=dict(ps=0.), nodrop_sgd=dict(ps=0., opt_func=partial(SGD, mom=0.9), wd=5e-4), deep_nodrop=dict(ps=0., nfs=(32,64,128)))[var]
lr = 0.03 if 'sgd' in var else 3e-3    # SGD: FixMatch's published learning rate, momentum and weight decay
t0 = time.time()
# the bench's FixMatch cell (`_fixmatch`) as it was when these runs were made: 32 labelled images a batch in the weak
# view, FlexMatch on the pool, `fit_one_cycle` for the steps, no validation pass, float32 and channels-first
dls = _lbl_dls(task, bs=32, tfms=weak_tfms(ds.x.shape[-2:]))
fm = FixMatch(task.pool_data().x, flex=True)
learn = simple_cnn_learner(dls, cbs=fm, **kw)
n = max(1, round(steps/len(dls.train)))
with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(n, lr, cbs=SkipValid())
note = f"FlexMatch tau={fm.thresh:g} mu={fm.mu} bs 32, {n*len(dls.train)} steps, EMA {fm.ema.decay:g}"
with learn.no_bar():
    interp = ClassificationInterpretation.from_learner(learn, ds_idx=1)    # the held-out training images, EMA weights
    cm = interp.confusion_matrix()
    top = [(int(n),a,b) for a,b,n in interp.most_confused(min_val=5)[:6]]
acc = float(cm.trace()/cm.sum())
print(json.dumps(dict(var=var, steps=steps, dev_acc=acc, secs=round(time.time()-t0), note=note, top_confusions=top)))
