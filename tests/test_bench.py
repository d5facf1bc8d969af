"Tests of `fastai-ae bench`: resuming after interrupts and kills, bad arguments, and the results page"
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from fastcore.test import test_eq as eq
from fastai_ae.bench.run import *
from fastai_ae.bench.run import COLS
from fastai_ae.cli import main
from fastai_ae.data import load_dataset
from fastai_ae.transfer import few_labels
from fastai_ae.bench.methods import methods, protocols, register_method, default_epochs, stage_names

# A row's epochs at the smoke budget: one per stage, in the registry's order ('ae=1,clf=1,...')
SMOKE1 = ','.join(f'{s}=1' for s in stage_names())
SMOKE_M2 = SMOKE1.replace('m2=1', 'm2=3')

torch.set_num_threads(1)

@pytest.fixture(scope='module')
def ds(): return load_dataset('mnist')

class Fake:
    "A method that needs no training: counts its calls, optionally raising `exc` on call number `at`"
    def __init__(self, exc=None, at=None): self.calls,self.exc,self.at = [],exc,at
    def __call__(self, task):
        self.calls.append((task.n, task.seed))
        if self.exc is not None and len(self.calls)==self.at: raise self.exc
        # a deterministic accuracy that depends on the cell, so wrong bookkeeping shows in the numbers
        return dict(acc=0.5 + task.n/10_000 + task.seed/100, weights=None, note=f'fake n={task.n}')

@pytest.fixture
def fake():
    "Register fake methods, removed afterwards"
    names = []
    def _reg(name, f, stages=()):
        # a fake declares the built-in methods' epochs for the stages it shares with them
        register_method(name, epochs={p:{s:default_epochs(p)[s] for s in stages} for p in ('kingma','tiny')} if stages else None)(f)
        names.append(name)
        return f
    yield _reg
    for n in names: methods.pop(n, None)

def _keys(out): return sorted((r['method'], r['n'], r['seed']) for r in read_results(Path(out)/'results.csv'))

def test_resume_skips_finished_cells(ds, fake, tmp_path):
    f = fake('fake_a', Fake())
    run_bench(ds, 'kingma', labels='100,1000', methods='fake_a', seeds=2, out=tmp_path)
    eq(sorted(f.calls), [(100,0), (100,1), (1000,0), (1000,1)])
    eq(_keys(tmp_path), [('fake_a',100,0), ('fake_a',100,1), ('fake_a',1000,0), ('fake_a',1000,1)])
    s = run_bench(ds, 'kingma', labels='100,1000', methods='fake_a', seeds=2, out=tmp_path)
    eq(len(f.calls), 4)                       # nothing recomputed
    eq(len(read_results(tmp_path/'results.csv')), 4)
    eq(list(s.k), [2, 2])
    # more seeds: only the new cells run
    run_bench(ds, 'kingma', labels='100,1000', methods='fake_a', seeds=3, out=tmp_path)
    eq(sorted(f.calls[4:]), [(100,2), (1000,2)])
    r = {(o['n'], o['seed']): o['acc'] for o in read_results(tmp_path/'results.csv')}
    eq(r[(1000,2)], 0.5 + 0.1 + 0.02)

@pytest.mark.parametrize('exc', [KeyboardInterrupt(), SystemExit(3)])
def test_interrupted_run_loses_nothing(ds, fake, tmp_path, exc):
    f = fake('fake_kill', Fake(exc=exc, at=2))
    with pytest.raises(type(exc)): run_bench(ds, 'kingma', labels=[100, 600], methods='fake_kill', seeds=2, out=tmp_path)
    eq(_keys(tmp_path), [('fake_kill',100,0)])   # the first cell was saved, the interrupted one not
    assert (tmp_path/'results.md').exists() and '| fake_kill | 51.0 (1) |' in (tmp_path/'results.md').read_text()
    f.exc = None
    run_bench(ds, 'kingma', labels=[100, 600], methods='fake_kill', seeds=2, out=tmp_path)
    eq(f.calls, [(100,0), (600,0), (600,0), (100,1), (600,1)])  # the cell interrupted is run again, the finished one not
    eq(_keys(tmp_path), [('fake_kill',100,0), ('fake_kill',100,1), ('fake_kill',600,0), ('fake_kill',600,1)])

