"Package layout: no import cycles among fastai_ae's modules, and the library never imports the benchmark (`fastai_ae.bench`)"
import ast, re, subprocess, sys, textwrap
from pathlib import Path
import pytest
from fastcore.test import test_eq as eq

PKG = Path(__file__).resolve().parent.parent/'fastai_ae'
IGNORE = {'_modidx'}
DYN_FUNCS = {'import_module', '__import__'}

def module_files(root:Path) -> dict:
    "Dotted module name -> file for every .py under package dir `root` (`pkg/sub/__init__.py` is `pkg.sub`)"
    res = {}
    for f in sorted(root.rglob('*.py')):
        parts = (root.name,) + f.relative_to(root).with_suffix('').parts
        if parts[-1] in IGNORE or '__pycache__' in parts: continue
        if parts[-1]=='__init__': parts = parts[:-1]
        res['.'.join(parts)] = f
    return res

def _docstrings(tree):
    "ids of the docstring constants of `tree`, its classes and functions"
    res = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body:
            b = n.body[0]
            if isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str): res.add(id(b.value))
    return res

def _resolve_rel(mod:str, is_pkg:bool, level:int, name:str|None) -> str:
    "Absolute name of `from {'.'*level}{name} import ...` written in module `mod`"
    base = mod.split('.') if is_pkg else mod.split('.')[:-1]
    if level>1: base = base[:len(base)-(level-1)]
    return '.'.join(base + (name.split('.') if name else []))

def import_edges(root:Path) -> dict:
    """`{module: {imported_module: [(lineno, how), ...]}}` for the package at `root`, from the source alone (`ast`, no importing).
    Imports at any depth count (top level, in functions, in try blocks), and so do `importlib.import_module`/`__import__`
    calls and other (non-doc) string literals that name a module of the package, e.g. a lazy-import table.
    Importing `a.b.c` also counts `a.b` and `a` (their `__init__` runs), except packages the importer lives in (already
    being imported). `from pkg import x` counts the submodule `pkg.x` when that file exists, and `pkg` itself too unless
    `pkg` is a package the importer lives in and every name is a submodule (importing a sibling is fine)."""
    files = module_files(root)
    res = {}
    for mod,f in files.items():
        is_pkg = f.name=='__init__.py'
        own = mod.split('.') if is_pkg else mod.split('.')[:-1]
        ancestors = {'.'.join(own[:i]) for i in range(1, len(own)+1)}
        edges = res.setdefault(mod, {})
        def add(target, line, how, explicit=True):
            if target not in files or target==mod: return
            if not explicit and target in ancestors: return
            edges.setdefault(target, []).append((line, how))
        def add_mod(name, line, how):
            "`name` and its parent packages"
            parts = name.split('.')
            for i in range(1, len(parts)): add('.'.join(parts[:i]), line, how, explicit=False)
            add(name, line, how)
        tree = ast.parse(f.read_text(encoding='utf-8'), filename=str(f))
        docs = _docstrings(tree)
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                for a in n.names: add_mod(a.name, n.lineno, f'import {a.name}')
            elif isinstance(n, ast.ImportFrom):
                src = _resolve_rel(mod, is_pkg, n.level, n.module) if n.level else (n.module or '')
                how = f"from {'.'*n.level}{n.module or ''} import {', '.join(a.name for a in n.names)}"
                subs = [f'{src}.{a.name}' for a in n.names if f'{src}.{a.name}' in files]
                parts = src.split('.')
                for i in range(1, len(parts)): add('.'.join(parts[:i]), n.lineno, how, explicit=False)
                add(src, n.lineno, how, explicit=not (src in ancestors and len(subs)==len(n.names)))
                for s in subs: add(s, n.lineno, how)
            elif isinstance(n, ast.Call):
                fn = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, 'id', None)
                if fn in DYN_FUNCS and n.args and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
                    name = n.args[0].value
                    if name.startswith('.'):
                        pk = next((k.value.value for k in n.keywords if k.arg=='package' and isinstance(k.value, ast.Constant)), None)
                        if pk is None and len(n.args)>1 and isinstance(n.args[1], ast.Constant): pk = n.args[1].value
                        if not isinstance(pk, str): continue
                        lvl = len(name)-len(name.lstrip('.'))
                        name = _resolve_rel(pk, True, lvl, name.lstrip('.') or None)
                    add_mod(name, n.lineno, f'{fn}({n.args[0].value!r})')
            elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
                if re.fullmatch(rf'{re.escape(root.name)}(\.\w+)+', n.value) and n.value in files:
                    add_mod(n.value, n.lineno, f'string {n.value!r}')
    return res

