__version__ = "0.3.0"
import warnings
# fastai 2.8.12 scripts its activations with `torch.jit.script` and sets a pandas option that pandas 3 deprecates: two
# warnings on every import that no user of this library can act on
warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
warnings.filterwarnings('ignore', message=r"The 'mode\.chained_assignment' option is deprecated")
