"Launched by `tests/test_distributed.py` under `torchrun`: one epoch of a learner on indexed images, written per rank to `out`"
import sys, json, time
from pathlib import Path
import torch
from fastai_ae.all import *

kind,out = sys.argv[1],Path(sys.argv[2])
n,bs = 256,32
i = torch.arange(n)
set_seed(0)
x = torch.randint(0, 256, (n,1,28,28), dtype=torch.uint8)
x[:,0,0,0],x[:,0,0,1] = i%256,i//256    # each image carries its own index in two pixels
y = i%4
ds = ImageData(x, y, x[:64], y[:64], classes=list('abcd'), name='indexed')

class Seen(Callback):
    "The indices of the training images each batch holds"
    def before_fit(self): self.idx = []
    def before_batch(self):
        if not self.training: return
        p = self.xb[0][:,0,0,:2].mul(255).round().long()
        self.idx += (p[:,0] + 256*p[:,1]).tolist()

set_seed(0)
ae = ae_learner(ae_dls(ds, bs=bs, device='cpu'), enc='conv', bottleneck='vae', dec='conv', nz=8)
# aug=False: the images carry their index in two pixels, which the default weak view would shift away
learn = ae if kind=='ae' else encoder_learner(cls_dls(ds, bs=bs, device='cpu'), ae, freeze=False, aug=False)
seen = Seen()
init = {k:v.detach().clone() for k,v in learn.model.state_dict().items()}
with learn.no_bar(), learn.distrib_ctx(): learn.fit(1, 1e-3, cbs=seen)
r = rank_distrib()
torch.save({k:v.detach().cpu() for k,v in learn.model.state_dict().items()}, out/f'weights{r}.pth')
if r==0: torch.save(init, out/'init.pth')
(out/f'rank{r}.json').write_text(json.dumps(dict(seen=seen.idx, values=[float(v) for v in learn.recorder.values[-1]], world=num_distrib())))
# rank 0 works on after rank 1 has exited, as `fastai-ae train` does when it saves: no rank may abort on the way out
if r==0: time.sleep(2)