def import_graph(root:Path) -> dict:
    "`{module: set of the package's modules it imports}`"
    return {m:set(e) for m,e in import_edges(root).items()}

def find_cycles(g:dict) -> list:
    "Import cycles of graph `g` as lists `[a, b, ..., a]`: for each strongly connected component, the shortest cycle through each of its nodes"
    idx,low,on,stack,sccs,cnt = {},{},set(),[],[],[0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    def strong(v):
        idx[v] = low[v] = cnt[0]; cnt[0] += 1; stack.append(v); on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in idx: strong(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v]==idx[v]:
            c = set()
            while True:
                w = stack.pop(); on.discard(w); c.add(w)
                if w==v: break
            sccs.append(c)
    for v in sorted(g):
        if v not in idx: strong(v)
    cycles,seen = [],set()
    for c in sccs:
        if len(c)<2: continue
        for s in sorted(c):
            # BFS from s back to s inside the component
            prev,front,found = {s:None},[s],None
            while front and found is None:
                nxt = []
                for v in front:
                    for w in sorted(g.get(v, ())):
                        if w not in c: continue
                        if w==s: found = v; break
                        if w not in prev: prev[w] = v; nxt.append(w)
                    if found is not None: break
                front = nxt
            path,v = [],found
            while v is not None: path.append(v); v = prev[v]
            path = path[::-1]
            i = path.index(min(path)); key = tuple(path[i:]+path[:i])
            if key not in seen: seen.add(key); cycles.append(list(key)+[key[0]])
    return cycles

def fmt_cycle(cyc, edges=None) -> str:
    s = ' -> '.join(cyc)
    if edges: s += '  [' + '; '.join(f'{a}:{edges[a][b][0][0]} {edges[a][b][0][1]}' for a,b in zip(cyc, cyc[1:])) + ']'
    return s

def is_library(mod:str, pkg:str='fastai_ae') -> bool:
    "Library modules: all but the benchmark subpackage, the cli and `__main__`"
    return not (mod==f'{pkg}.bench' or mod.startswith(f'{pkg}.bench.') or mod in (f'{pkg}.cli', f'{pkg}.__main__'))

def bench_violations(edges:dict, pkg:str='fastai_ae') -> list:
    return [f'{m}:{line} imports {t} ({how})' for m,es in sorted(edges.items()) if is_library(m, pkg)
            for t,hs in sorted(es.items()) if not is_library(t, pkg) and (t==f'{pkg}.bench' or t.startswith(f'{pkg}.bench.'))
            for line,how in hs[:1]]

# ---------------------------------------------------------------- the real package
def test_no_cycles():
    edges = import_edges(PKG)
    cycles = find_cycles({m:set(e) for m,e in edges.items()})
    assert not cycles, 'import cycles in fastai_ae:\n' + '\n'.join(fmt_cycle(c, edges) for c in cycles)

def test_library_never_imports_bench():
    bad = bench_violations(import_edges(PKG))
    assert not bad, 'library modules importing the benchmark:\n' + '\n'.join(bad)

def test_bench_never_imports_cli():
    edges = import_edges(PKG)
    bad = [f'{m} imports {t}' for m,es in edges.items() if not is_library(m) and m.startswith('fastai_ae.bench')
           for t in es if t in ('fastai_ae.cli', 'fastai_ae.__main__')]
    assert not bad, '\n'.join(bad)

def test_graph_sees_the_package():
    "Guard against a vacuous pass: the graph has the modules and the edges we know are there"
    g = import_graph(PKG)
    for m in ('fastai_ae', 'fastai_ae.all', 'fastai_ae.layers', 'fastai_ae.models', 'fastai_ae.cli', 'fastai_ae.bench'): assert m in g, m
    assert 'fastai_ae._modidx' not in g
    assert 'fastai_ae.layers' in g['fastai_ae.models']
    assert 'fastai_ae.models' in g['fastai_ae.all']

def test_all_does_not_export_bench():
    import fastai_ae.all as a
    from types import ModuleType
    bad = [k for k,o in vars(a).items()
           if (isinstance(getattr(o, '__module__', None), str) and o.__module__.startswith('fastai_ae.bench'))
           or (isinstance(o, ModuleType) and o.__name__.startswith('fastai_ae.bench'))]
    assert not bad, f'fastai_ae.all exports benchmark objects: {bad}'
    tree = ast.parse((PKG/'all.py').read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [_resolve_rel('fastai_ae.all', False, n.level, n.module) if n.level else n.module
              for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n and n.startswith('fastai_ae.bench')], names
    assert not [t for t in import_edges(PKG)['fastai_ae.all'] if t.startswith('fastai_ae.bench')]

def test_import_all_loads_no_bench():
    "In a fresh interpreter (other tests import the benchmark), `import fastai_ae.all` loads no `fastai_ae.bench` module"
    code = "import sys, fastai_ae.all; print([m for m in sys.modules if m.startswith('fastai_ae.bench')])"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=PKG.parent, timeout=300)
    assert r.returncode==0, r.stderr[-2000:]
    eq(r.stdout.strip().splitlines()[-1], '[]')

# ---------------------------------------------------------------- self-tests of the detector
def _mkpkg(tmp_path, files:dict, name='pkg') -> Path:
    root = tmp_path/name
    for p,src in files.items():
        f = root/p; f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(src))
    return root