def test_partial_last_line_is_ignored_and_replaced(ds, fake, tmp_path):
    f = fake('fake_p', Fake())
    run_bench(ds, 'kingma', labels=[100], methods='fake_p', seeds=1, out=tmp_path)
    fn = tmp_path/'results.csv'
    with open(fn, 'a') as o: o.write('MNIST,kingma,fake_p,100,1,0.7')   # a kill in the middle of writing a row
    eq(len(read_results(fn)), 1)
    run_bench(ds, 'kingma', labels=[100], methods='fake_p', seeds=2, out=tmp_path)
    eq(f.calls, [(100,0), (100,1)])
    lines = fn.read_text().splitlines()
    eq(len(lines), 3); eq(lines[0], ','.join(COLS))
    eq(_keys(tmp_path), [('fake_p',100,0), ('fake_p',100,1)])

def test_bad_line_inside_file_is_an_error(tmp_path):
    fn = tmp_path/'results.csv'
    fn.write_text(','.join(COLS) + '\ngarbage\nMNIST,kingma,ae,100,0,0.9,1.0,cpu,,,ae=1,full,2026-01-01\n')
    with pytest.raises(ValueError, match='line 2'): read_results(fn)
    fn.write_text('a,b\n')
    with pytest.raises(ValueError, match='not a bench results file'): read_results(fn)

def test_failing_method_does_not_stop_the_others(ds, fake, tmp_path, capsys):
    fake('fake_ok', Fake())
    bad = fake('fake_bad', Fake(exc=RuntimeError('boom'), at=1))
    rc = main(['bench', '--methods', 'fake_bad,fake_ok', '--labels', '100', '--seeds', '2', '--out', str(tmp_path)])
    eq(rc, 1)
    err = capsys.readouterr()
    assert 'fake_bad n=100 seed=0: RuntimeError: boom' in err.err and 'rerun the same command' in err.err, err.err
    eq(_keys(tmp_path), [('fake_bad',100,1), ('fake_ok',100,0), ('fake_ok',100,1)])
    eq(main(['bench', '--methods', 'fake_bad,fake_ok', '--labels', '100', '--seeds', '2', '--out', str(tmp_path)]), 0)
    eq(bad.calls, [(100,0), (100,1), (100,0)])   # only the failed cell ran again

def test_method_returning_garbage_fails_its_cell(ds, fake, tmp_path):
    fake('fake_g', lambda task: dict(acc=93.5))    # a percentage instead of a fraction
    with pytest.raises(BenchError, match=r'acc=float in \[0,1\]'): run_bench(ds, 'kingma', labels=[100], methods='fake_g', out=tmp_path)
    eq(_keys(tmp_path), [])

def test_other_settings_in_same_folder_refused(ds, fake, tmp_path):
    fake('fake_s', Fake(), stages=('clf',))
    run_bench(ds, 'kingma', labels=[100], methods='fake_s', out=tmp_path, budget='smoke')
    with pytest.raises(ValueError, match='other settings'):
        run_bench(ds, 'kingma', labels=[100], methods='fake_s', out=tmp_path, budget='smoke', epochs='clf=3')
    r = read_results(tmp_path/'results.csv')[0]
    eq((r['epochs'], r['budget'], r['device']), (SMOKE1, 'smoke', 'cpu'))

def test_settings_compared_on_the_stages_a_method_uses(ds, fake, tmp_path):
    fake('fake_clf', Fake(), stages=('clf',)); m2 = fake('fake_m2', Fake(), stages=('m2',))
    run_bench(ds, 'kingma', labels=[100], methods='fake_clf', out=tmp_path, budget='smoke')
    # other m2 epochs beside cells that never train an M2: allowed, and each row keeps its own epochs
    run_bench(ds, 'kingma', labels=[100], methods='fake_m2', out=tmp_path, budget='smoke', epochs='m2=3')
    eq(len(m2.calls), 1)
    eq({r['method']:r['epochs'] for r in read_results(tmp_path/'results.csv')}, {'fake_clf': SMOKE1, 'fake_m2': SMOKE_M2})
    assert f'{SMOKE1} (fake_clf); {SMOKE_M2} (fake_m2)' in (tmp_path/'results.md').read_text()
    # a stage the folder's cells use must keep its epochs
    with pytest.raises(ValueError, match=r'other settings \(fake_m2: epochs ' + SMOKE_M2):
        run_bench(ds, 'kingma', labels=[100], methods='fake_m2', out=tmp_path, budget='smoke', epochs='m2=4')
    with pytest.raises(ValueError, match=r'other settings \(fake_clf: epochs ae=1,clf=1'):
        run_bench(ds, 'kingma', labels=[100], methods='fake_clf,fake_m2', out=tmp_path, budget='smoke', epochs='clf=2,m2=3')
    # the first command still resumes there: its method never trains an M2
    run_bench(ds, 'kingma', labels=[100], methods='fake_clf', out=tmp_path, budget='smoke', seeds=2)
    eq(_keys(tmp_path), [('fake_clf',100,0), ('fake_clf',100,1), ('fake_m2',100,0)])

