"""How should the head on a frozen SimCLR encoder train: with which view, on which layer? Chosen on the labels alone.

For each seed of `benchmarks/cifar10-kingma-simclr-full`, the cached SimCLR encoder (100 epochs on the 20,000-image pool)
gets a head trained as the bench's `simclr` method trains it (`encoder_learner`, frozen body, 40 epochs of
`fit_one_cycle` at 1e-2) on 80% of the 4,000 labelled images, and is scored on the other 20% (800 images, drawn with
the seed). The test set is never read. Run from the project root, after the bench command of that page:

    OMP_NUM_THREADS=1 FASTAI_AE_DATA=../shared/data python benchmarks/cifar10-kingma-simclr-head-dev/head_dev.py

`--smoke` checks that the script still runs: one seed, a SimCLR encoder of one epoch trained into a temporary folder,
heads of one epoch, nothing written beside the page. Each run prints the mean accuracy of each head as its last line.
"""
import argparse, csv, json, os, statistics, sys, tempfile, time
from pathlib import Path
import torch, kornia.augmentation as K
from fastai_ae.all import *
from fastai_ae.bench.methods import make_task, _pretrained, _ae_key, _fit

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--smoke', action='store_true', help='one seed, one epoch of everything, in a temporary folder')
args = p.parse_args()
tmp = tempfile.TemporaryDirectory() if args.smoke else None
here = Path(tmp.name if args.smoke else Path(__file__).parent)
out = here/'validation.csv'
cache = here/'cache' if args.smoke else Path('runs/bench/cifar10-kingma-simclr-full/cache')
epochs = dict(clr=1, clf=1) if args.smoke else {}
seeds = range(1 if args.smoke else 3)

# the head's training view, where it cuts the conv encoder (Conv, Conv, Flatten, Linear, ReLU; None: at its 64-d code)
# and its hidden layers (None: `create_head`'s 512; []: linear), or 'logreg' for scikit-learn's logistic regression
views = dict(none=(lambda hw: False, None, None),                              # the committed `simclr` rows' head
             flip_shift=(lambda hw: weak_tfms(hw, flip=True), None, None),     # FixMatch's weak view for CIFAR-10
             crop_flip=(lambda hw: [K.RandomResizedCrop(hw, scale=(0.08, 1.)), K.RandomHorizontalFlip()], None, None),  # solo-learn's linear evaluation
             features=(lambda hw: False, 5, None),                             # the 256 features before the bottleneck
             map=(lambda hw: False, -2, None),                                 # the last conv's 64x8x8 map, flattened
             # second round, after the first: the head on the 256 features
             features_linear=(lambda hw: False, 5, []),                        # a linear head (BatchNorm, dropout, linear)
             features_logreg=(lambda hw: False, 5, 'logreg'))                  # L2 logistic regression, C by 5-fold CV on the 3,200

def logreg(learn):
    "Accuracy on `learn`'s validation images of an L2 logistic regression on its frozen body's features, C by cross-validation"
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    body = learn.model[0].eval()
    with torch.no_grad(): (xt,yt),(xv,yv) = [(torch.cat([body(x) for x,_ in dl]).numpy(), torch.cat([y for _,y in dl]).numpy()) for dl in (learn.dls.train.new(shuffle=False, drop_last=False), learn.dls.valid)]
    m = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)), {'logisticregression__C': [0.01, 0.1, 1., 10.]}, cv=5)
    m.fit(xt, yt)
    return float((m.predict(xv)==yv).mean())

ds = load_dataset('cifar10')
rows = list(csv.DictReader(open(out))) if out.exists() else []
done = {(r['seed'], r['view']) for r in rows}
for seed in seeds:
    task = make_task(ds, 'kingma', 4000, seed, device='cpu', cache=cache, epochs=epochs)
    fn = cache/_ae_key(task, 'simclr', 64, 'clr')
    if not args.smoke and not fn.exists(): sys.exit(f"no cached SimCLR encoder {fn}: run the bench command of benchmarks/cifar10-kingma-simclr-full first")
    ae = _pretrained(task, 'simclr')
    for name,(view,cut,lin) in views.items():
        if (str(seed), name) in done: continue
        set_seed(seed)
        dls = cls_dls(task.lbl_data(), bs=64, valid_pct=0.2, seed=seed, norm=ae.dls.norm, device='cpu')
        learn = encoder_learner(dls, ae, aug=view(dls.train.x.shape[-2:]), cut=cut, lin_ftrs=None if lin=='logreg' else lin)
        t = time.time()
        if lin=='logreg': acc = logreg(learn)
        else:
            _fit(learn, task.epochs['clf'], 1e-2)
            with learn.no_bar(): p,y = learn.get_preds(ds_idx=1)
            acc = float((p.argmax(1)==y).float().mean())
        r = dict(seed=seed, view=name, acc=round(acc, 4), n_train=len(dls.train.x), n_valid=len(dls.valid.x), seconds=round(time.time()-t, 1))
        print(r, flush=True)
        rows.append(r)
        with open(f'{out}.tmp', 'w', newline='') as f:     # each finished row lands whole, so a killed run resumes
            w = csv.DictWriter(f, list(r)); w.writeheader(); w.writerows(rows)
        os.replace(f'{out}.tmp', out)
print(json.dumps(dict(dev_acc={v: round(statistics.mean(float(r['acc']) for r in rows if r['view']==v), 4) for v in views})))
