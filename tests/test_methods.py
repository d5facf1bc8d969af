"Every registered bench method at the smoke budget, a method added with one decorated function, the pages regenerating, and the names of the old layout"
import contextlib, importlib, io, re, shutil
from pathlib import Path
import pytest, torch
from fastcore.test import test_eq as eq
from fastai_ae.data import load_dataset
from fastai_ae.cli import main
from fastai_ae.bench.methods import methods, register_method, stage_names
from fastai_ae.bench.run import run_bench, read_results, write_report

torch.set_num_threads(1)
ROOT = Path(__file__).parent.parent

@pytest.fixture(scope='module')
def ds(): return load_dataset('mnist')

def _distinct(reg):
    "One name per registered function (aliases map several names to one)"
    seen = {}
    for k,f in reg.items(): seen.setdefault(id(f), k)
    return list(seen.values())

@pytest.mark.parametrize('m', _distinct(methods))
def test_every_method_runs_at_smoke_budget(ds, tmp_path, m):
    "Registering a method is enough for it to be run here: one cell, one epoch a stage, 1,000 pool and 500 test images"
    s = run_bench(ds, 'kingma', labels=[100], methods=m, seeds=1, out=tmp_path, budget='smoke', device='cpu')
    r = read_results(tmp_path/'results.csv')
    eq([(o['method'], o['n'], o['seed']) for o in r], [(m, 100, 0)])
    assert 0 <= r[0]['acc'] <= 1 and r[0]['note'], r[0]
    assert set(methods[m].stages) <= set(stage_names())
    eq(list(s.method), [m])

def _run_cli(argv):
    "Exit code and stdout of `fastai-ae` with `argv` (`--help` exits through SystemExit)"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try: rc = main(argv)
        except SystemExit as e: rc = e.code
    return rc, out.getvalue()

def test_one_decorated_function_is_a_bench_method(tmp_path):
    @register_method('throwaway', epochs={'kingma': dict(probe=3), 'tiny': dict(probe=5)}, budgets={'cpu': dict(probe=.5)})
    def throwaway(task):
        "Majority class of the labelled images"
        k = int(torch.bincount(task.ds.y[task.lbl]).argmax())
        return dict(acc=float((task.test_y==k).float().mean()), weights=None, note=f"{task.epochs['probe']} probe epochs")
    try:
        rc,hlp = _run_cli(['bench', '--help'])
        eq(rc, 0)
        h = ' '.join(hlp.split())
        assert 'throwaway' in h and 'probe' in h, h
        rc,_ = _run_cli(['bench', '--methods', 'throwaway', '--labels', '100', '--seeds', '1', '--budget', 'smoke',
                         '--device', 'cpu', '--out', str(tmp_path)])
        eq(rc, 0)
        r = read_results(tmp_path/'results.csv')
        eq([(o['method'], o['budget'], o['note']) for o in r], [('throwaway', 'smoke', '1 probe epochs')])
        assert 'probe=1' in r[0]['epochs']
        eq(run_bench('mnist', 'kingma', labels=[100], methods='throwaway', seeds=1, out=tmp_path/'cpu', budget='cpu', device='cpu').k.tolist(), [1])
        assert read_results(tmp_path/'cpu'/'results.csv')[0]['note'] == '2 probe epochs'
    finally: methods.pop('throwaway')
    assert 'probe' not in stage_names()

_DATE = re.compile(r'; page written [0-9T:-]+')

@pytest.mark.parametrize('page', sorted(p.parent.name for p in (ROOT/'benchmarks').glob('*/results.csv')))
def test_committed_pages_regenerate(tmp_path, page):
    "Each committed benchmark page is what its results.csv gives, apart from the date it was written"
    d = tmp_path/page
    shutil.copytree(ROOT/'benchmarks'/page, d)
    write_report(d, png=False)
    eq(_DATE.sub('', (d/'results.md').read_text()), _DATE.sub('', (ROOT/'benchmarks'/page/'results.md').read_text()))