def test_shared_stage_has_one_setting():
    "A method may add a stage of its own, but a stage another method uses keeps that method's epochs and budget fractions"
    with pytest.raises(ValueError, match=r"sets epochs kingma clf=7, but 'ae' has 40"): register_method('fake_x', epochs={'kingma': dict(clf=7)})
    with pytest.raises(ValueError, match=r"budget 'cpu' needs a fraction for each of its stages"): register_method('fake_x', epochs={'kingma': dict(clf=40)}, budgets={'cpu': {}})
    with pytest.raises(ValueError, match=r"same stages"): register_method('fake_x', epochs={'kingma': dict(clf=40), 'tiny': dict(ft=30)})
    assert 'fake_x' not in methods

def _err(capsys, argv):
    "Exit code and stderr of `fastai-ae` with `argv`"
    try: rc = main(argv)
    except SystemExit as e: rc = e.code
    return rc, capsys.readouterr().err

@pytest.mark.parametrize('args,msg', [
    (['--dataset', 'imagenet'], "unknown dataset 'imagenet'"),
    (['--protocol', 'cifar'], "unknown protocol 'cifar'; expected one of kingma, tiny"),
    (['--methods', 'ae,m3'], "unknown method(s) m3; expected some of"),
    (['--labels', '100,-5'], "--labels must be positive integers"),
    (['--labels', '1e2'], "--labels must be integers separated by commas"),
    (['--protocol', 'tiny', '--labels', '600'], "labels at most the 512 pool images, got n=600"),
    (['--labels', '5'], "n >= the number of classes (10)"),
    (['--seeds', '0'], "--seeds must be at least 1"),
    (['--seeds', '1,-1'], "--seeds must be non-negative"),
    (['--budget', 'gpu'], "unknown --budget 'gpu'; expected one of full, cpu, smoke"),
    (['--epochs', 'pre=3'], "unknown --epochs key(s) ['pre']; expected some of " + str(list(stage_names()))),
    (['--device', 'tpu'], "unknown --device 'tpu'"),
    (['--holdout', '-5'], "--holdout must be a number of training images >= 0, got -5"),
    (['--holdout', '60000'], "cannot hold out 60000 of the 60000 training images of MNIST"),
    (['--holdout', '1000', '--protocol', 'tiny', '--labels', '128'], "which protocol 'tiny' never uses"),
])
def test_bad_arguments(capsys, tmp_path, args, msg):
    rc,err = _err(capsys, ['bench', '--out', str(tmp_path/'o')] + args)
    assert rc not in (0, None), rc
    assert msg in err, err
    assert not (tmp_path/'o').exists()        # nothing created for a refused command

def test_unknown_method_lists_valid_ones(capsys, tmp_path):
    rc,err = _err(capsys, ['bench', '--methods', 'nope', '--out', str(tmp_path)])
    eq(rc, 1)
    for m in ('ae', 'vae', 'm1', 'cnn', 'resnet18', 'pca_svm'): assert m in err.split('expected some of')[1], err

def test_out_is_a_file(capsys, tmp_path):
    fn = tmp_path/'results'; fn.write_text('x')
    rc,err = _err(capsys, ['bench', '--out', str(fn)])
    eq(rc, 1); assert 'is a file; expected a folder' in err, err

def test_out_under_a_file(capsys, tmp_path):
    "An --out inside a file is refused before anything runs, and nothing is made"
    fn = tmp_path/'results'; fn.write_text('x')
    rc,err = _err(capsys, ['bench', '--out', str(fn/'sub')])
    eq(rc, 1); assert 'results is a file; expected a folder (new, or holding a previous bench' in err, err
    eq(fn.read_text(), 'x')

def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as e: main(['bench', '--help'])
    eq(e.value.code, 0)
    out = capsys.readouterr().out
    for o in ('--dataset', '--protocol', '--labels', '--methods', '--seeds', '--out', '--budget', '--epochs', '--device', '--data', '--weights', '--holdout'): assert o in out, o

