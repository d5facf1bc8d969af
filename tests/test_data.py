"Bad-input and layout tests for `fastai_ae.data`: every failure must raise one clear error that says what was expected."
import gzip, io, os, pickle, shutil, socket, tarfile, time
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from fastcore.test import test_eq as eq
from fastai_ae.data import *
from fastai_ae.data import CIFAR_TAR, FASHION_CLASSES

SHARED = os.environ.get('FASTAI_AE_DATA')
IDX = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']

@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    "No shared data, an empty home (so no machine cache is found) and a private decode cache, unless a test sets them"
    monkeypatch.delenv('FASTAI_AE_DATA', raising=False)
    monkeypatch.delenv('FASTAI_HOME', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path/'home'))
    monkeypatch.setenv('FASTAI_AE_CACHE', str(tmp_path/'cache'))

def idx_bytes(a, magic=None):
    a = np.asarray(a, dtype=np.uint8)
    hdr = bytes([0,0,8,a.ndim]) if magic is None else magic
    return hdr + np.array(a.shape, dtype='>u4').tobytes() + a.tobytes()

def write_idx_set(d, n=(5,3), gz=True, nlabels=None):
    "Four small idx files (n train, n test images of 4x4) in folder `d`"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrs = [rng.integers(0,256,(n[0],4,4)), np.arange(n[0])%10, rng.integers(0,256,(n[1],4,4)), np.arange(n[1])%10]
    if nlabels is not None: arrs[1] = arrs[1][:nlabels]
    for nm,a in zip(IDX, arrs):
        b = idx_bytes(a)
        if gz: (d/(nm+'.gz')).write_bytes(gzip.compress(b))
        else: (d/nm).write_bytes(b)
    return arrs

def no_network(monkeypatch):
    def fail(*a, **k): raise socket.gaierror(-2, 'Name or service not known (network disabled by test)')
    monkeypatch.setattr(socket, 'getaddrinfo', fail)

# ---- resolution order and layouts

def test_explicit_path_synthetic(tmp_path):
    arrs = write_idx_set(tmp_path/'mine')
    ds = mnist(path=tmp_path/'mine', download=False)
    eq((ds.x.shape, ds.x_test.shape, ds.x.dtype, ds.y.dtype), ((5,1,4,4), (3,1,4,4), torch.uint8, torch.int64))
    eq(ds.x[:,0].numpy(), arrs[0].astype(np.uint8))
    eq(ds.y.tolist(), [0,1,2,3,4])

def test_explicit_path_is_not_replaced(tmp_path, monkeypatch):
    "An explicit `path` without the files is an error even when FASTAI_AE_DATA has them"
    write_idx_set(tmp_path/'env'/'mnist')
    monkeypatch.setenv('FASTAI_AE_DATA', str(tmp_path/'env'))
    (tmp_path/'other').mkdir()
    with pytest.raises(FileNotFoundError) as e: mnist(path=tmp_path/'other')
    assert str(tmp_path/'other') in str(e.value) and 'train-images-idx3-ubyte' in str(e.value)

def test_env_then_torchvision_cache(tmp_path, monkeypatch):
    "FASTAI_AE_DATA layout `fashion-mnist/`, and torchvision's `FashionMNIST/raw` (uncompressed) under ~/.fastai_ae/data"
    write_idx_set(tmp_path/'env'/'fashion-mnist', n=(4,2))
    write_idx_set(tmp_path/'home'/'.fastai_ae'/'data'/'FashionMNIST'/'raw', n=(6,2), gz=False)
    ds = fashion_mnist(download=False)
    eq(len(ds), 6)
    eq(ds.classes, FASHION_CLASSES)
    monkeypatch.setenv('FASTAI_AE_DATA', str(tmp_path/'env'))
    eq(len(fashion_mnist(download=False)), 4)

def test_fastai_home_root(tmp_path, monkeypatch):
    write_idx_set(tmp_path/'fa'/'data'/'MNIST'/'raw', n=(7,2))
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'fa'))
    eq(len(mnist(download=False)), 7)

# ---- missing data

def test_missing_no_download(tmp_path, monkeypatch):
    (tmp_path/'empty').mkdir()
    monkeypatch.setenv('FASTAI_AE_DATA', str(tmp_path/'empty'))
    with pytest.raises(FileNotFoundError) as e: mnist(download=False)
    msg = str(e.value)
    for s in [str(tmp_path/'empty'), str(tmp_path/'empty'/'mnist'), str(tmp_path/'home'/'.fastai_ae'/'data'/'MNIST'/'raw'),
              'download=False', 'FASTAI_AE_DATA', 'path=', 'train-labels-idx1-ubyte']:
        assert s in msg, (s, msg)