def test_detects_top_level_cycle(tmp_path):
    root = _mkpkg(tmp_path, {'__init__.py':'', 'a.py':'from .b import f\n', 'b.py':'from . import a\n', 'c.py':'import pkg.a\n',
                             '_modidx.py':'import pkg.c\n'})
    g = import_graph(root)
    eq(g, {'pkg':set(), 'pkg.a':{'pkg.b'}, 'pkg.b':{'pkg.a'}, 'pkg.c':{'pkg.a'}})
    eq([fmt_cycle(c) for c in find_cycles(g)], ['pkg.a -> pkg.b -> pkg.a'])

def test_detects_function_level_and_try_cycle(tmp_path):
    root = _mkpkg(tmp_path, {'__init__.py':'', 'a.py':'''
        def f():
            from pkg.b import g
            return g
        ''', 'b.py':'''
        try: import pkg.a as a
        except ImportError: a = None
        ''', 'c.py':'''
        class C:
            def m(self):
                import importlib
                return importlib.import_module('pkg.d')
        ''', 'd.py':'''
        "This docstring names pkg.c but is not an import"
        _lazy = {'x': 'pkg.c'}
        '''})
    g = import_graph(root)
    eq(g['pkg.a'], {'pkg.b'}); eq(g['pkg.b'], {'pkg.a'}); eq(g['pkg.c'], {'pkg.d'}); eq(g['pkg.d'], {'pkg.c'})
    eq(sorted(fmt_cycle(c) for c in find_cycles(g)), ['pkg.a -> pkg.b -> pkg.a', 'pkg.c -> pkg.d -> pkg.c'])