def test_results_md_from_hand_made_csv(tmp_path):
    "mean ± std (sample std, ddof=1) per cell, the seed count, the published numbers, the command and the device"
    rows = [dict(dataset='MNIST', protocol='kingma', method=m, n=n, seed=s, acc=a, seconds=2., device='NVIDIA H100',
                 weights='', note='', epochs='ae=30', budget='full', date=f'2026-01-0{s+1}T10:00:00')
            for m,n,s,a in [('m1',100,0,.90), ('m1',100,1,.92), ('m1',100,2,.94), ('m1',600,0,.95),
                            ('cnn',100,0,.70), ('cnn',100,1,.80)]]
    for r in rows: append_result(tmp_path/'results.csv', r)
    write_report(tmp_path, cmd='fastai-ae bench --methods m1,cnn')
    md = (tmp_path/'results.md').read_text()
    assert md.startswith('# MNIST: `kingma` protocol')
    assert '| m1 | 92.0 ± 2.0 (3) | 95.0 (1) |' in md, md
    assert '| cnn | 75.0 ± 7.1 (2) |' in md, md                # std of 70, 80 with ddof=1 is 7.07
    assert '| *M1+TSVM* | *88.2* | *94.3* | *published' in md and 'n=1000' not in md, md    # only the counts that were run
    assert '| *CNN* | *77.0* |' in md and '| *NN* | *74.2* |' in md
    assert 'device: NVIDIA H100' in md and '`fastai-ae bench --methods m1,cnn`' in md
    assert 'finished: 2026-01-01T10:00:00 to 2026-01-03T10:00:00' in md
    assert (tmp_path/'label_efficiency.png').stat().st_size > 1000
    s = summarise(rows)
    eq(list(s.method), ['m1', 'm1', 'cnn']); eq(list(s.k), [3, 1, 2])

def test_cifar_jpeg_title(tmp_path):
    rows = [dict(dataset='CIFAR-10 (JPEG q75 subset)', protocol='tiny', method='vae', n=128, seed=0, acc=.4, seconds=1.,
                 device='cpu', weights='', note='', epochs='ae=1', budget='smoke', date='2026-01-01T00:00:00')]
    md = results_md(rows)
    assert md.startswith('# CIFAR-10 (JPEG q75 subset): `tiny` protocol'), md
    assert 'only check the setup' in md

_KILL_SCRIPT = textwrap.dedent('''
    import sys, time
    from fastai_ae.bench.methods import register_method
    @register_method('slow_fake')
    def slow_fake(task):
        time.sleep(1.5)
        return dict(acc=0.5, weights=None, note='slow')
    from fastai_ae.cli import main
    sys.exit(main(['bench', '--methods', 'slow_fake', '--labels', '100,600,1000', '--seeds', '2', '--out', sys.argv[1]]))
''')

