"Every encoder x bottleneck x decoder x image shape trains (forward + backward); bad input gives clear errors"
import itertools, pytest, torch
from fastcore.test import test_eq as eq
from fastai_ae.layers import encoders, bottlenecks, decoders
from fastai_ae.models import AutoEncoder
from fastai_ae.losses import AELoss

torch.set_num_threads(1)
SHAPES = [(1,28,28), (3,32,32)]

def _distinct(reg):
    "One name per distinct factory in `reg` (a Registry maps aliases to the same function)"
    seen,res = set(),[]
    for n,f in reg.items():
        if id(f) not in seen: seen.add(id(f)); res.append(n)
    return res

ENCS,BNS,DECS = _distinct(encoders),_distinct(bottlenecks),_distinct(decoders)

def test_registries_nonempty_and_deduped():
    assert ENCS and BNS and DECS
    for reg,names in ((encoders,ENCS), (bottlenecks,BNS), (decoders,DECS)):
        eq(len({id(reg[n]) for n in names}), len(names))
        eq({id(f) for f in reg.values()}, {id(reg[n]) for n in names})
    # the names the rest of this file relies on are present
    assert {'mlp','conv'} <= set(ENCS) and {'ae','vae','vq'} <= set(BNS)

def _dec_kw(dec): return dict(nc=8) if decoders[dec] is decoders.get('spatial') else None

@pytest.mark.parametrize('enc,bn,dec,shape', list(itertools.product(ENCS, BNS, DECS, SHAPES)))
def test_forward_backward(enc, bn, dec, shape):
    torch.manual_seed(0)
    bs = 2
    m = AutoEncoder.from_names(shape, enc=enc, bottleneck=bn, dec=dec, nz=8, dec_kw=_dec_kw(dec))
    x = torch.rand(bs, *shape)
    rec,reg = m(x)
    eq(rec.shape, (bs,*shape)); eq(reg.shape, (bs,))
    assert torch.isfinite(rec).all() and torch.isfinite(reg).all()
    if bottlenecks[bn] is bottlenecks.get('ae'): eq(reg, torch.zeros(bs))
    else: assert (reg>0).all()
    loss = AELoss()((rec,reg), x)
    eq(loss.shape, ()); assert torch.isfinite(loss)
    loss.backward()
    for n,p in m.named_parameters():
        if not p.requires_grad: continue
        # a VQ codebook gets its gradient only through the codebook term of `reg`, which AELoss includes (beta=1)
        assert p.grad is not None, f'{n} got no gradient'
        assert torch.isfinite(p.grad).all(), f'{n} has non-finite gradient'
    # the first encoder layer only gets a gradient through the bottleneck (straight-through for 'vq')
    first = next(p for n,p in m.enc.named_parameters() if n.endswith('weight'))
    assert first.grad.abs().sum()>0
    if hasattr(m.bn, 'codebook'): assert m.bn.codebook.grad.abs().sum()>0
    eq(m.encode(x).shape, (bs,8)); eq(m.decode(torch.randn(2,8)).shape, (2,*shape))

def test_unknown_names():
    for reg,kind in ((encoders,'encoder'), (bottlenecks,'bottleneck'), (decoders,'decoder')):
        with pytest.raises(KeyError, match=f"Unknown {kind} 'nope'; expected one of: 'mlp'|Unknown {kind} 'nope'; expected one of: 'ae'"):
            reg['nope']
    with pytest.raises(KeyError, match="'mlp', 'conv', 'resnet'"): AutoEncoder.from_names((1,28,28), enc='cnn')

def test_wrong_input_shape():
    m = AutoEncoder.from_names((1,28,28), nz=8)
    with pytest.raises(ValueError, match=r'expected images of shape \(bs,c,h,w\)=\(bs,1,28,28\), got \(4, 3, 32, 32\)'):
        m(torch.rand(4,3,32,32))
    with pytest.raises(ValueError, match=r'\(bs,1,28,28\), got \(4, 28, 28\)'): m(torch.rand(4,28,28))
    with pytest.raises(ValueError, match=r'expected codes of shape \(bs,nz\)=\(bs,8\)'): m.decode(torch.rand(4,16))

def test_bad_construction():
    with pytest.raises(ValueError, match='`nz` divisible by the code size `d`=4, got nz=6'): bottlenecks['vq'](256, 6)
    with pytest.raises(ValueError, match='needs h and w divisible by 4'): decoders['conv'](8, (1,30,28))
    with pytest.raises(ValueError, match='`nz` must be a positive int, got 0'): AutoEncoder.from_names((1,28,28), nz=0)
    with pytest.raises(ValueError, match=r'`shape` must be \(c,h,w\)'): encoders['conv']((28,28))
    with pytest.raises(ValueError, match='Bottleneck outputs nz=8 codes but the decoder expects nz=16'):
        AutoEncoder(encoders['mlp']((1,28,28)), bottlenecks['ae'](512, 8), decoders['mlp'](16, (1,28,28)))
    with pytest.raises(TypeError, match="needs a bottleneck with a prior"): AutoEncoder.from_names((1,28,28), bottleneck='vq').sample(2)