def test_subpackage_rules(tmp_path):
    "`__init__` importing its submodules and siblings importing each other is fine; a submodule importing its package is a cycle"
    ok = _mkpkg(tmp_path, {'__init__.py':'', 'losses.py':'', 'bench/__init__.py':'from .run import go\nfrom . import methods\n',
                           'bench/methods.py':'from ..losses import z\n', 'bench/run.py':'from . import methods\nfrom .methods import m\n',
                           'cli.py':'def f():\n    from .bench import run\n'}, 'ok')
    g = import_graph(ok)
    eq(g['ok.bench'], {'ok.bench.run', 'ok.bench.methods'}); eq(g['ok.bench.run'], {'ok.bench.methods'})
    eq(g['ok.bench.methods'], {'ok.losses'}); eq(g['ok.cli'], {'ok.bench', 'ok.bench.run'})
    eq(find_cycles(g), [])
    for i,src in enumerate(['from ok.bench import go\n', 'import ok.bench\n', 'from . import go\n', 'from .. import bench\n']):
        bad = _mkpkg(tmp_path/str(i), {'__init__.py':'', 'bench/__init__.py':'from .methods import m\n', 'bench/methods.py':src}, 'ok')
        eq([fmt_cycle(c) for c in find_cycles(import_graph(bad))], ['ok.bench -> ok.bench.methods -> ok.bench'])

def test_detects_bench_imports(tmp_path):
    srcs = ['from .bench import run\n', 'from .bench.run import go\n', 'import pkg.bench\n', 'from pkg.bench.run import go\n',
            'def f():\n    try: import pkg.bench.run\n    except ImportError: pass\n',
            "import importlib\nm = importlib.import_module('pkg.bench.run')\n", "m = __import__('pkg.bench')\n",
            "from importlib import import_module\nm = import_module('.bench', package='pkg')\n"]
    for i,src in enumerate(srcs):
        root = _mkpkg(tmp_path/str(i), {'__init__.py':'', 'lib.py':src, 'cli.py':'from .bench import run\n',
                                       'bench/__init__.py':'', 'bench/run.py':'from ..lib import x\n'})
        bad = bench_violations(import_edges(root), 'pkg')
        assert bad and all(b.startswith('pkg.lib:') for b in bad), (src, bad)
    clean = _mkpkg(tmp_path/'clean', {'__init__.py':'"see pkg.bench"\n', 'lib.py':'"""Not `pkg.bench`"""\nx = 1\n',
                                      'cli.py':'def f():\n    from .bench import run\n', 'bench/__init__.py':'', 'bench/run.py':'from ..lib import x\n'})
    eq(bench_violations(import_edges(clean), 'pkg'), [])

def _wing(stem:str, exp:str|None) -> str:
    "Which wing a notebook belongs to, from the module it exports (`None`: a tutorial)"
    if exp is None: return 'tutorial'
    if exp=='bench' or exp.startswith('bench.'): return 'bench'
    return 'cli' if exp in ('cli', '__main__') else 'library'

def test_notebook_numbers():
    "Notebooks are numbered by wing (00-19 library, 20-29 benchmark, 30-39 command line, 40+ tutorials), so a notebook never imports a higher number"
    import json
    lo = dict(library=(0,19), bench=(20,29), cli=(30,39), tutorial=(40,99))
    bad = []
    for nb in sorted((PKG.parent/'nbs').glob('*.ipynb')):
        src = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type']=='code')
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', src, re.M)
        w,n = _wing(nb.stem, m and m.group(1)), int(nb.stem[:2])
        if not lo[w][0] <= n <= lo[w][1]: bad.append(f'{nb.name}: {w} notebook numbered {n}, expected {lo[w][0]}-{lo[w][1]}')
    eq(bad, [])

def test_notebook_cells_have_ids():
    "Every notebook cell carries an `id`: nbdev-export names each exported cell by it, so a cell without one gets a new random name on every export and `.ci/run`'s check that a clean export changes nothing fails"
    import json
    bad = [f'{nb.name} cell {i}' for nb in sorted((PKG.parent/'nbs').glob('*.ipynb'))
           for i,c in enumerate(json.loads(nb.read_text())['cells']) if not c.get('id')]
    eq(bad, [])