# The public names of fastai_ae.all before the library and the benchmark were separated (0.1.0)
OLD = {
    'data': ['FASHION_CLASSES', 'CIFAR_TAR', 'CIFAR_JPEG_NAME', 'IMG_EXTS', 'datasets', 'DataError', 'ImageData', 'read_idx', 'data_roots', 'cache_dir', 'mnist', 'fashion_mnist', 'read_image_tar', 'cifar10', 'image_folder', 'load_dataset'],
    'loaders': ['TensorDS', 'RandFlip', 'RandShift', 'ToRGB', 'ResizeBatch', 'TensorDL', 'TensorDataLoaders', 'tensor_dls', 'ae_dls', 'cls_dls', 'folder_ae_dls'],
    'layers': ['encoders', 'bottlenecks', 'decoders', 'register_encoder', 'register_bottleneck', 'register_decoder', 'Registry', 'check_shape', 'check_pos', 'Encoder', 'mlp_encoder', 'conv_encoder', 'resnet_encoder', 'LinearBottleneck', 'gauss_kl', 'GaussBottleneck', 'VQBottleneck', 'Decoder', 'mlp_decoder', 'conv_decoder', 'SpatialBroadcast', 'spatial_decoder'],
    'models': ['AutoEncoder'],
    'losses': ['rec_losses', 'bernoulli_rec', 'mse_rec', 'cat256_rec', 'AELoss'],
    'callbacks': ['KLWarmup', 'Denoise', 'NaNGuard'],
    'learner': ['adamw', 'evaluating', 'AELearner', 'ae_learner'],
    'vis': ['show_images'],
    'transfer': ['protocols', 'EPOCH_STAGES', 'methods', 'few_labels', 'default_epochs', 'Task', 'make_task', 'Encode', 'flat_head', 'encoder_splitter', 'encoder_learner', 'simple_cnn_learner', 'RGBNorm', 'rgb_tfms', 'resnet18_weights', 'resnet18_learner', 'pretrained_ae', 'SkipValid', 'register_method', 'ae_method', 'vae_method', 'm1_vae', 'active_units', 'm1_method', 'cnn_method', 'resnet18_method', 'pca_svm_method'],
    'ssvae': ['likelihoods', 'SSDL', 'ssvae_dls', 'bernoulli_nll', 'gauss_nll', 'classifier', 'M2', 'unlab_bound', 'SSVAELoss', 'LabelsIn', 'SSVAELearner', 'ssvae_learner', 'M1M2', 'm1m2_learner', 'cons_kl', 'Consistency', 'task_dls', 'accuracy_on', 'm2_method', 'm1m2_method', 'm1m2_z_method', 'm1m2_cons_method'],
    'latent': ['interp_codes', 'anomaly_auc', 'save_plots'],
    'bench': ['COLS', 'KEY', 'REFS', 'BUDGETS', 'SMOKE_POOL', 'SMOKE_TEST', 'DEFAULT_LABELS', 'parse_labels', 'parse_seeds', 'parse_epochs', 'read_results', 'append_result', 'summarise', 'results_md', 'plot_label_efficiency', 'write_report', 'budget_epochs', 'smoke_cut', 'BenchError', 'device_name', 'check_out', 'bench_command', 'no_bars', 'run_bench', 'bench_parser', 'bench'],
    'perf': ['ROWS', 'CUDA_ROWS', 'perf_model', 'plain_loop', 'EpochTimer', 'AsyncSmoothLoss', 'CudaGraphStep', 'parse_rows', 'parse_bss', 'perf_command', 'run_perf', 'device_desc', 'write_perf', 'perf_parser', 'perf']
}
# Deliberate renames, listed in the README's changelog
RENAMED = {'rec_losses': 'likelihoods', 'bernoulli_nll': 'bernoulli_rec', 'gauss_nll': 'gauss_rec', 'show_images': 'show_grid',
           'EPOCH_STAGES': 'stage_names', 'BUDGETS': 'budgets'}
# Deliberate removals, listed in the README's changelog: importing one names its replacement
REMOVED = {'RandFlip': 'RandomHorizontalFlip', 'RandShift': 'RandomCrop'}
BENCH = ('fastai_ae.bench.methods', 'fastai_ae.bench.run', 'fastai_ae.bench.perf')

@pytest.mark.parametrize('mod', list(OLD))
def test_old_names_importable(mod):
    "Every old public name is still importable: from fastai_ae.all (the library) or fastai_ae.bench (the benchmark), or renamed, or removed with a message"
    lib = vars(importlib.import_module('fastai_ae.all'))
    bench = {k:v for m in BENCH for k,v in vars(importlib.import_module(m)).items()}
    for n in OLD[mod]:
        if n in REMOVED:
            with pytest.raises(ImportError, match=REMOVED[n]): exec(f"from fastai_ae.{mod} import {n}")
            assert f'`{n}`' in (ROOT/'README.md').read_text()
            continue
        new = RENAMED.get(n, n)
        where = lib if mod not in ('bench','perf') and new in lib else bench
        assert new in where, f"{mod}.{n} (now {new}) is not importable"
        if n=='show_images': assert lib[n] is not lib['show_grid']   # fastai's own show_images is no longer shadowed

def test_notebooks_listed_small_and_quiet():
    "The README's table names every notebook and no other; none is over 1 MB or stores progress-bar text"
    import json
    nbs = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb'))
    readme = (ROOT/'README.md').read_text()
    table = readme[readme.index('| notebook | module | what |'):]
    table = table[:table.index('\n\n')]
    listed = sorted(n for row in table.splitlines()[2:] for n in re.findall(r'`(\d\d_[\w.]+)`', row.split('|')[1]))
    eq(listed, nbs)
    for p in (ROOT/'nbs').glob('*.ipynb'):
        assert p.stat().st_size < 2**20, f"{p.name} is {p.stat().st_size/2**20:.1f} MB"
        outs = [o for c in json.loads(p.read_text())['cells'] for o in c.get('outputs', []) if o.get('output_type')=='stream']
        assert not any('\r' in ''.join(o.get('text', '')) for o in outs), f"{p.name} stores progress-bar text"