def test_missing_download_offline(tmp_path, monkeypatch):
    "No network: the torchvision download fails, and its failure is one of the places listed"
    (tmp_path/'empty').mkdir()
    monkeypatch.setenv('FASTAI_AE_DATA', str(tmp_path/'empty'))
    no_network(monkeypatch)
    with pytest.raises(FileNotFoundError) as e: fashion_mnist(download=True)
    msg = str(e.value)
    for s in ['download with torchvision.datasets.FashionMNIST', 'failed', str(tmp_path/'empty'/'fashion-mnist'), 'go online']:
        assert s in msg, (s, msg)

def test_cifar_missing(tmp_path, monkeypatch):
    (tmp_path/'empty').mkdir()
    monkeypatch.setenv('FASTAI_AE_DATA', str(tmp_path/'empty'))
    with pytest.raises(FileNotFoundError) as e: cifar10(download=False)
    msg = str(e.value)
    assert CIFAR_TAR in msg and 'cifar-10-batches-py' in msg and str(tmp_path/'empty'/'cifar10-jpeg') in msg

def test_partial_set_is_reported(tmp_path):
    write_idx_set(tmp_path/'m')
    (tmp_path/'m'/'t10k-labels-idx1-ubyte.gz').unlink()
    with pytest.raises(FileNotFoundError) as e: mnist(path=tmp_path/'m')
    assert 'missing t10k-labels-idx1-ubyte' in str(e.value)

# ---- corrupt idx files