def test_kill_9_then_resume(tmp_path):
    "A real `kill -9` of the command: every finished cell is on disk and the rerun completes the table"
    scr = tmp_path/'run.py'; scr.write_text(_KILL_SCRIPT)
    out = tmp_path/'out'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    p = subprocess.Popen([sys.executable, str(scr), str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fn, t0 = out/'results.csv', time.time()
    while time.time()-t0 < 240 and (not fn.exists() or len(read_results(fn)) < 2): time.sleep(0.2)
    p.send_signal(signal.SIGKILL); p.wait()
    done = read_results(fn)
    assert 2 <= len(done) < 6, len(done)
    r = subprocess.run([sys.executable, str(scr), str(out)], env=env, capture_output=True, text=True, timeout=300)
    eq(r.returncode, 0)
    assert f"{len(done)} already in" in r.stdout, r.stdout
    eq(_keys(out), sorted(('slow_fake', n, s) for n in (100, 600, 1000) for s in (0, 1)))
    assert '| slow_fake | 50.0 ± 0.0 (2) | 50.0 ± 0.0 (2) | 50.0 ± 0.0 (2) |' in (out/'results.md').read_text()

def test_weights_must_be_a_file(capsys, tmp_path):
    rc,err = _err(capsys, ['bench', '--methods', 'resnet18', '--weights', str(tmp_path/'nope.pth'), '--out', str(tmp_path/'o')])
    eq(rc, 1)
    assert 'is not a file; expected a torchvision resnet18 state_dict' in err, err
    assert not (tmp_path/'o').exists()

def test_weights_reach_methods_that_take_them(ds, fake, tmp_path):
    "`weights` goes to methods with a `weights` parameter (the ResNet-18), and the results say which file was used"
    def with_w(task, weights=None): return dict(acc=0.9, weights=weights, note='')
    def without_w(task): return dict(acc=0.8, weights=None, note='')
    fake('fake_w', with_w); fake('fake_nw', without_w)
    fn = tmp_path/'w.pth'; torch.save({}, fn)
    run_bench(ds, 'kingma', labels=[100], methods='fake_w,fake_nw', out=tmp_path/'o', budget='smoke', weights=fn)
    rows = {r['method']:r for r in read_results(tmp_path/'o'/'results.csv')}
    eq(rows['fake_w']['weights'], str(fn))
    eq(rows['fake_nw']['weights'], '')
    assert f'--weights {fn}' in (tmp_path/'o'/'results.md').read_text()

def test_garbled_last_line_is_replaced(ds, fake, tmp_path):
    "A crash can leave a whole but garbled last line (newline included): it is ignored, then replaced by the next row"
    fake('fake_gl', Fake())
    run_bench(ds, 'kingma', labels=[100], methods='fake_gl', seeds=1, out=tmp_path)
    fn = tmp_path/'results.csv'
    fn.write_text(fn.read_text() + 'MNIST,kingma,fake_gl,600,0,0.5\n')
    run_bench(ds, 'kingma', labels=[100, 600], methods='fake_gl', seeds=2, out=tmp_path)
    run_bench(ds, 'kingma', labels=[100, 600], methods='fake_gl', seeds=2, out=tmp_path)   # and every rerun reads it
    eq(_keys(tmp_path), sorted(('fake_gl', n, s) for n in (100, 600) for s in (0, 1)))

def test_damaged_cache_is_rebuilt(ds, tmp_path):
    "A truncated autoencoder cache (a crash while saving, before writes were atomic) is trained again, not an error on every rerun"
    from fastai_ae.bench.methods import make_task, pretrained_ae
    from fastai_ae.bench.run import smoke_cut
    t = smoke_cut(make_task(ds, 'kingma', 100, device='cpu', epochs=dict(ae=1), cache=tmp_path))
    a = pretrained_ae(t, 'ae', nz=4)
    fn = a.cache_file
    assert fn.exists() and not a.cached and not list(tmp_path.glob('.*.tmp'))
    fn.write_bytes(fn.read_bytes()[:100])
    with pytest.warns(UserWarning, match='is damaged'): b = pretrained_ae(t, 'ae', nz=4)
    assert not b.cached and pretrained_ae(t, 'ae', nz=4).cached

def _die_after(monkeypatch, epoch):
    "Make every `Snapshot` write at each epoch, and the process 'die' (KeyboardInterrupt) once the snapshot of `epoch` is written"
    import fastai_ae.bench.methods as bm
    from fastai_ae.callbacks import Snapshot
    monkeypatch.setattr(bm, 'SNAPSHOT_EVERY', 0)
    after = Snapshot.after_epoch
    def dies(self):
        after(self)
        if self.epoch==epoch: raise KeyboardInterrupt
    monkeypatch.setattr(Snapshot, 'after_epoch', dies)
    return lambda: monkeypatch.setattr(Snapshot, 'after_epoch', after)

def test_killed_cell_resumes_from_its_snapshot(ds, tmp_path, monkeypatch):
    "A FlexMatch cell killed in the middle of its fit starts again from its last snapshot and ends with the uninterrupted run's result"
    from fastai_ae.fixmatch import FixMatch
    steps = []
    after_loss = FixMatch.after_loss
    def counted(self):
        if self.training: steps.append(1)
        after_loss(self)
    monkeypatch.setattr(FixMatch, 'after_loss', counted)
    args = dict(labels=[100], methods='flexmatch', seeds=1, budget='smoke', device='cpu')
    run_bench(ds, 'kingma', out=tmp_path/'whole', **args)
    whole,total = read_results(tmp_path/'whole'/'results.csv')[0],len(steps)
    revive = _die_after(monkeypatch, 10)
    out = tmp_path/'cut'
    with pytest.raises(KeyboardInterrupt): run_bench(ds, 'kingma', out=out, **args)
    snaps = list((out/'cache'/'snapshots').glob('*.snap'))
    eq(len(snaps), 1)
    st = torch.load(snaps[0], weights_only=False)
    eq(st['epoch'], 10)
    eq(read_results(out/'results.csv'), [])
    revive()
    t0 = time.time()
    run_bench(ds, 'kingma', out=out, **args)
    wall = time.time()-t0
    r = read_results(out/'results.csv')[0]
    eq(r['acc'], whole['acc'])                         # the same result as the run never stopped
    assert st['secs'] < r['seconds'] <= st['secs']+wall+0.01, (st['secs'], r['seconds'], wall)   # the killed process's seconds count too
    eq(len(steps), 2*total)                            # the resumed run trained only what the killed one had not
    eq(list((out/'cache'/'snapshots').glob('*.snap')), [])   # the cell is done: its snapshot is gone

def test_killed_pretraining_resumes_from_its_snapshot(ds, tmp_path, monkeypatch):
    "An autoencoder's pretraining killed after its first epoch resumes there, and caches the weights of a run never stopped"
    from fastai_ae.bench.methods import make_task, pretrained_ae
    from fastai_ae.bench.run import smoke_cut
    from fastai.torch_core import set_seed
    task = lambda d: smoke_cut(make_task(ds, 'kingma', 100, device='cpu', epochs=dict(ae=3), cache=d))
    set_seed(0)     # the autoencoder's initial weights, as the bench seeds each cell
    whole = pretrained_ae(task(tmp_path/'whole'), 'ae', nz=4)
    revive = _die_after(monkeypatch, 0)
    set_seed(0)
    with pytest.raises(KeyboardInterrupt): pretrained_ae(task(tmp_path/'cut'), 'ae', nz=4)
    snaps = list((tmp_path/'cut').glob('*.snap'))
    assert not list((tmp_path/'cut').glob('*.pth')) and len(snaps)==1
    secs = torch.load(snaps[0], weights_only=False)['secs']
    revive()
    t = task(tmp_path/'cut')
    cut = pretrained_ae(t, 'ae', nz=4)
    assert not cut.cached and not list((tmp_path/'cut').glob('*.snap'))
    eq(t.resumed_secs, secs)                           # the bench adds them to the cell's seconds
    for a,b in zip(cut.model.state_dict().values(), whole.model.state_dict().values()): eq(a, b)

def test_holdout_scores_on_training_images(ds, fake, tmp_path):
    "`--holdout k`: each cell's task trains on the other training images and is scored on k held-out ones, never the test set; its page says so"
    seen = []
    def look(task):
        seen.append(task)
        return dict(acc=0.5, weights=None, note='')
    fake('fake_h', look)
    run_bench(ds, 'kingma', labels='100', methods='fake_h', seeds=2, out=tmp_path, holdout=1000)
    t = seen[0]
    eq((len(t.pool), len(t.lbl), len(t.test_x)), (59_000, 100, 1000))
    xs = lambda x: {bytes(o.numpy()) for o in x}
    train,test = xs(ds.x),xs(ds.x_test)
    held = xs(t.test_x)
    assert held <= train and not held & test            # training images, no test image
    assert not held & xs(t.ds.x[t.pool])                 # none of them in the pool (nor among the labels)
    eq(seen[1].test_y, t.test_y)                         # the same held-out images for every seed
    r = read_results(tmp_path/'results.csv')
    eq({o['dataset'] for o in r}, {'MNIST (1000 held-out training images)'})
    md = (tmp_path/'results.md').read_text()
    assert 'Accuracy (%) on the held-out training images (never the test set)' in md and 'Test accuracy' not in md, md
    assert '--holdout 1000' in (tmp_path/'commands.txt').read_text()
    assert 'published' not in md                          # published rows are test accuracies: none beside these, nor a word of them

def test_holdout_refused_where_the_protocol_makes_its_test_split(ds, fake, tmp_path):
    "`--holdout` is refused under any protocol that does not score on the dataset's test split, not only `tiny`"
    fake('fake_p', lambda task: dict(acc=0.5, weights=None, note=''))
    # a registered protocol that scores on half of the official test set: the held-out images would go unused
    protocols['half_test'] = lambda d, n, seed: (torch.arange(len(d)), few_labels(d, n, seed), d.x_test[::2], d.y_test[::2])
    try:
        with pytest.raises(ValueError, match="which protocol 'half_test' never uses: it makes its own test split"):
            run_bench(ds, 'half_test', labels='100', methods='fake_p', seeds=1, out=tmp_path, holdout=1000)
        assert not (tmp_path/'results.csv').exists()
        run_bench(ds, 'half_test', labels='100', methods='fake_p', seeds=1, out=tmp_path)   # without --holdout it runs
        eq(len(read_results(tmp_path/'results.csv')), 1)
    finally: protocols.pop('half_test')