def test_truncated_gz(tmp_path):
    write_idx_set(tmp_path/'m', n=(300,3))
    fn = tmp_path/'m'/'train-images-idx3-ubyte.gz'
    b = fn.read_bytes(); fn.write_bytes(b[:len(b)//2])
    with pytest.raises(DataError) as e: mnist(path=tmp_path/'m')
    assert 'corrupt or truncated gzip' in str(e.value) and 'train-images' in str(e.value)

@pytest.mark.skipif(not SHARED, reason='needs FASTAI_AE_DATA')
def test_truncated_real_gz(tmp_path):
    "A truncated copy of the real MNIST train images"
    d = tmp_path/'m'
    shutil.copytree(Path(SHARED)/'mnist', d)
    fn = d/'train-images-idx3-ubyte.gz'
    os.chmod(fn, 0o644)
    b = fn.read_bytes(); fn.write_bytes(b[:len(b)-1000])
    with pytest.raises(DataError) as e: mnist(path=d)
    assert str(fn) in str(e.value) and 'truncated' in str(e.value)

def test_truncated_data_in_valid_gzip(tmp_path):
    "A complete gzip stream whose content is cut: the declared dims no longer match the byte count"
    write_idx_set(tmp_path/'m')
    fn = tmp_path/'m'/'t10k-images-idx3-ubyte.gz'
    fn.write_bytes(gzip.compress(gzip.decompress(fn.read_bytes())[:-5]))
    with pytest.raises(DataError) as e: mnist(path=tmp_path/'m')
    assert 'declares shape (3, 4, 4) = 48 bytes' in str(e.value) and 'holds 43' in str(e.value)

def test_wrong_magic(tmp_path):
    write_idx_set(tmp_path/'m')
    fn = tmp_path/'m'/'train-labels-idx1-ubyte.gz'
    fn.write_bytes(gzip.compress(idx_bytes(np.arange(5), magic=bytes([0,0,0x0d,1]))))  # 0x0d: float data, not uint8
    with pytest.raises(DataError) as e: mnist(path=tmp_path/'m')
    assert 'expected magic bytes 00 00 08' in str(e.value) and '00 00 0d 01' in str(e.value)

def test_count_mismatch(tmp_path):
    write_idx_set(tmp_path/'m', nlabels=4)
    with pytest.raises(DataError) as e: mnist(path=tmp_path/'m')
    assert 'holds 5 images but' in str(e.value) and 'holds 4 labels' in str(e.value) and 'one label per image' in str(e.value)

def test_label_out_of_range(tmp_path):
    write_idx_set(tmp_path/'m')
    (tmp_path/'m'/'train-labels-idx1-ubyte.gz').write_bytes(gzip.compress(idx_bytes([0,1,2,3,10])))
    with pytest.raises(DataError) as e: mnist(path=tmp_path/'m')
    assert 'labels must be in [0,10)' in str(e.value)

def test_not_gzip(tmp_path):
    write_idx_set(tmp_path/'m')
    (tmp_path/'m'/'t10k-labels-idx1-ubyte.gz').write_bytes(b'<html>404 Not Found</html>')
    with pytest.raises(DataError) as e: mnist(path=tmp_path/'m')
    assert 'not a gzip file' in str(e.value) and 'expected gzip magic bytes 1f 8b' in str(e.value)

def test_read_idx_empty(tmp_path):
    (tmp_path/'e-idx1-ubyte').write_bytes(b'')
    with pytest.raises(DataError) as e: read_idx(tmp_path/'e-idx1-ubyte')
    assert 'an empty file' in str(e.value)

# ---- CIFAR: tarball, cache, pickles

def write_tar(fn, members, size=(8,8)):
    with tarfile.open(fn, 'w:gz') as tf:
        for i,nm in enumerate(members):
            b = io.BytesIO(); Image.new('RGB', size, (i*20%256, 0, 0)).save(b, 'JPEG', quality=95)
            ti = tarfile.TarInfo(nm); ti.size = len(b.getvalue()); tf.addfile(ti, io.BytesIO(b.getvalue()))

MEMBERS = ['train/cat/0001.jpg', 'train/cat/0000.jpg', 'test/dog/0000.jpg', 'train/dog/0000.jpg', 'test/cat/0000.jpg']

def test_tar_and_cache(tmp_path):
    fn = tmp_path/CIFAR_TAR
    write_tar(fn, MEMBERS)
    ds = cifar10(path=tmp_path)
    eq((ds.x.shape, ds.y.tolist(), ds.y_test.tolist(), ds.classes, ds.name),
       ((3,3,8,8), [0,0,1], [0,1], ['cat','dog'], 'CIFAR-10 (JPEG q75 subset)'))
    caches = list((tmp_path/'cache').glob('*.npz'))
    eq(len(caches), 1)
    ds2 = cifar10(path=fn)  # the file itself also works, and reads the cache
    eq(ds2.x, ds.x); eq(ds2.classes, ds.classes)
    # a cache that cannot be read is rebuilt, not trusted
    caches[0].write_bytes(b'garbage')
    eq(cifar10(path=fn).x, ds.x)
    # a new archive (other size/mtime) gets a new cache entry
    write_tar(fn, MEMBERS[:4]); os.utime(fn, ns=(time.time_ns(), time.time_ns()+10**9))
    eq(len(cifar10(path=fn).x_test), 1)
    eq(len(list((tmp_path/'cache').glob('*.npz'))), 2)

def test_corrupt_tar(tmp_path):
    fn = tmp_path/CIFAR_TAR
    write_tar(fn, MEMBERS*40)
    b = fn.read_bytes(); fn.write_bytes(b[:len(b)//2])
    with pytest.raises(DataError) as e: cifar10(path=fn)
    assert 'corrupt or truncated tar.gz' in str(e.value) and str(fn) in str(e.value)
    fn.write_bytes(b'not a tarball at all')
    with pytest.raises(DataError) as e: read_image_tar(fn)
    assert 'corrupt or truncated tar.gz' in str(e.value)

def test_tar_bad_layout_and_image(tmp_path):
    fn = tmp_path/'x.tar.gz'
    write_tar(fn, ['train/cat/0000.jpg', 'cat/0001.jpg'])
    with pytest.raises(DataError) as e: read_image_tar(fn)
    assert "unexpected member 'cat/0001.jpg'" in str(e.value) and '{train,test}/<class>/<image>' in str(e.value)
    with tarfile.open(fn, 'w:gz') as tf:
        ti = tarfile.TarInfo('train/cat/0000.jpg'); ti.size = 5; tf.addfile(ti, io.BytesIO(b'hello'))
    with pytest.raises(DataError) as e: read_image_tar(fn)
    assert 'train/cat/0000.jpg: not a readable image' in str(e.value)

def write_batches(d, n=4):
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(d/'batches.meta', 'wb') as f: pickle.dump({b'label_names': [b'a', b'b', b'c']}, f)
    for nm in [f'data_batch_{i}' for i in range(1,6)]+['test_batch']:
        with open(d/nm, 'wb') as f: pickle.dump({b'data': rng.integers(0,256,(n,3072),dtype=np.uint8), b'labels': [i%3 for i in range(n)]}, f)

def test_cifar_pickles(tmp_path):
    write_batches(tmp_path/'home'/'.fastai_ae'/'data'/'cifar-10-batches-py')
    ds = cifar10(download=False)
    eq((ds.x.shape, ds.x_test.shape, ds.classes, ds.name), ((20,3,32,32), (4,3,32,32), ['a','b','c'], 'CIFAR-10'))

def test_cifar_corrupt_pickle(tmp_path):
    d = tmp_path/'cifar-10-batches-py'
    write_batches(d)
    b = (d/'data_batch_3').read_bytes(); (d/'data_batch_3').write_bytes(b[:100])
    with pytest.raises(DataError) as e: cifar10(path=tmp_path)
    assert 'data_batch_3: corrupt or truncated CIFAR-10 pickle' in str(e.value)

# ---- image folders

def pngs(d, n, col=(0,0,0), size=(6,5)):
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n): Image.new('RGB', size, col).save(d/f'{i}.png')

def test_image_folder_unknown_path(tmp_path):
    with pytest.raises(FileNotFoundError) as e: image_folder(tmp_path/'nope')
    assert 'is not a folder' in str(e.value) and 'class sub-folders' in str(e.value)

def test_image_folder_empty(tmp_path):
    (tmp_path/'e').mkdir(); (tmp_path/'e'/'notes.txt').write_text('hi')
    with pytest.raises(DataError) as e: image_folder(tmp_path/'e')
    assert 'no image files found' in str(e.value) and 'one sub-folder of images per class' in str(e.value)

def test_image_folder_unreadable(tmp_path):
    pngs(tmp_path/'f'/'a', 2)
    (tmp_path/'f'/'a'/'bad.png').write_bytes(b'\x89PNG but not really')
    with pytest.raises(DataError) as e: image_folder(tmp_path/'f')
    assert 'bad.png: not a readable image' in str(e.value)

def test_image_folder_sizes(tmp_path):
    pngs(tmp_path/'f'/'a', 2); pngs(tmp_path/'f'/'b', 2, size=(9,9))
    with pytest.raises(DataError) as e: image_folder(tmp_path/'f')
    assert 'pass size=' in str(e.value)
    ds = image_folder(tmp_path/'f', size=(4,7))
    eq((ds.shape, ds.y.tolist(), ds.c), ((3,4,7), [0,0,1,1], 2))

def test_image_folder_split(tmp_path):
    pngs(tmp_path/'f'/'a', 10)
    ds = image_folder(tmp_path/'f', valid_pct=0.3, seed=1)
    eq((len(ds), len(ds.x_test)), (7, 3))
    eq(image_folder(tmp_path/'f', valid_pct=0.3, seed=1).x, ds.x)
    pngs(tmp_path/'t'/'train', 3); pngs(tmp_path/'t'/'test', 2)
    ds = image_folder(tmp_path/'t')
    eq((len(ds), len(ds.x_test), ds.y), (3, 2, None))
    with pytest.raises(ValueError) as e: image_folder(tmp_path/'t', valid_pct=0.2)
    assert 'leave it None' in str(e.value)
    with pytest.raises(ValueError) as e: image_folder(tmp_path/'f', valid_pct=1.5)
    assert 'must be in (0,1)' in str(e.value)

def test_image_folder_mixed(tmp_path):
    pngs(tmp_path/'f'/'a', 2); pngs(tmp_path/'f', 1)
    with pytest.raises(DataError) as e: image_folder(tmp_path/'f')
    assert 'both images and class sub-folders' in str(e.value)

# ---- ImageData

def test_imagedata_checks():
    x = torch.zeros(4,1,2,2, dtype=torch.uint8)
    with pytest.raises(ValueError) as e: ImageData(x, torch.tensor([0,1,2]))
    assert 'one label per image' in str(e.value)
    with pytest.raises(ValueError) as e: ImageData(x[0])
    assert '(N,C,H,W)' in str(e.value)
    ds = ImageData(x, torch.tensor([0,1,0,1]), x[:2], torch.tensor([1,1]), ['p','q'], 'toy')
    with pytest.raises(IndexError) as e: ds.subset([0,4])
    assert 'indices must be in [0,4)' in str(e.value)
    s = ds.subset(torch.tensor([True,False,False,True]))
    eq((len(s), s.y.tolist(), len(s.x_test)), (2, [0,1], 2))
    assert repr(ds) == "ImageData('toy': 4 train, 2 test, shape (1, 2, 2), 2 classes ['p', 'q'])"
    eq(len(ds.show(3).axes), 3)

@pytest.mark.skipif(not SHARED, reason='needs FASTAI_AE_DATA')
def test_real_mnist(monkeypatch):
    monkeypatch.setenv('FASTAI_AE_DATA', SHARED)
    ds = mnist(download=False)
    eq((ds.x.shape, ds.x_test.shape, ds.c, int(ds.y.bincount()[1])), ((60000,1,28,28), (10000,1,28,28), 10, 6742))

def test_relative_env_path_from_the_shells_folder(tmp_path):
    "`FASTAI_AE_DATA=../shared/data` as the README writes it still works when a runner (nbdev-test) moves to another folder"
    import os, subprocess, sys
    root = Path(__file__).resolve().parent.parent
    data = Path(os.environ.get('FASTAI_AE_DATA', root.parent/'shared'/'data')).resolve()
    rel = os.path.relpath(data, root)
    env = {**os.environ, 'FASTAI_AE_DATA': rel, 'PWD': str(root)}
    code = "import os; os.chdir('nbs'); from fastai_ae.data import mnist; print(len(mnist(download=False)))"
    r = subprocess.run([sys.executable, '-c', code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode==0, r.stderr[-2000:]
    assert r.stdout.strip().endswith('60000'), r.stdout
